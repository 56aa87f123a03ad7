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

In a bundle (format 2) the router is data: tensors under `router.` and a `router` manifest entry.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .grid import Grid
from .metrics import frames_psnr, luma, psnr_to_mse

FEATURES = ("grad", "lap", "var", "mean", "self2", "selfs")
HIDDEN = 32
STEPS = 1000
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
    """LR patches -> chunk indices: standardised features, one hidden ReLU layer, argmax."""

    def __init__(self, scale: int, names: tuple[str, ...], tensors: dict[str, torch.Tensor],
                 info: dict[str, Any] | None = None) -> None:
        self.scale, self.names, self.tensors = scale, tuple(names), tensors
        self.info = info or {}

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        t = self.tensors
        z = (feats - t["mean"]) / t["std"]
        return F.linear(F.relu(F.linear(z, t["hidden.weight"], t["hidden.bias"])), t["out.weight"], t["out.bias"])

    @torch.inference_mode()
    def __call__(self, patches: torch.Tensor) -> torch.Tensor:
        """Chunk of each LR patch (N, 3, h, w) in [0, 1]: a LongTensor (N,) on the CPU."""
        return self.logits(features(patches.cpu(), self.scale, self.names)).argmax(1)

    def manifest(self) -> dict[str, Any]:
        return {"kind": "mlp", "features": list(self.names), "hidden": len(self.tensors["hidden.bias"]),
                "fit": self.info}

    def state(self) -> dict[str, np.ndarray]:
        """Tensors to store, under the bundle's `router.` prefix."""
        return {name: t.detach().cpu().float().numpy() for name, t in self.tensors.items()}

    @classmethod
    def from_state(cls, manifest: Any, tensors: dict[str, np.ndarray], scale: int, chunks: int) -> "BlindRouter":
        """Rebuild and check a stored router; raises ValueError naming what does not fit."""
        if not isinstance(manifest, dict) or manifest.get("kind") != "mlp":
            raise ValueError(f"the manifest's router entry must be an object of kind 'mlp', got {manifest!r:.80}")
        names, hidden = manifest.get("features"), manifest.get("hidden")
        if (not isinstance(names, list) or not names or len(set(names)) != len(names)
                or not all(n in FEATURES for n in names)):
            raise ValueError(f"router features must be distinct names from {list(FEATURES)}, got {names!r:.80}")
        if not isinstance(hidden, int) or isinstance(hidden, bool) or not 1 <= hidden <= 256:
            raise ValueError(f"router hidden size must be an integer in [1, 256], got {hidden!r:.80}")
        n = len(names)
        shapes = {"mean": (n,), "std": (n,), "hidden.weight": (hidden, n), "hidden.bias": (hidden,),
                  "out.weight": (chunks, hidden), "out.bias": (chunks,)}
        if set(tensors) != set(shapes):
            raise ValueError(f"router tensors are {sorted(tensors)}, expected {sorted(shapes)}")
        out = {}
        for name, shape in shapes.items():
            t = tensors[name]
            if t.dtype != np.float32 or t.shape != shape or not np.isfinite(t).all():
                raise ValueError(f"router tensor {name!r} is {t.dtype}{list(t.shape)}, expected finite "
                                 f"float32{list(shape)}")
            out[name] = torch.from_numpy(t.copy())
        if not (out["std"] > 0).all():
            raise ValueError("router tensor 'std' must be positive")
        info = manifest.get("fit")
        return cls(scale, tuple(names), out, info if isinstance(info, dict) else {})


def fit(lr: torch.Tensor, grid: Grid, scale: int, psnr: np.ndarray, labels: np.ndarray, seed: int = 0,
        steps: int = STEPS, target: str = "best") -> BlindRouter:
    """Fit a router on training frames.

    lr: (F, 3, h, w) LR frames; psnr: (k, F, rows, cols) each chunk model's PSNR on each patch;
    labels: (F, rows, cols) the bundle's labels. target "best": each patch's best model, weighted by
    its stake (expected quality, the default); "labels": copy the labels, every patch weighted alike.
    """
    if target not in ("best", "labels"):
        raise ValueError(f"unknown router target {target!r}; use 'best' or 'labels'")
    k = psnr.shape[0]
    feats = frame_features(lr, grid, scale)
    mse = patch_mse(psnr)
    label = torch.from_numpy(labels.reshape(-1).astype(np.int64))
    if target == "best":
        want, stake = mse.argmin(1), mse.max(1).values - mse.min(1).values
    else:
        want, stake = label, torch.ones(len(label))
    stake /= stake.sum().clamp_min(1e-12)
    mean, std = feats.mean(0), feats.std(0).clamp_min(1e-4)
    gen = torch.Generator().manual_seed(seed)
    t = {"mean": mean, "std": std,
         "hidden.weight": torch.randn(HIDDEN, feats.shape[1], generator=gen) / feats.shape[1] ** 0.5,
         "hidden.bias": torch.zeros(HIDDEN),
         "out.weight": torch.randn(k, HIDDEN, generator=gen) / HIDDEN ** 0.5, "out.bias": torch.zeros(k)}
    params = [t[n].requires_grad_() for n in ("hidden.weight", "hidden.bias", "out.weight", "out.bias")]
    router = BlindRouter(scale, FEATURES, t)
    opt = torch.optim.Adam(params, lr=0.02, weight_decay=1e-4)
    for _ in range(steps):
        loss = (F.cross_entropy(router.logits(feats), want, reduction="none") * stake).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    router.tensors = {n: v.detach() for n, v in t.items()}
    with torch.no_grad():
        chosen = router.logits(feats).argmax(1)
    router.info = {"target": target, "steps": steps} | report(mse, chosen, label, grid.count)
    return router


def patch_mse(psnr: np.ndarray) -> torch.Tensor:
    """(k, F, rows, cols) per-model patch PSNR -> (F * rows * cols, k) MSE, patches frame-major."""
    return torch.from_numpy(psnr_to_mse(psnr.reshape(len(psnr), -1).T)).float()


def report(mse: torch.Tensor, chosen: torch.Tensor, labels: torch.Tensor, per_frame: int) -> dict[str, Any]:
    """How a routing does on training patches: accuracy and confusion against the labels, and the mean
    frame PSNR (from patch MSEs) of the router, the labels, every patch to chunk 0, and the best model."""
    k = mse.shape[1]
    picks = {"router": chosen, "labels": labels, "chunk0": torch.zeros_like(labels), "best": mse.argmin(1)}

    def frame_psnr(pick: torch.Tensor) -> float:
        return frames_psnr(mse.gather(1, pick[:, None]).view(-1, per_frame))

    confusion = torch.zeros(k, k, dtype=torch.long).index_put_((labels, chosen), torch.tensor(1), accumulate=True)
    return {"patches": len(labels), "accuracy_vs_labels": round(float((chosen == labels).float().mean()), 4),
            "accuracy_vs_best": round(float((chosen == picks["best"]).float().mean()), 4),
            "confusion": confusion.tolist(),
            "psnr": {name: round(frame_psnr(p), 3) for name, p in picks.items()}}
