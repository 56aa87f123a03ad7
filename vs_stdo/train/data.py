"""Training data: the LR/HR frames of one pair and batches of grid patches cut from them.

Frames are decoded once into two preallocated tensors: HR as uint8 RGB (the training target; a 1080p
frame is 6.2 MB) and LR as float32 RGB (or both as one luma plane, for `--planes luma`), exactly what
the filter is given for the same clip (a 480x270 frame is 1.6 MB), with the pair's mapping (where the LR
lies on the HR grid). Which frames, and how many, is train/frames.py's choice (a memory budget). Patches
are cut on demand for each batch, their HR side by the training target (target.py); nothing is stored per
patch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence
import numpy as np
import torch
import vapoursynth as vs
from tqdm import tqdm

from ..core.fingerprint import CELLS, fingerprint
from ..core.grid import Grid
from ..core.mapping import Mapping
from ..core.video import arrays, pick
from .target import Target

READ_CACHE_MB = 256  # VapourSynth's frame cache while decoding training frames


@dataclass
class Frames:
    lr: torch.Tensor            # (F, P, h, w) float32, about [0, 1]; P = 3 (RGB) or 1 (luma)
    hr: torch.Tensor            # (F, P, h*s, w*s) uint8
    fingerprints: np.ndarray    # (F, CELLS*CELLS) float32
    mapping: Mapping | None = None  # where the LR frames lie on the HR grid; None: they cover each other exactly

    def __post_init__(self) -> None:
        if self.mapping is None:
            (h, w), (hh, hw) = self.lr.shape[-2:], self.hr.shape[-2:]
            self.mapping = Mapping.plain(w, h, hw, hh)

    def subset(self, index: list[int]) -> "Frames":
        """A copy of some of the frames."""
        return Frames(self.lr[index], self.hr[index], self.fingerprints[index], self.mapping)

    def __len__(self) -> int:
        return len(self.lr)


def load_frames(hr: vs.VideoNode, lr: vs.VideoNode, positions: Sequence[int] | None = None,
                mapping: Mapping | None = None, desc: str = "reading frames") -> Frames:
    """Decode an RGBS (or GRAYS) HR/LR pair into memory, with a progress bar: the frames at `positions`
    (default all; selected by one VapourSynth node: a node per frame would cache a frame each).
    `mapping`: where the LR lies on the HR grid (default: they cover each other exactly)."""
    if positions is not None:
        hr, lr = pick(hr, positions), pick(lr, positions)
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
    return Frames(lrs, hrs, prints, mapping)


class Patches:
    """Cuts training batches: LR patches with the target's context (replicated at frame borders), and their HR
    side as the training target lays it out."""

    def __init__(self, frames: Frames, grid: Grid, target: Target) -> None:
        self.frames, self.grid, self.target = frames, grid, target
        self.rows, self.cols = grid.spans(target.context)    # LR rows/columns of each patch with its context

    def batch(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """items: (B, 2) of (frame, patch index). Returns LR (B,P,ph+2c,pw+2c) for P planes, and the HR in the
        target's layout (target.py)."""
        xs = [self.frames.lr[f][:, self.rows[i][:, None], self.cols[i]] for f, i in items.tolist()]
        return torch.stack(xs), self.target.targets(self.frames.hr, items)

    def predict(self, model: torch.nn.Module, x: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """A model's output for a batch's LR patches `x` (of `items`) in the layout of `batch`'s HR."""
        return self.target.predict(model, x, items)


def all_items(frames: int, patches: int) -> torch.Tensor:
    """Every (frame, patch) pair, shape (frames*patches, 2)."""
    f, p = torch.meshgrid(torch.arange(frames), torch.arange(patches), indexing="ij")
    return torch.stack([f.flatten(), p.flatten()], 1)
