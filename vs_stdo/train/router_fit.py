"""Fitting the blind router on training frames: for "expected quality", not for the labels (see filter/blind.py).

Every chunk model is run on the training patches once; each patch's target is the model that reconstructs it
best, weighted by its stake, the MSE the worst model adds over the best one. The fit takes at most STEPS steps
and at most its time budget (--time), its features half of it at most.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from msgspec.structs import replace

from ..core.grid import Grid
from ..core.metrics import frames_psnr, psnr_to_mse
from ..core.router_state import FEATURES, RouterFit, RouterState
from ..filter.blind import BlindRouter, frame_features

HIDDEN = 32
STEPS = 1000
ROUTER_FRAMES = 64  # training frames (evenly spaced) the router is fitted on


def fit(lr: torch.Tensor, grid: Grid, scale: int, psnr: np.ndarray, labels: np.ndarray, seed: int = 0,
        steps: int = STEPS, budget: float = math.inf, clock: Callable[[], float] = time.monotonic) -> RouterState:
    """Fit a router on training frames for expected quality: each patch's target is its best model, weighted by
    its stake (the MSE the worst model adds over the best one). Within a `budget` of seconds on `clock`: the
    features of the frames, taken in order, stop at the frame that uses half of it, and the steps (at most
    `steps`) stop at its end; one frame and one step at least. Its info records the frames and steps it took.

    lr: (F, 3, h, w) LR frames; psnr: (k, F, rows, cols) each chunk model's PSNR on each patch;
    labels: (F, rows, cols) the bundle's labels (the fit's report compares with them).
    """
    end = clock() + budget
    parts = []
    for frame in lr.split(1):
        parts.append(frame_features(frame, grid, scale))
        if clock() >= end - budget / 2:
            break
    feats, n = torch.cat(parts), len(parts)
    mse = patch_mse(psnr[:, :n])
    state = fit_mlp(feats, mse.argmin(1), mse.max(1).values - mse.min(1).values, len(psnr), scale, seed, steps,
                    lambda: clock() >= end)
    chosen = BlindRouter(state, scale).logits(feats).argmax(1)
    state.info = replace(state.info, target="best", frames=n, **report(
        mse, chosen, torch.from_numpy(labels[:n].reshape(-1).astype(np.int64)), grid.count))
    return state


@torch.no_grad()
def fit_mlp(feats: torch.Tensor, want: torch.Tensor, stake: torch.Tensor, k: int, scale: int, seed: int = 0,
            steps: int = STEPS, late: Callable[[], bool] = lambda: False) -> RouterState:
    """The router's MLP fitted to send patches with features `feats` (N, len(FEATURES)) to models `want` (N,),
    each patch's cross-entropy weighted by its `stake` (N,): `steps` steps, fewer where `late()` says so
    after one. Its info records the steps taken."""
    stake = stake / stake.sum().clamp_min(1e-12)
    mean, std = feats.mean(0), feats.std(0).clamp_min(1e-4)
    gen = torch.Generator().manual_seed(seed)
    t = {"mean": mean, "std": std,
         "hidden.weight": torch.randn(HIDDEN, feats.shape[1], generator=gen) / feats.shape[1] ** 0.5,
         "hidden.bias": torch.zeros(HIDDEN),
         "out.weight": torch.randn(k, HIDDEN, generator=gen) / HIDDEN ** 0.5, "out.bias": torch.zeros(k)}
    params = [t[n].requires_grad_() for n in ("hidden.weight", "hidden.bias", "out.weight", "out.bias")]
    state = RouterState(FEATURES, t)
    router = BlindRouter(state, scale)
    opt = torch.optim.Adam(params, lr=0.02, weight_decay=1e-4)
    done = 0
    with torch.enable_grad():
        while done < steps and not (done and late()):
            loss = (F.cross_entropy(router.logits(feats), want, reduction="none") * stake).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
    state.tensors = {n: v.detach() for n, v in t.items()}
    state.info = RouterFit(steps=done)
    return state


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
