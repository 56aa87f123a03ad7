"""What trains when: the stages of each mode and how they draw their patches (no training)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from vs_stdo.train.settings import Settings
from vs_stdo.train.stages import plan_stages


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
