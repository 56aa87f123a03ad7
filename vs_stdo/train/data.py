"""Training data: the LR/HR frames of one clip and batches of grid patches cut from them.

Frames are decoded once into two preallocated tensors: HR as uint8 RGB (the training target; a 1080p
frame is 6.2 MB) and LR as float32 RGB (or both as one luma plane, for `--planes luma`), exactly what
the filter is given for the same clip (a 480x270 frame is 1.6 MB). Which frames, and how many, is
train/frames.py's choice (a memory budget). Patches are cut on demand for each batch; nothing is stored
per patch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
import vapoursynth as vs
from tqdm import tqdm

from ..core.fingerprint import CELLS, fingerprint
from ..core.grid import Grid
from ..core.video import arrays

if TYPE_CHECKING:
    from .pairs import HRGrid

READ_CACHE_MB = 256  # VapourSynth's frame cache while decoding training frames


@dataclass
class Frames:
    lr: torch.Tensor            # (F, P, h, w) float32, about [0, 1]; P = 3 (RGB) or 1 (luma)
    hr: torch.Tensor            # (F, P, h*s, w*s) uint8
    fingerprints: np.ndarray    # (F, CELLS*CELLS) float32
    hr_grid: HRGrid | None = None  # a remaster pair (HR any size): the loss and scores on its HR grid

    @property
    def scale(self) -> int:
        return self.hr_grid.scale if self.hr_grid else self.hr.shape[-1] // self.lr.shape[-1]

    def subset(self, index: list[int]) -> "Frames":
        """A copy of some of the frames."""
        return Frames(self.lr[index], self.hr[index], self.fingerprints[index], self.hr_grid)

    def __len__(self) -> int:
        return len(self.lr)


def load_frames(hr: vs.VideoNode, lr: vs.VideoNode, positions: range | None = None,
                desc: str = "reading frames") -> Frames:
    """Decode an RGBS (or GRAYS) HR/LR pair into memory, with a progress bar: the frames at `positions`
    (default all; a range, so one VapourSynth node selects them: a node per frame would cache a frame each)."""
    if positions is not None:
        hr, lr = (clip[positions.start:positions.stop:positions.step] for clip in (hr, lr))
    n = lr.num_frames
    planes = lr.format.num_planes
    lrs = torch.empty(n, planes, lr.height, lr.width, dtype=torch.float32)
    hrs = torch.empty(n, planes, hr.height, hr.width, dtype=torch.uint8)
    prints = np.empty((n, CELLS * CELLS), np.float32)
    cache = vs.core.max_cache_size
    vs.core.max_cache_size = min(cache, READ_CACHE_MB)  # each frame is read once: a frame cache only holds memory
    try:
        for i, (lo, hi) in enumerate(tqdm(zip(arrays(lr), arrays(hr)), total=n, desc=desc, unit="frame")):
            lrs[i] = torch.from_numpy(lo)   # as the filter gets it: not clamped (resizers overshoot a little)
            prints[i] = fingerprint(lrs[i])
            hrs[i] = torch.from_numpy(hi).mul_(255).add_(0.5).clamp_(0, 255)  # in place: rounds, then truncates
    finally:
        vs.core.max_cache_size = cache
    return Frames(lrs, hrs, prints)


class Patches:
    """Cuts training batches: LR patches with context (replicated at frame borders), and their HR patches."""

    def __init__(self, frames: Frames, grid: Grid, context: int) -> None:
        self.frames, self.grid, self.context = frames, grid, context
        self.scale = frames.scale
        self.rows, self.cols = grid.spans(context)    # LR rows/columns of each patch with its context

    def batch(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """items: (B, 2) of (frame, patch index). Returns LR (B,P,ph+2c,pw+2c) for P planes, and HR in the layout
        of the models' output before the pixel shuffle (B,P*s*s,ph,pw) (WDSR.unshuffled).
        Patch by patch: HR patches are plain slices (one gather of the batch measured 3.7x slower, docs/scale.md).
        For a remaster pair the HR is each patch's window on the HR grid (B,P,Ly,Lx), see `predict`."""
        g, s = self.grid, self.scale
        xs, ys = [], []
        for f, i in items.tolist():
            y0, x0, y1, x1 = g.box(i)
            xs.append(self.frames.lr[f][:, self.rows[i][:, None], self.cols[i]])
            if not self.frames.hr_grid:
                ys.append(self.frames.hr[f, :, y0 * s:y1 * s, x0 * s:x1 * s])
        if self.frames.hr_grid:
            return torch.stack(xs), self.frames.hr_grid.targets(self.frames.hr, items)
        return torch.stack(xs), F.pixel_unshuffle(torch.stack(ys), s).float().div_(255)

    def predict(self, model: torch.nn.Module, x: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """A model's output for a batch's LR patches `x` (of `items`) in the layout of `batch`'s HR."""
        if self.frames.hr_grid:
            return self.frames.hr_grid.predict(model, x, items)
        return model.unshuffled(x, crop=self.context)


def all_items(frames: int, patches: int) -> torch.Tensor:
    """Every (frame, patch) pair, shape (frames*patches, 2)."""
    f, p = torch.meshgrid(torch.arange(frames), torch.arange(patches), indexing="ij")
    return torch.stack([f.flatten(), p.flatten()], 1)
