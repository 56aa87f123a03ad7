"""Training data: the LR/HR frames of one clip and batches of grid patches cut from them.

HR frames are kept as uint8 RGB (a 1080p frame is 6 MB), LR frames as float32, so a 10 s 1080p
clip needs about 2.4 GB. Patches are cut on demand; nothing is duplicated per patch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import vapoursynth as vs
from tqdm import tqdm

from .fingerprint import fingerprint
from .grid import Grid
from .video import arrays

CONTEXT_CAP = 8  # LR pixels of real context around each training patch (cost grows with it)


@dataclass
class Frames:
    lr: torch.Tensor            # (F, 3, h, w) float32 in [0, 1]
    hr: torch.Tensor            # (F, 3, h*s, w*s) uint8
    fingerprints: np.ndarray    # (F, 256) float32

    @property
    def scale(self) -> int:
        return self.hr.shape[-1] // self.lr.shape[-1]

    def __len__(self) -> int:
        return len(self.lr)


def load_frames(hr: vs.VideoNode, lr: vs.VideoNode, desc: str = "reading frames") -> Frames:
    """Decode an RGBS HR/LR pair into memory, with a progress bar."""
    lrs, hrs, prints = [], [], []
    for lo, hi in tqdm(zip(arrays(lr), arrays(hr)), total=lr.num_frames, desc=desc, unit="frame"):
        lo_t = torch.from_numpy(lo).clamp_(0, 1)
        lrs.append(lo_t)
        prints.append(fingerprint(lo_t))
        hrs.append(torch.from_numpy(np.clip(hi * 255 + 0.5, 0, 255).astype(np.uint8)))
    return Frames(torch.stack(lrs), torch.stack(hrs), np.stack(prints))


class Patches:
    """Cuts training batches: LR patches with context, and their HR patches."""

    def __init__(self, frames: Frames, grid: Grid, context: int) -> None:
        self.frames, self.grid, self.context = frames, grid, context
        self.lr_padded = F.pad(frames.lr, (context,) * 4, mode="replicate") if context else frames.lr
        self.scale = frames.scale

    def batch(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """items: (B, 2) of (frame, patch index). Returns LR (B,3,ph+2c,pw+2c), HR (B,3,ph*s,pw*s)."""
        g, c, s = self.grid, self.context, self.scale
        h, w = g.patch_height, g.patch_width
        xs, ys = [], []
        for f, i in items.tolist():
            y, x = g.origins[i]
            xs.append(self.lr_padded[f, :, y:y + h + 2 * c, x:x + w + 2 * c])
            ys.append(self.frames.hr[f, :, y * s:(y + h) * s, x * s:(x + w) * s])
        return torch.stack(xs), torch.stack(ys).float().div_(255)

    def crop_output(self, out: torch.Tensor) -> torch.Tensor:
        """The part of a model's output that belongs to the patch (drops the context)."""
        m = self.context * self.scale
        return out[..., m:out.shape[-2] - m, m:out.shape[-1] - m] if m else out


def all_items(frames: int, patches: int) -> torch.Tensor:
    """Every (frame, patch) pair, shape (frames*patches, 2)."""
    f, p = torch.meshgrid(torch.arange(frames), torch.arange(patches), indexing="ij")
    return torch.stack([f.flatten(), p.flatten()], 1)
