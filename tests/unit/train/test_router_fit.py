"""Fitting the blind router: it stops at its step count or its time budget, and records the frames and steps it
took."""
from __future__ import annotations

import itertools
from functools import partial

import numpy as np
import torch

from vs_stdo.core.grid import Grid
from vs_stdo.train import router_fit


def data(frames: int = 3, k: int = 2):
    """Random LR frames of a 4x2 grid of 16x16 patches, each model's random PSNR on each patch, and labels."""
    gen = torch.Generator().manual_seed(0)
    grid = Grid(64, 32, 16, 16)
    lr = torch.rand(frames, 3, 32, 64, generator=gen)
    psnr = 30 + 5 * np.random.default_rng(0).random((k, frames, grid.rows, grid.cols)).astype(np.float32)
    return lr, grid, psnr, psnr.argmax(0)


def test_the_fit_stops_at_its_budget_and_records_its_frames_and_steps():
    lr, grid, psnr, labels = data(frames=6)
    whole = router_fit.fit(lr, grid, 4, psnr, labels, steps=40)
    assert (whole.info.frames, whole.info.steps, whole.info.patches) == (6, 40, 6 * grid.count)
    # a clock that moves one second at each read, one read a frame and a step: of 8 s, the features take the frames
    # up to half of them (4 frames), the steps the rest (4 steps: one at least, then a read before each other)
    clock = partial(next, itertools.count(0.0, 1.0))
    short = router_fit.fit(lr, grid, 4, psnr, labels, steps=40, budget=8.0, clock=clock)
    assert (short.info.frames, short.info.steps, short.info.patches) == (4, 4, 4 * grid.count)
    none = router_fit.fit(lr, grid, 4, psnr, labels, steps=40, budget=0.0, clock=clock)
    assert (none.info.frames, none.info.steps) == (1, 1)
    assert not all(torch.equal(short.tensors[n], whole.tensors[n]) for n in whole.tensors)
