"""--time as a deadline: the seconds each stage gets and what the last one keeps back (no training; a clock that
moves one second each time it is read stands in for the time a run takes)."""
from __future__ import annotations

import itertools
import math
from functools import partial

import pytest
import torch

from vs_stdo.train.deadline import MARGIN, ROUTER_SHARE, Deadline, process_age
from vs_stdo.train.settings import Settings
from vs_stdo.train.stages import Stage, plan_stages


def ticks(start: float = 0.0):
    """A clock that reads `start`, then one second more at each read."""
    return partial(next, itertools.count(start, 1.0))


def stages(s: Settings, n: int = 40) -> list[Stage]:
    items = torch.stack([torch.zeros(n, dtype=torch.long), torch.arange(n)], 1)
    return plan_stages(s, items, torch.arange(n) % s.k(), torch.ones(n))


def test_each_stage_gets_its_steps_share_of_what_is_left():
    """The shared stage (a quarter of the steps) gets a quarter of the time left when it starts, the last stage all
    of it less what it keeps back, the --score self scorer its steps' share of its own and the run's steps."""
    s = Settings(chunks=2, steps=2000, time=600)
    shared, chunks = stages(s)
    deadline = Deadline(100.0 + MARGIN, lambda: 0.0)                     # 100 s left, always
    assert deadline.budget(shared, 2000) == pytest.approx(25.0)
    assert deadline.budget(chunks, 2000, kept=10.0) == pytest.approx(90.0)
    assert deadline.budget(chunks, 2000, kept=1000.0) == 0.0            # nothing left: a stage of no steps
    scorer = Stage.one("scorer", shared.items, s.arch(), 300)
    assert deadline.budget(scorer, 2000) == pytest.approx(100 * 300 / 2300)
    (single,) = stages(Settings(mode="single", chunks=1, steps=2000))
    assert deadline.budget(single, 2000) == pytest.approx(100.0)
    assert Deadline().budget(shared, 2000) == math.inf                   # no --time: the steps alone decide


def test_the_last_stage_keeps_back_the_label_passes_and_the_routers_share():
    lr = torch.rand(100, 3, 8, 8)
    best = Settings(chunks=4, time=600)
    deadline = Deadline(1000.0, ticks())
    assert deadline.after_training(best, 3.0, lr, torch.device("cpu")) == pytest.approx(4 * 3.0 + ROUTER_SHARE * 600)
    split = Settings(chunks=4, labels="split", time=600)                 # passes over the router's 64 frames only
    assert deadline.after_training(split, 3.0, lr, torch.device("cpu")) == pytest.approx(
        4 * 3.0 * 64 / 100 + ROUTER_SHARE * 600)
    # no scoring pass of a model of the run (bicubic scorer): one frame's pass is timed, a second on this clock
    assert deadline.after_training(best, None, lr, torch.device("cpu")) == pytest.approx(4 * 100 + ROUTER_SHARE * 600)
    assert deadline.after_training(Settings(mode="joint", time=600), 3.0, lr, torch.device("cpu")) == 0.0
    assert Deadline().after_training(best, 3.0, lr, torch.device("cpu")) == 0.0      # no --time


def test_time_counts_from_the_process_start():
    assert Deadline.of(Settings()).end == math.inf
    assert process_age() > 0                                            # this process started before this test
    assert Deadline.of(Settings(time=600)).left() <= 600 - MARGIN - process_age() + 1


def test_work_after_training_longer_than_what_is_left_is_said():
    deadline = Deadline(50.0 + MARGIN, lambda: 0.0)                     # 50 s left
    assert deadline.late(Settings(time=60), 40.0) is None
    assert deadline.late(Settings(time=60), 70.0) == (
        "--time 60 s: the passes over the frames and the router fit after training need about 70 s, 20 s more than "
        "is left; the run will end late (give more --time, or fewer --train-frames or --chunks)")
