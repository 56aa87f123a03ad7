"""The training target: on the HR grid of a remaster pair each patch's window and resampling agree with the whole
frame put on the HR grid (what scoring and the filter use) and the mask keeps the area both clips show; on a
whole-scale pair both geometries agree. Pure tensors: nothing is trained."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.support.bundles import write_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.grid import Grid
from vs_stdo.core.mapping import Mapping
from vs_stdo.core.models import WDSR, Arch
from vs_stdo.train.target import Resampled, WholeScale, target_for

DVD = Mapping(88, 60, 160, 120, 154 / 88, 108 / 60, 4.37, 3.59)  # a DVD-like framing, ratios 1.75 x 1.8


def _frame(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 60, 88, generator=g)
    return torch.nn.functional.avg_pool2d(x[None], 3, 1, 1, count_include_pad=False)[0]  # smooth, like video


def test_patch_windows_equal_the_whole_frame_on_the_hr_grid():
    """A fresh model is bicubic; its output on each patch's HR window, with enough context, equals the same
    window of the whole frame's output put on the HR grid (away from the frame's edges, where the patch's
    replicated context is not the frame's)."""
    grid = Grid(88, 60, 24, 20)
    model = WDSR(Arch(2, 1, 4, 2)).eval()
    geo = Resampled(DVD, 2, grid, context=8)
    frame = _frame()
    whole = geo.on_hr(model(frame[None])[0])
    items = torch.tensor([[0, i] for i in range(grid.count)])
    x = torch.stack([frame[:, r[:, None], c] for r, c in zip(*(t[items[:, 1]] for t in grid.spans(8)))])
    with torch.no_grad():
        pred = geo.predict(model, x, items)
    iy, ix = geo.rows[1], geo.cols[1]
    inner = 0
    for k, i in enumerate(items[:, 1].tolist()):
        r, c = divmod(i, grid.cols)
        ref = whole[:, iy[r][:, None], ix[c]] * geo.mask(torch.tensor([r]), torch.tensor([c]))[0]
        y, x_ = iy[r], ix[c]
        keep = ((y >= 12) & (y < 108))[:, None] & ((x_ >= 12) & (x_ < 148))[None, :]  # off the frame's edges
        if keep.any():
            inner += 1
            assert torch.allclose(pred[k][:, keep], ref[:, keep].clamp(0, 1), atol=2e-3), i
    assert inner >= 6


def test_windows_cover_the_overlap_and_the_mask_keeps_only_it():
    grid = Grid(88, 60, 24, 20)
    geo = Resampled(DVD, 2, grid, context=8)
    x0, y0, x1, y1 = DVD.overlap()
    covered = torch.zeros(120, 160, dtype=torch.bool)
    for r in range(grid.rows):
        for c in range(grid.cols):
            m = geo.mask(torch.tensor([r]), torch.tensor([c]))[0, 0].bool()
            ys, xs = geo.rows[1][r], geo.cols[1][c]
            covered[ys[:, None].expand_as(m)[m], xs[None, :].expand_as(m)[m]] = True
    assert not covered[:y0].any() and not covered[y1:].any() and not covered[:, :x0].any() and not covered[:, x1:].any()
    assert covered[y0:y1, x0:x1].float().mean() > 0.97  # a window per patch loses at most a pixel at its seams


def test_targets_are_the_hr_windows_inside_the_overlap():
    grid = Grid(88, 60, 24, 20)
    geo = Resampled(DVD, 2, grid, context=8)
    hr = torch.randint(0, 256, (2, 3, 120, 160), dtype=torch.uint8)
    items = torch.tensor([[1, 0], [0, grid.count - 1]])
    t = geo.targets(hr, items)
    assert t.shape == (2, 3, geo.rows[1].shape[1], geo.cols[1].shape[1])
    ys, xs = geo.rows[1][0], geo.cols[1][0]
    m = geo.mask(torch.tensor([0]), torch.tensor([0]))[0]
    assert torch.equal(t[0], hr[1][:, ys[:, None], xs].float() / 255 * m)


