"""Scoring patches and splitting them into k chunks by difficulty (STDO steps 2 and 3)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .grid import Grid
from .metrics import mse_to_psnr


def patch_psnr(sr: torch.Tensor, hr: torch.Tensor, grid: Grid, scale: int) -> torch.Tensor:
    """PSNR of each grid patch of an upscaled CHW frame against the HR frame."""
    err = (sr.float().clamp(0, 1) - hr.float()) ** 2
    mses = torch.stack([err[:, y:y + h, x:x + w].mean() for y, x, h, w in grid.hr_boxes(scale)])
    return mse_to_psnr(mses)


def bicubic_psnr(lr: torch.Tensor, hr: torch.Tensor, grid: Grid, scale: int) -> torch.Tensor:
    """Per-patch PSNR of plain bicubic upscaling: the free reference scorer f0."""
    sr = F.interpolate(lr[None], scale_factor=scale, mode="bicubic", align_corners=False)[0]
    return patch_psnr(sr, hr, grid, scale)


def split(psnr: np.ndarray, k: int) -> tuple[np.ndarray, list[float]]:
    """Labels (uint8, same shape as psnr) for k equal-sized chunks by PSNR rank, chunk 0 the
    hardest (lowest PSNR), and the k-1 PSNR thresholds between chunks."""
    flat = psnr.reshape(-1)
    if not 1 <= k <= min(255, flat.size):
        raise ValueError(f"cannot split {flat.size} patches into {k} chunks; use 1 <= k <= {min(255, flat.size)}")
    order = np.argsort(flat, kind="stable")
    labels = np.empty(flat.size, dtype=np.uint8)
    labels[order] = (np.arange(flat.size) * k // flat.size).astype(np.uint8)
    sorted_psnr = flat[order]
    thresholds = [float(sorted_psnr[(i * flat.size) // k]) for i in range(1, k)]
    return labels.reshape(psnr.shape), thresholds
