"""Image quality measures. Frames are float RGB in [0, 1]."""
from __future__ import annotations

import math

import numpy as np
import torch

_Y = torch.tensor([0.2126, 0.7152, 0.0722])


def mse_to_psnr(mse: float | torch.Tensor) -> float | torch.Tensor:
    if isinstance(mse, torch.Tensor):
        return 10 * torch.log10(1 / mse.clamp_min(1e-12))
    return 10 * math.log10(1 / max(mse, 1e-12))


def psnr_to_mse(psnr: np.ndarray) -> np.ndarray:
    """The mean squared error (of [0, 1] values) that a PSNR in dB stands for, in float64."""
    return 10 ** (-psnr.astype(np.float64) / 10)


def frames_psnr(patch_mse: np.ndarray | torch.Tensor) -> float:
    """The mean over frames of per-frame PSNR, what `stdo eval` reports, from the squared errors of each frame's
    equal-sized patches, (frames, patches...)."""
    per_frame = np.asarray(patch_mse, dtype=np.float64).reshape(len(patch_mse), -1).mean(1)
    return float(np.mean(-10 * np.log10(np.maximum(per_frame, 1e-12))))


def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.709 luma of (..., 3, H, W) RGB; the plane itself of (..., 1, H, W) luma."""
    if x.shape[-3] == 1:
        return x[..., 0, :, :]
    return (x * _Y.to(x).view(3, 1, 1)).sum(-3)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(mse_to_psnr(torch.mean((a.float() - b.float()) ** 2).item()))


def psnr_y(a: torch.Tensor, b: torch.Tensor) -> float:
    return psnr(luma(a.float()), luma(b.float()))
