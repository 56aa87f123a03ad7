"""Blind routing: pick each patch's chunk model from the LR patch alone (no labels, no HR).

Features of an LR patch (RGB or luma, clamped to [0, 1]; energies on a log10 scale):
  grad    mean squared luma gradient (edges and texture)
  lap     mean squared luma Laplacian (the finest detail)
  var     luma variance (contrast)
  mean    mean luma (errors are smaller in dark areas)
  self2   PSNR of the luma against its own downscale-by-2-and-back
  selfs   the same at the bundle's scale: the LR-side twin of the bicubic PSNR the labels come from

The router is a tiny MLP on standardised features whose argmax is the chunk. It is fitted for
"expected quality", not for the labels: every chunk model is run on the training patches once, each
patch's target is the model that reconstructs it best, and its weight in the (cross-entropy) loss is
its stake, the MSE the worst model adds over the best one; patches where the models tie teach
nothing. On training frames this beats copying the labels (docs/routing.md).

In a bundle the router is data (core/router_state.py); training fits it (train/router_fit.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.grid import Grid
from ..core.metrics import luma
from ..core.router_state import FEATURES, RouterState

EPS = 1e-6  # floor of energies and resampling errors: flat patches stay finite (60 dB)
_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def _log_energy(x: torch.Tensor) -> torch.Tensor:
    return torch.log10(x.flatten(1).mean(1) + EPS)


def _resample_psnr(y: torch.Tensor, factor: int) -> torch.Tensor:
    h, w = y.shape[-2:]
    small = F.interpolate(y, size=(max(1, h // factor), max(1, w // factor)), mode="bicubic", antialias=True,
                          align_corners=False)
    back = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    return -10 * _log_energy((back - y) ** 2)


def features(patches: torch.Tensor, scale: int, names: tuple[str, ...] = FEATURES) -> torch.Tensor:
    """(N, len(names)) features of LR patches (N, 3 or 1, h, w)."""
    y = luma(patches.float().clamp(0, 1))[:, None]
    dx, dy = y[..., :, 1:] - y[..., :, :-1], y[..., 1:, :] - y[..., :-1, :]
    compute = {
        "grad": lambda: torch.log10((dx ** 2).flatten(1).mean(1) + (dy ** 2).flatten(1).mean(1) + EPS),
        "lap": lambda: _log_energy(F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), _LAPLACE) ** 2),
        "var": lambda: torch.log10(y.flatten(1).var(1, unbiased=False) + EPS),
        "mean": lambda: y.flatten(1).mean(1),
        "self2": lambda: _resample_psnr(y, 2),
        "selfs": lambda: _resample_psnr(y, scale),
    }
    return torch.stack([compute[n]() for n in names], 1)


def frame_features(lr: torch.Tensor, grid: Grid, scale: int) -> torch.Tensor:
    """Features of every grid patch of LR frames (F, 3, h, w): (F * grid.count, len(FEATURES)), frame-major."""
    return torch.cat([features(grid.cut(frame, 0), scale) for frame in lr])


class BlindRouter:
    """LR patches -> chunk indices: a stored router's standardised features, one hidden ReLU layer, argmax."""

    def __init__(self, state: RouterState, scale: int) -> None:
        self.state, self.scale = state, scale

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        t = self.state.tensors
        z = (feats - t["mean"]) / t["std"]
        return F.linear(F.relu(F.linear(z, t["hidden.weight"], t["hidden.bias"])), t["out.weight"], t["out.bias"])

    @torch.inference_mode()
    def __call__(self, patches: torch.Tensor) -> torch.Tensor:
        """Chunk of each LR patch (N, 3, h, w) in [0, 1]: a LongTensor (N,) on the CPU."""
        return self.logits(features(patches.cpu(), self.scale, self.state.names)).argmax(1)