def test_on_a_whole_scale_pair_both_geometries_give_the_same_targets_outputs_and_scores():
    """The plain mapping (HR = 2 x LR) through the resampler is the identity: the resampled target equals the
    whole-scale one pixel for pixel, and `target_for` takes the fast whole-scale path for it."""
    grid = Grid(88, 60, 24, 20)
    plain = Mapping.plain(88, 60, 176, 120)
    assert isinstance(target_for(plain, 2, grid, 8), WholeScale)
    assert isinstance(target_for(plain, 3, grid, 8), Resampled)  # x3 models resampled to x2
    assert isinstance(target_for(DVD, 2, grid, 8), Resampled)
    whole, resampled = WholeScale(grid, 2, 8), Resampled(plain, 2, grid, 8)
    hr = torch.randint(0, 256, (2, 3, 120, 176), dtype=torch.uint8)
    items = torch.tensor([[0, 0], [1, 5], [0, grid.count - 1]])
    shuffle = lambda t: torch.nn.functional.pixel_shuffle(t, 2)  # noqa: E731
    assert torch.equal(shuffle(whole.targets(hr, items)), resampled.targets(hr, items))
    model = WDSR(Arch(2, 1, 4, 2)).eval()
    torch.nn.init.normal_(model.tail.weight, std=0.05)  # not bicubic alone
    frame = _frame()
    x = torch.stack([frame[:, r[:, None], c] for r, c in zip(*(t[items[:, 1]] for t in grid.spans(8)))])
    with torch.no_grad():
        assert torch.allclose(shuffle(whole.predict(model, x, items)), resampled.predict(model, x, items), atol=1e-6)
        sr = model(frame[None])[0]
    target = torch.rand(3, 120, 176)
    assert torch.allclose(whole.patch_psnr(sr, target), resampled.patch_psnr(sr, target), atol=1e-4)


# a letterboxed LR: 8-row bars around a 88x44 picture, on a 160x120 HR pillarboxed by 10 columns
LETTERBOXED = Mapping(88, 44, 140, 118, 138 / 88, 116 / 44, 1.3, 0.9).framed((0, 0, 8, 8), (10, 10, 0, 0))


def test_with_bars_patch_windows_read_the_picture_alone_as_the_whole_frame_does():
    """Patch windows that straddle the LR picture's edge resample only the picture, mirrored at its edge, as the
    whole frame's resampler (and so playback) does: the same values there, bright bars or not; and the mask
    keeps the area both pictures show, never a bar."""
    grid = Grid(88, 60, 24, 20)
    geo = Resampled(LETTERBOXED, 2, grid, context=8)
    model = WDSR(Arch(2, 1, 4, 2)).eval()
    frame = _frame()
    frame[:, :8], frame[:, -8:] = 1.0, 1.0  # loud LR bars
    whole = geo.on_hr(model(frame[None])[0])
    assert whole[:, :, :10].abs().max() == 0  # the HR's bars: black
    items = torch.tensor([[0, i] for i in range(grid.count)])
    x = torch.stack([frame[:, r[:, None], c] for r, c in zip(*(t[items[:, 1]] for t in grid.spans(8)))])
    with torch.no_grad():
        pred = geo.predict(model, x, items)
    x0, y0, x1, y1 = LETTERBOXED.overlap()
    assert (x0, y0, x1, y1) == (12, 1, 149, 116)  # the LR picture (rows 8-51) lies on HR rows 0.9-116.9
    edge = 0
    for k, i in enumerate(items[:, 1].tolist()):
        r, c = divmod(i, grid.cols)
        m = geo.mask(torch.tensor([r]), torch.tensor([c]))[0, 0].bool()
        y, x_ = geo.rows[1][r], geo.cols[1][c]
        assert ((y[:, None] >= y0) & (y[:, None] < y1) & (x_ >= x0) & (x_ < x1))[m].all()  # inside the overlap
        keep = m & ((x_ >= 22) & (x_ < 138))[None, :]  # off the frame's left and right edges
        if keep.any() and y.min() < y0 + 6:
            edge += 1
            ref = whole[:, y[:, None], x_]
            assert torch.allclose(pred[k][:, keep], ref[:, keep].clamp(0, 1), atol=2e-3), i
    assert edge >= 2
