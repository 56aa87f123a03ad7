"""What trains when: the stages of each mode and how they draw their patches (no training)."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from vs_stdo.train.settings import Settings
from vs_stdo.train.stages import plan_stages, plan_summary


def test_chunk_phase_draws_every_chunk_equally_whatever_its_size():
    s = Settings(chunks=3, steps=100, pretrain=0.25)
    chunk = torch.tensor([0] * 5 + [1] * 30 + [2] * 165)
    items = torch.stack([torch.zeros(200, dtype=torch.long), torch.arange(200)], 1)
    _, chunks = plan_stages(s, items, chunk, torch.rand(200, generator=torch.Generator().manual_seed(0)))
    drawn = chunks.owner[chunks.draw(30000, torch.Generator().manual_seed(1))]
    assert torch.bincount(drawn, minlength=3).float().div(30000).tolist() == pytest.approx([1 / 3] * 3, abs=0.01)


@pytest.mark.parametrize("focus", [0.0, 0.5, 1.0])
def test_joint_phase_draws_patches_by_their_squared_error_to_the_focus(focus):
    """Joint mode continues the shared model on all patches, each drawn in proportion to mse ** focus."""
    s = Settings(mode="joint", steps=100, pretrain=0.25, focus=focus, sampling="lean")
    mse = torch.tensor([1e-4] * 100 + [4e-4] * 100)
    items = torch.stack([torch.zeros(200, dtype=torch.long), torch.arange(200)], 1)
    shared, joint = plan_stages(s, items, torch.zeros(200, dtype=torch.long), mse)
    assert (shared.steps, joint.steps, joint.first, joint.init, len(joint.items)) == (25, 75, 25, "shared", 200)
    hard = (joint.draw(40000, torch.Generator().manual_seed(1)) >= 100).float().mean().item()
    assert hard == pytest.approx(4 ** focus / (1 + 4 ** focus), abs=0.01)


def test_unbiased_joint_sampling_draws_hard_patches_more_but_keeps_the_mean_loss():
    """--sampling unbiased: half the draws uniform, half by mse ** focus, each loss scaled by 1/(N p), so the
    expected scaled loss of a draw is the plain mean over the patches."""
    s = Settings(mode="joint", steps=100, pretrain=0.25, focus=1.0, sampling="unbiased")
    mse = torch.tensor([1e-4] * 150 + [7e-4] * 50)
    items = torch.stack([torch.zeros(200, dtype=torch.long), torch.arange(200)], 1)
    _, joint = plan_stages(s, items, torch.zeros(200, dtype=torch.long), mse)
    pick = joint.draw(100000, torch.Generator().manual_seed(1))
    hard = (pick >= 150).float().mean().item()
    assert hard == pytest.approx(0.5 * 0.25 + 0.5 * 350 / (150 + 350), abs=0.01)
    scale = joint.loss_scale(pick)
    assert scale.max().item() <= 2 and (mse[pick] * scale).mean().item() == pytest.approx(mse.mean().item(), rel=0.01)
    _, lean = plan_stages(replace(s, sampling="lean"), items, torch.zeros(200, dtype=torch.long), mse)
    assert lean.loss_scale(pick).eq(1).all()


def test_a_stage_ends_when_its_steps_or_its_time_run_out_and_the_learning_rate_follows():
    """Progress is the larger of the share of steps done and the share of the time budget spent; the stage ends at
    1 and its learning rate is the run's cosine at that progress."""
    s = Settings(steps=100, pretrain=0.25)
    items = torch.stack([torch.zeros(10, dtype=torch.long), torch.arange(10)], 1)
    shared, last = plan_stages(s, items, torch.zeros(10, dtype=torch.long), torch.ones(10))
    timed = replace(shared, budget=10.0)                                # 25 steps at most, 10 s
    assert timed.spent(5.0) == 0.5 and timed.spent(30.0) == 1.0
    assert timed.progress(5, timed.spent(5.0)) == 0.5                   # time leads
    assert timed.progress(20, timed.spent(5.0)) == 0.8                  # steps lead
    assert timed.progress(10, timed.spent(10.0)) == 1.0                 # its time is spent: it ends
    assert timed.progress(25) == 1.0                                    # its steps are done: it ends
    # half its time spent stands for half its 25 steps on the run's 100-step cosine
    assert timed.learning_rate(s, 5, 0.5) == pytest.approx(s.learning_rate * 0.5 * (1 + math.cos(math.pi * 12.5 / 100)))
    assert replace(last, budget=1.0).learning_rate(s, 3, 1.0) == pytest.approx(0.0, abs=1e-12)  # the run's schedule ends at 0
    # a resumed stage that had used 40 % of its time: its new budget pays for the other 60 %
    assert timed.spent(3.0, since=0.4) == pytest.approx(0.4 + 0.6 * 0.3)
    assert replace(timed, budget=0.0).spent(0.0) == 1.0                 # no time at all: nothing to train
    # without a budget (no --time) the steps alone decide, exactly as the plain schedule
    assert shared.spent(1e9) == 0.0 and shared.progress(24) < 1 <= shared.progress(25)
    assert [shared.learning_rate(s, t) for t in range(25)] + [last.learning_rate(s, t) for t in range(75)] == [
        s.learning_rate * 0.5 * (1 + math.cos(math.pi * t / 100)) for t in range(100)]


def test_the_plan_names_each_stage_and_its_steps():
    assert plan_summary(Settings(), 1000) == "shared 500 steps, then chunks 1500 steps (4 models)"
    assert plan_summary(Settings(mode="single", score="self", epochs=2, batch=10), 50) == (
        "scorer 300 steps, then single 10 steps")
