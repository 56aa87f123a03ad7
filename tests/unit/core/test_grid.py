"""Patch geometry (vs_stdo/core/grid.py) and its users: origins, who owns an overlap, cut with context, stitch.

Each check is against an independent reference: ownership by painting the patches in row-major order
(the later one wins), context by torch's replicate padding.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from tests.support.bundles import write_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.grid import Grid, paste, window
from vs_stdo.core.models import WDSR, Arch
from vs_stdo.filter.batches import PatchBatches
from vs_stdo.tools.report import overlay

# covered with a shifted last row and column; exact; narrower, shorter and smaller than a patch
GRIDS = [Grid(100, 70, 16, 12), Grid(64, 48, 16, 12), Grid(7, 5, 16, 12), Grid(1, 1, 16, 12),
         Grid(100, 5, 16, 12), Grid(9, 40, 16, 12)]


def painted_owner(grid: Grid, scale: int = 1) -> torch.Tensor:
    """Which patch each pixel of the (scaled) frame shows when patches are pasted in row-major order."""
    owner = torch.empty(grid.height * scale, grid.width * scale, dtype=torch.long)
    for i, (y, x, h, w) in enumerate(grid.hr_boxes(scale)):
        owner[y:y + h, x:x + w] = i
    return owner


def replicated(frame: torch.Tensor, grid: Grid, pad: int) -> torch.Tensor:
    """The frame padded by `pad` (and by what a patch reaches past it at the bottom and right), replicated."""
    under = max(0, grid.patch_height - grid.height)
    past = max(0, grid.patch_width - grid.width)
    return F.pad(frame[None], (pad, pad + past, pad, pad + under), mode="replicate")[0]


def test_origins_shift_the_last_row_and_column_inwards():
    g = Grid(100, 70, 16, 12)
    assert (g.rows, g.cols, g.count) == (6, 7, 42) and g.covered
    assert sorted({x for _, x in g.origins}) == [0, 16, 32, 48, 64, 80, 84]
    assert sorted({y for y, _ in g.origins}) == [0, 12, 24, 36, 48, 58]
    assert g.edges == ([0, 12, 24, 36, 48, 58, 70], [0, 16, 32, 48, 64, 80, 84, 100])
    small = Grid(7, 5, 16, 12)
    assert (small.count, small.origins, small.edges, small.covered) == (1, [(0, 0)], ([0, 5], [0, 7]), False)
    assert Grid(100, 5, 16, 12).origins == [(0, x) for x in (0, 16, 32, 48, 64, 80, 84)]
    with pytest.raises(ValueError, match="at least 1x1"):
        Grid(0, 5, 16, 12)


@pytest.mark.parametrize("grid", GRIDS, ids=str)
def test_the_later_patch_owns_an_overlap_and_owned_boxes_tile_the_frame(grid):
    assert torch.equal(grid.owner(), painted_owner(grid))
    covered = torch.zeros(grid.height, grid.width, dtype=torch.long)
    for i in range(grid.count):
        r, c = divmod(i, grid.cols)
        y0, x0, y1, x1 = grid.owned(r, c, r + 1, c + 1)
        assert (grid.owner()[y0:y1, x0:x1] == i).all()
        covered[y0:y1, x0:x1] += 1
    assert (covered == 1).all()
    assert grid.owned(0, 0, grid.rows, grid.cols) == (0, 0, grid.height, grid.width)


@pytest.mark.parametrize("grid", GRIDS, ids=str)
@pytest.mark.parametrize("pad", [0, 3, 20])
def test_cuts_carry_replicated_context(grid, pad):
    frame = torch.rand(3, grid.height, grid.width)
    big = replicated(frame, grid, pad)
    h, w = grid.patch_height + 2 * pad, grid.patch_width + 2 * pad
    want = torch.stack([big[:, y:y + h, x:x + w] for y, x in grid.origins])
    assert torch.equal(grid.cut(frame, pad), want)
    assert torch.equal(grid.cut(frame, pad, torch.tensor([grid.count - 1])), want[-1:])
    batches = PatchBatches(grid, 2, pad, torch.device("cpu"))
    index = torch.arange(grid.count)
    assert torch.equal(batches.cut(frame, index, pad), want)
    assert torch.equal(batches.cut(frame, index, 0), grid.cut(frame, 0))
    y0, x0, y1, x1 = box = (grid.height // 3, grid.width // 3, grid.height, grid.width)
    assert torch.equal(window(frame, box, pad), big[:, y0:y1 + 2 * pad, x0:x1 + 2 * pad])


@pytest.mark.parametrize("grid", GRIDS, ids=str)
@pytest.mark.parametrize("scale", [1, 2, 3])
def test_cut_then_stitch_gives_the_frame_back(grid, scale):
    """Patches cut from an HR frame (as a model's pixel-unshuffled output), stitched both ways."""
    hr = torch.rand(3, grid.height * scale, grid.width * scale)
    hr_grid = Grid(grid.width * scale, grid.height * scale, grid.patch_width * scale, grid.patch_height * scale)
    outs = F.pixel_unshuffle(hr_grid.cut(hr, 0), scale)                       # (N, 3*s*s, ph, pw)
    planes = list(torch.full_like(hr, -1))
    PatchBatches(grid, scale, 0, torch.device("cpu")).stitch(outs, planes)
    assert torch.equal(torch.stack(planes), hr)
    planes = list(torch.full_like(hr, -1))
    for r in range(grid.rows):                                                # whole patch rows as regions
        y0, x0, y1, x1 = grid.owned(r, 0, r + 1, grid.cols)
        out = F.pixel_unshuffle(window(hr, (y0 * scale, x0 * scale, y1 * scale, x1 * scale), 0), scale)
        paste(out, (y0, x0, y1, x1), planes, scale)
    assert torch.equal(torch.stack(planes), hr)


def test_report_cells_lie_on_the_pixels_each_patch_owns(tmp_path):
    """The chunk and PSNR maps of `stdo eval --report`: the cell of patch i covers exactly the HR pixels
    the stitched output takes from patch i (a shifted last column and row own only what they add)."""
    frame = torch.rand(3, 70, 100)
    grid = Grid(100, 70, 16, 12)
    model = WDSR(Arch(2, 2, 8, 2))
    labels = np.zeros((1, grid.rows, grid.cols), np.uint8)
    b = bundle_io.load(write_bundle(tmp_path / "b.stdo", [model], labels, [frame]))
    ax = Figure().subplots()
    values = np.arange(grid.count, dtype=np.float32).reshape(grid.rows, grid.cols)
    overlay(ax, torch.rand(3, 140, 200), values, b, ".0f")
    mesh = ax.collections[0]
    corners = mesh.get_coordinates()                                          # (rows + 1, cols + 1, 2) of (x, y)
    cells = np.asarray(mesh.get_array()).reshape(grid.rows, grid.cols)
    owner = painted_owner(grid, 2).numpy()
    for r in range(grid.rows):
        for c in range(grid.cols):
            (x0, y0), (x1, y1) = corners[r, c], corners[r + 1, c + 1]
            shown = owner[int(y0):int(y1), int(x0):int(x1)]
            assert shown.size and (shown == cells[r, c]).all(), (r, c, (y0, x0, y1, x1))
