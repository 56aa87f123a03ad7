"""Planning a run before the long work: which frames, how long, how much disk (pure logic, fast)."""
from __future__ import annotations

import pytest
import torch

from vs_stdo.train import preflight
from vs_stdo.train.frames import choose
from vs_stdo.train.settings import Settings, parse_duration
from vs_stdo.train.timing import Rates
from vs_stdo.train.world import World


def test_short_inputs_keep_every_frame_and_long_ones_an_even_spread_within_the_budget():
    assert choose(30, 0, 0.5, 320, 180, 4) == range(30)
    long = choose(50_000, 0, 0.5, 480, 270, 4)                      # 1080p at x4: 7.8 MB a frame
    assert 60 <= len(long) <= 69 and long.start == 0 and long.stop == 50_000
    assert preflight.frames_bytes(480, 270, len(long), 4) <= 0.5 * preflight.GB
    assert len(choose(34_000, 0, 0.5, 960, 540, 2)) < len(long)     # x2 frames are larger
    assert len(choose(50_000, 500, 0.5, 480, 270, 4)) == 500        # --train-frames overrides the budget
    assert choose(50_000, 0, 0.5, 480, 270, 4) == choose(50_000, 0, 0.5, 480, 270, 4)


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("10m", 600), ("1.5h", 5400), ("1h30m", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10 minutes", "m", "5x"])
def test_bad_durations_name_the_syntax(text):
    with pytest.raises(ValueError, match="90s, 10m"):
        parse_duration(text)


def test_a_time_budget_becomes_the_steps_that_fit_it():
    s = Settings(chunks=4, time=600)
    rates = Rates(step_s=0.1, frame_s=0.5, chunks_s=0.1)
    assert rates.passes(s) == 5                                     # shared scorer + 4 best-model label passes
    steps = rates.steps_within(s, spent=100, frames=40)             # 500 s left, 100 s of passes
    assert steps == 4000 and rates.seconds(s, steps, 40) == pytest.approx(500)
    assert Rates(0.1, 0.5, 0.1).passes(Settings(mode="single", chunks=1)) == 0
    with pytest.raises(ValueError, match="leaves time for 0 training steps"):
        rates.steps_within(Settings(time=60), spent=50, frames=40)


def test_the_plan_counts_the_chunk_models_steps_at_their_own_rate():
    """k chunk models sharing a batch take longer a step than one model on it: a budget counts the shared model's
    quarter of the steps at one rate and the chunks stage's at the other, and fits within the budget."""
    rates = Rates(step_s=0.1, frame_s=0.5, chunks_s=0.2)
    s = Settings(chunks=4, time=600)                                # --pretrain 0.25
    assert rates.seconds(s, 1000, 0) == pytest.approx(250 * 0.1 + 750 * 0.2)
    steps = rates.steps_within(s, spent=100, frames=40)             # 400 s for steps
    assert rates.seconds(s, steps, 40) <= 500 < rates.seconds(s, steps + 1, 40)
    assert 2280 < steps < 2290                     # about 400 / (0.25 * 0.1 + 0.75 * 0.2), not 4000 at one model's rate
    joint = Settings(mode="joint", chunks=4, time=600)              # one model all along: the one-model rate
    assert rates.seconds(joint, 1000, 0) == pytest.approx(100)


def test_disk_check_names_the_space_needed_and_the_fix(tmp_path):
    need = preflight.check_disk(Settings(), tmp_path / "x.stdo", 100, 50)
    assert 1 << 20 < need < 64 << 20
    with pytest.raises(ValueError, match="MB free; free some space or choose another -o folder"):
        preflight.check_disk(Settings(), tmp_path / "x.stdo", 10 ** 10, 50)


def test_a_world_of_one_holds_every_frame_and_gathers_nothing():
    world = World()
    assert world.main and world.share(5) == range(5)
    items = torch.tensor([[0, 1], [3, 2], [4, 0]])
    mine, local = world.local(items)
    assert mine.all() and torch.equal(local, items)
    assert world.first(7) == 7 and world.any(True) and not world.any(False)


def test_settings_refuse_what_cannot_work():
    for bad in (dict(steps=0), dict(batch=0), dict(time=-1), dict(frame_memory=0), dict(train_frames=-2),
                dict(context=-1)):
        with pytest.raises(ValueError):
            Settings(**bad).check()


def test_training_context_is_capped_at_the_largest_models_receptive_radius():
    assert Settings(context=4).train_context() == 4
    assert Settings(context=50).train_context() == 10                       # tiny's radius
    assert Settings(context=50, preset="nano", mode="single").train_context() == 4
    assert Settings(context=50, preset="nano", easy_preset="nano").train_context() == 4
    assert Settings(context=50, preset="small", easy_preset="nano").train_context() == 18
