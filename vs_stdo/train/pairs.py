"""Remaster pairs: training on an LR that is not an exact whole-scale downscale of the HR (a DVD against a
Blu-ray): any per-axis ratio, another framing, another frame count.

`open_remaster` aligns the two clips (train/align.py: frames paired by content, the mapping estimated to a
fraction of a pixel) and gives the paired frames, each side read with its own colour. The models still run
at a whole scale s; `HRGrid` takes the training loss on the HR grid: each patch's s-grid output (with a
margin of its context, for the resampling taps) goes through the fixed resampler of core/mapping.py (one
matrix per patch row and column, computed once) onto the HR pixels its LR patch covers, inside the area
both clips show, and is compared there with the HR. Scoring compares the same windows of the whole frame's
upscale put on the HR grid the same way, which is what the filter outputs.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import vapoursynth as vs

from ..core import colour
from ..core.grid import Grid
from ..core.mapping import Mapping, axis_matrix, frame_matrices, resample
from ..core.metrics import mse_to_psnr
from ..core.models import SCALES
from ..core.video import frame_range, open_clip
from .align import Alignment, align

MARGIN = 2  # LR pixels of model output kept around a patch for the resampling taps (they reach 2-3 s-grid px)


def whole_pair(hr: vs.VideoNode, lr: vs.VideoNode, scale: int) -> bool:
    """Whether `lr` is what today's trainer takes as it is: the size of `hr` downscaled by `scale` (after
    cropping to a multiple of it) and as many frames."""
    return (lr.width, lr.height) == (hr.width // scale, hr.height // scale) and lr.num_frames == hr.num_frames


@dataclass
class RemasterPair:
    """An aligned HR/LR pair for training: `hr`, `lr` (RGBS, the kept pairs within --frames, in order),
    `colour` (the LR's: what the filter reads an untagged LR clip with), the alignment of the whole clips and
    the models' scale."""

    source: vs.VideoNode
    hr: vs.VideoNode
    lr: vs.VideoNode
    colour: colour.Colour
    alignment: Alignment
    scale: int
    report: list[str]  # the lines printed before training
    trained_pairs: int  # the pairs within --frames

    @property
    def mapping(self) -> Mapping:
        return self.alignment.mapping

    def clip_info(self) -> dict[str, Any]:
        """What the bundle's clip entry records beyond today's: the alignment summary (`stdo info` shows it)."""
        a = self.alignment
        return {"alignment": {"lines": self.report, "pairs": len(a.pairs), "trained_pairs": self.trained_pairs, "dropped": len(a.dropped),
                              "frame_offset": a.frame_offset(), "unpaired_hr": a.unpaired[0],
                              "unpaired_lr": a.unpaired[1], "precision_px": a.precision,
                              "residual_median_db": round(float(sorted(a.residuals)[len(a.residuals) // 2]), 2)}}


def model_scale(mapping: Mapping, given: int | None) -> int:
    """The models' whole scale: `given` (--scale) when at or above the larger ratio, else an error; by default
    the mapping's (at least 2, the smallest the models have)."""
    need = max(mapping.ratio_x, mapping.ratio_y)
    if mapping.scale() > max(SCALES):
        raise ValueError(f"the LR-to-HR ratio {mapping.ratio_x:.3f} x {mapping.ratio_y:.3f} is beyond x{max(SCALES)}, "
                         f"the largest scale the models have; give a larger LR")
    if given is None:
        return max(2, mapping.scale())
    if given + 1e-6 < need:
        raise ValueError(f"--scale {given} is below the LR-to-HR ratio {mapping.ratio_x:.3f} x {mapping.ratio_y:.3f}; "
                         f"give --scale {mapping.scale()} or more, or leave --scale out")
    return given


def pick(clip: vs.VideoNode, frames: list[int]) -> vs.VideoNode:
    """The given frames of `clip`, in that order, as one clip (one node, not a node per frame)."""
    base = vs.core.std.BlankClip(clip, length=len(frames))
    return base.std.FrameEval(lambda n: clip[frames[n]])


def open_remaster(input: str | Path, lr_file: str | Path, frames: str | None, scale: int, scale_given: bool,
                  align_only: str | Path | None = None) -> RemasterPair | None:
    """The aligned pair of `stdo train INPUT --lr LR_FILE` when the LR is not an exact x`scale` downscale of
    the input (None when it is: today's path). Prints the alignment before anything else; with `align_only`
    (the bundle path) writes its PNG next to it and returns None after saying where. The models' scale is
    `scale` if `scale_given`, else the mapping's."""
    src = open_clip(input)
    lr_src = open_clip(lr_file, "LR file")
    if whole_pair(src, lr_src, scale) and align_only is None:
        return None
    picked = frame_range(frames, src.num_frames)
    print(f"aligning {Path(lr_file).name} ({lr_src.width}x{lr_src.height}, {lr_src.num_frames} frames) to "
          f"{Path(input).name} ({src.width}x{src.height}, {src.num_frames} frames)", file=sys.stderr)
    # the whole clips: more frames tell a pan (the picture moving) from another framing apart
    a = align(src, lr_src)
    kept = [(h, l) for h, l in a.pairs if h in picked]
    if not kept:
        raise ValueError(f"no LR frame pairs with HR frames {picked.start}-{picked.stop - 1} (--frames); widen "
                         f"--frames or check the LR")
    report = a.lines()
    if len(picked) < src.num_frames:
        report.append(f"--frames {frames}: training on the {len(kept)} pairs of HR frames {picked.start}-{picked.stop - 1}")
    for line in report:
        print(line, file=sys.stderr)
    if align_only is not None:
        png = a.save_png(Path(str(align_only) + ".align.png"), src, lr_src)
        print(f"--align-only: wrote {png}; no bundle (run again without --align-only to train)", file=sys.stderr)
        return None
    s = model_scale(a.mapping, scale if scale_given else None)
    hr_colour, lr_colour = colour.pair_colour(src), colour.pair_colour(lr_src)  # each side with its own tags
    hr_rgb = colour.clip_to_rgbs(pick(src, [h for h, _ in kept]), hr_colour)
    lr_paired = pick(lr_src, [l for _, l in kept])
    return RemasterPair(src, hr_rgb, colour.clip_to_rgbs(lr_paired, lr_colour), lr_colour, a, s, report, len(kept))


class HRGrid:
    """The patches' windows on the HR grid and the resampler onto them, for training and scoring.

    Patch i (LR box x0..x1) covers HR x from offset_x + ratio_x * x0 over ratio_x * patch_width pixels; its
    window is the floor(ratio_x * patch_width) HR pixels whose centres lie in it (the same per axis), and
    only the pixels of the overlap count (a mask). The model runs on the patch with `context` LR pixels
    around it and keeps MARGIN of them (at most `context`) in its output for the resampling taps."""

    def __init__(self, mapping: Mapping, scale: int, grid: Grid, context: int) -> None:
        if (grid.width, grid.height) != (mapping.lr_width, mapping.lr_height):
            raise ValueError(f"the patch grid is for {grid.width}x{grid.height} but the mapping for "
                             f"{mapping.lr_width}x{mapping.lr_height}")
        self.mapping, self.scale, self.grid, self.context = mapping, scale, grid, context
        self.margin = min(MARGIN, context)
        x0, y0, x1, y1 = mapping.overlap()
        ys, xs = grid.edges
        (ry, oy), (rx, ox) = mapping.axes()
        self.rows = self._axis(ry, oy, ys[:-1], grid.patch_height, y0, y1, mapping.hr_height)
        self.cols = self._axis(rx, ox, xs[:-1], grid.patch_width, x0, x1, mapping.hr_width)

    def _axis(self, ratio: float, offset: float, starts: list[int], patch: int, lo: int, hi: int,
              hr_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per patch row (or column): (resampling matrices (n, L, (patch + 2 margin) s), HR indices (n, L),
        overlap mask (n, L))."""
        s, m = self.scale, self.margin
        length = max(1, math.floor(ratio * patch))
        mats, idx, mask = [], [], []
        for start in starts:
            first = math.ceil(offset + ratio * start - 0.5)
            j = torch.arange(first, first + length)
            mats.append(axis_matrix(ratio, offset, s, (start - m) * s, (patch + 2 * m) * s, first, length))
            idx.append(j.clamp(0, hr_len - 1))
            mask.append(((j >= lo) & (j < hi)).float())
        return torch.stack(mats), torch.stack(idx), torch.stack(mask)

    def _parts(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch row and column of each (frame, patch) item."""
        i = items[:, 1]
        return i // self.grid.cols, i % self.grid.cols

    def targets(self, hr: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The HR windows of the items from uint8 HR frames (F, P, H, W): (B, P, Ly, Lx) float, zero outside
        the overlap."""
        r, c = self._parts(items)
        ys, xs = self.rows[1][r], self.cols[1][c]
        out = torch.stack([hr[f, :, y[:, None], x] for f, y, x in zip(items[:, 0].tolist(), ys, xs)])
        return out.float().div_(255) * self.mask(r, c)

    def mask(self, r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """(B, 1, Ly, Lx): 1 where a window's pixel lies in the overlap."""
        return (self.rows[2][r][:, :, None] * self.cols[2][c][:, None, :])[:, None]

    def predict(self, model: torch.nn.Module, x: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The model's output for LR patches with context `x` (B, P, ph + 2c, pw + 2c), on the items' HR
        windows: (B, P, Ly, Lx), zero outside the overlap."""
        out = F.pixel_shuffle(model.unshuffled(x, crop=self.context - self.margin), self.scale)
        r, c = self._parts(items.cpu())
        with torch.autocast(x.device.type, enabled=False):
            my, mx = self.rows[0][r].to(x.device), self.cols[0][c].to(x.device)
            hr = my[:, None] @ out.float() @ mx[:, None].transpose(-1, -2)
        return hr * self.mask(r, c).to(x.device)

    def frame(self, sr: torch.Tensor) -> torch.Tensor:
        """A whole frame's s-grid upscale (P, H s, W s) on the HR grid (P, HR height, HR width), clamped to
        [0, 1] before and after, as the filter outputs it."""
        return resample(sr.clamp(0, 1), *frame_matrices(self.mapping, self.scale)).clamp_(0, 1)

    def patch_psnr(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """PSNR of each patch's HR window (inside the overlap) of a whole frame's s-grid upscale `sr` against
        the HR frame `hr` (P, H, W) in [0, 1]: the comparison training makes, as the filter's output."""
        err = (self.frame(sr.float()) - hr.float()) ** 2
        _, iy, my = self.rows
        _, ix, mx = self.cols
        mses = []
        for r in range(self.grid.rows):
            for c in range(self.grid.cols):
                w = my[r][:, None] * mx[c][None, :]
                mses.append((err[:, iy[r][:, None], ix[c]] * w).sum() / (w.sum() * len(err)).clamp_min(1))
        return mse_to_psnr(torch.stack(mses))

