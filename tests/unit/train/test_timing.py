"""Planning a run before the long work: how long (pure logic, fast)."""
from __future__ import annotations

import pytest

from vs_stdo.train.settings import Settings
from vs_stdo.train.timing import Rates


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
