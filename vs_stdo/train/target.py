"""What training compares a model's output with: each patch's pixels on the HR grid, as the filter outputs them.

Every training pair has a mapping (core/mapping.py): where its LR frame lies on its HR frame. Two geometries
follow from it, chosen once by `target_for`:

`WholeScale`: the HR is exactly s times the LR, no offset (a plain downscale, or an LR encode of that size).
A patch's HR pixels are the s x s blocks of its LR pixels, so the HR patch is a slice, compared with the
models' output before the pixel shuffle (WDSR.unshuffled), which skips the shuffle and its backward pass.

`Resampled`: any other mapping (a DVD against a Blu-ray). The models still upscale by a whole scale s; the
filter puts their stitched s-grid frame on the HR grid with zimg's Catmull-Rom resize, and training takes
the loss through the same resampler (core/mapping.py's differentiable matrices, tested equal to zimg). Patch
i (LR box x0..x1) covers HR x from offset + ratio * x0 over ratio * patch_width pixels; its window is the
floor(ratio * patch_width) HR pixels whose centres lie in it (the same per axis), and only the pixels of
the area both pictures show count (a mask): black bars on either side are never compared, and the resampler
reads the LR picture alone, mirrored at its edges, as playback does. The model runs on the patch with `context` LR pixels around it and
keeps MARGIN of them in its output for the resampling taps.

Both give a batch's targets (`targets`), a model's prediction in the same layout (`predict`), each
patch's PSNR in a whole frame's upscale (`patch_psnr`), which scoring and best-model labels use, and a whole
frame's upscale on the HR grid as the filter outputs it with sums over each patch's pixels there (`on_hr`,
`per_patch`), which the held-out scenes use (validation.py).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..core.grid import Grid
from ..core.mapping import Mapping, axis_matrix, embedded, frame_matrices, resample
from ..core.metrics import mse_to_psnr

MARGIN = 2  # LR pixels of model output kept around a patch for the resampling taps (they reach 2-3 s-grid px)


class WholeScale:
    """HR = s x LR: a patch's HR pixels are a slice, compared in the models' unshuffled layout."""

    def __init__(self, grid: Grid, scale: int, context: int) -> None:
        self.grid, self.scale, self.context = grid, scale, context

    def targets(self, hr: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The HR patches of (frame, patch) `items` from uint8 HR frames (F, P, H, W): (B, P*s*s, ph, pw) float,
        patch by patch (plain slices: one gather of the batch measured 3.7x slower, docs/scale.md)."""
        s = self.scale
        ys = []
        for f, i in items.tolist():
            y0, x0, y1, x1 = self.grid.box(i)
            ys.append(hr[f, :, y0 * s:y1 * s, x0 * s:x1 * s])
        return F.pixel_unshuffle(torch.stack(ys), s).float().div_(255)

    def predict(self, model: torch.nn.Module, x: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """A model's output for LR patches with context `x`, in the layout of `targets`."""
        return model.unshuffled(x, crop=self.context)

    def patch_psnr(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """PSNR of each grid patch of a whole frame's upscale `sr` (P, H s, W s) against the HR frame (P, H s, W s)."""
        return patch_psnr(sr, hr, self.grid, self.scale)

    def on_hr(self, sr: torch.Tensor) -> torch.Tensor:
        """A whole frame's upscale as the filter outputs it: clamped to [0, 1]."""
        return sr.float().clamp(0, 1)

    def per_patch(self, values: torch.Tensor) -> torch.Tensor:
        """(grid.count,) sums of `values` (P, H s, W s) over each patch's HR pixels."""
        return torch.stack([values[:, y:y + h, x:x + w].sum() for y, x, h, w in self.grid.hr_boxes(self.scale)])


def patch_psnr(sr: torch.Tensor, hr: torch.Tensor, grid: Grid, scale: int) -> torch.Tensor:
    """PSNR of each grid patch of an upscaled CHW frame against the HR frame of `scale` times the grid's size."""
    err = (sr.float().clamp(0, 1) - hr.float()) ** 2
    mses = torch.stack([err[:, y:y + h, x:x + w].mean() for y, x, h, w in grid.hr_boxes(scale)])
    return mse_to_psnr(mses)


class Resampled:
    """Any other mapping: patch windows on the HR grid, the model's s-grid output resampled onto them."""

    def __init__(self, mapping: Mapping, scale: int, grid: Grid, context: int) -> None:
        if (grid.width, grid.height) != (mapping.lr_width, mapping.lr_height):
            raise ValueError(f"the patch grid is for {grid.width}x{grid.height} but the mapping for "
                             f"{mapping.lr_width}x{mapping.lr_height}")
        self.mapping, self.scale, self.grid, self.context = mapping, scale, grid, context
        self.margin = min(MARGIN, context)
        x0, y0, x1, y1 = mapping.overlap()
        px0, py0, px1, py1 = mapping.lr_picture()
        ys, xs = grid.edges
        (ry, oy), (rx, ox) = mapping.axes()
        self.rows = self._axis(ry, oy, ys[:-1], grid.patch_height, (py0, py1), (y0, y1), mapping.hr_height)
        self.cols = self._axis(rx, ox, xs[:-1], grid.patch_width, (px0, px1), (x0, x1), mapping.hr_width)

    def _axis(self, ratio: float, offset: float, starts: list[int], patch: int, picture: tuple[int, int],
              overlap: tuple[int, int], hr_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per patch row (or column): (resampling matrices (n, L, (patch + 2 margin) s), HR indices (n, L),
        overlap mask (n, L)). The matrices read only the part of the patch's window inside the LR picture
        (`picture`: its first and end LR pixel on this axis), mirrored at the picture's edges, as playback reads
        the picture cut from the frame."""
        s, m = self.scale, self.margin
        length = max(1, math.floor(ratio * patch))
        mats, idx, mask = [], [], []
        for start in starts:
            first = math.ceil(offset + ratio * start - 0.5)
            j = torch.arange(first, first + length)
            lo, hi = (start - m) * s, (start + patch + m) * s
            a, b = max(lo, picture[0] * s), min(hi, picture[1] * s)
            mats.append(embedded(axis_matrix(ratio, offset, s, a, b - a, first, length), 0, a - lo, length, hi - lo)
                        if b > a else torch.zeros(length, hi - lo))
            idx.append(j.clamp(0, hr_len - 1))
            mask.append(((j >= overlap[0]) & (j < overlap[1])).float())
        return torch.stack(mats), torch.stack(idx), torch.stack(mask)

    def _parts(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch row and column of each (frame, patch) item."""
        i = items[:, 1]
        return i // self.grid.cols, i % self.grid.cols

    def mask(self, r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """(B, 1, Ly, Lx): 1 where a window's pixel lies in the overlap."""
        return (self.rows[2][r][:, :, None] * self.cols[2][c][:, None, :])[:, None]

    def targets(self, hr: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The HR windows of the items from uint8 HR frames (F, P, H, W): (B, P, Ly, Lx) float, zero outside
        the overlap."""
        r, c = self._parts(items)
        ys, xs = self.rows[1][r], self.cols[1][c]
        out = torch.stack([hr[f, :, y[:, None], x] for f, y, x in zip(items[:, 0].tolist(), ys, xs)])
        return out.float().div_(255) * self.mask(r, c)

    def predict(self, model: torch.nn.Module, x: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The model's output for LR patches with context `x` (B, P, ph + 2c, pw + 2c), on the items' HR
        windows: (B, P, Ly, Lx), zero outside the overlap."""
        out = F.pixel_shuffle(model.unshuffled(x, crop=self.context - self.margin), self.scale)
        r, c = self._parts(items.cpu())
        with torch.autocast(x.device.type, enabled=False):
            my, mx = self.rows[0][r].to(x.device), self.cols[0][c].to(x.device)
            hr = my[:, None] @ out.float() @ mx[:, None].transpose(-1, -2)
        return hr * self.mask(r, c).to(x.device)

    def on_hr(self, sr: torch.Tensor) -> torch.Tensor:
        """A whole frame's s-grid upscale (P, H s, W s) on the HR grid (P, HR height, HR width), clamped to
        [0, 1] before and after, as the filter outputs it."""
        return resample(sr.float().clamp(0, 1), *frame_matrices(self.mapping, self.scale)).clamp_(0, 1)

    def per_patch(self, values: torch.Tensor) -> torch.Tensor:
        """(grid.count,) sums of `values` (P, HR height, HR width) over each patch's HR window, inside the overlap."""
        _, iy, my = self.rows
        _, ix, mx = self.cols
        return torch.stack([(values[:, iy[r][:, None], ix[c]] * (my[r][:, None] * mx[c][None, :])).sum()
                            for r in range(self.grid.rows) for c in range(self.grid.cols)])

    def patch_psnr(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """PSNR of each patch's HR window (inside the overlap) of a whole frame's s-grid upscale `sr` against
        the HR frame `hr` (P, H, W) in [0, 1]: the comparison training makes, on the filter's output."""
        err = (self.on_hr(sr) - hr.float()) ** 2
        pixels = self.per_patch(torch.ones_like(err[:1])) * len(err)
        return mse_to_psnr(self.per_patch(err) / pixels.clamp_min(1))


Target = WholeScale | Resampled


def target_for(mapping: Mapping, scale: int, grid: Grid, context: int) -> Target:
    """The training target of a pair with `mapping` for models at `scale`: whole-scale where the HR is exactly
    `scale` times the LR, else resampled onto the HR grid."""
    if mapping.whole() and mapping.scale() == scale:
        return WholeScale(grid, scale, context)
    return Resampled(mapping, scale, grid, context)
