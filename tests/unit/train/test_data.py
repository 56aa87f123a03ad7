"""Training batches: LR patches cut on the grid with their context, the HR side in the target's layout."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vs_stdo.core.grid import Grid
from vs_stdo.train.data import Frames, Patches
from vs_stdo.train.target import WholeScale


def test_training_patches_are_the_grid_cut_and_their_hr():
    grid, s = Grid(100, 70, 16, 12), 2
    lr = torch.rand(2, 3, 70, 100)
    hr = (torch.rand(2, 3, 140, 200) * 255).to(torch.uint8)
    patches = Patches(Frames(lr, hr, np.zeros((2, 1), np.float32)), grid, WholeScale(grid, s, 5))
    items = torch.tensor([[1, 0], [0, grid.count - 1], [1, 13]])
    x, y = patches.batch(items)
    assert torch.equal(x, torch.stack([grid.cut(lr[f], 5)[i] for f, i in items.tolist()]))
    for got, (f, i) in zip(y, items.tolist()):
        by, bx, h, w = grid.hr_boxes(s)[i]
        assert torch.equal(got, F.pixel_unshuffle(hr[f, :, by:by + h, bx:bx + w].float() / 255, s))
