"""Scoring patches with a reference upscaler f0 and splitting them into k chunks (STDO steps 2 and 3).

An upscaler maps (frame index, LR CHW frame) to the upscaled frame; a patch's score is the PSNR of
its part of that frame against the HR. The scorers (`stdo train --score`):
  bicubic   torch's bicubic, exactly what a fresh model outputs (free)
  self      a model briefly trained on all training patches (train.py trains it)
  BUNDLE    an existing bundle run through the filter's engine (route "auto")
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .bundle import Bundle
from .dataset import Frames
from .engine import Engine
from .grid import Grid
from .metrics import frames_psnr, mse_to_psnr, psnr_to_mse
from .models import WDSR
from .runner import Runner

Upscaler = Callable[[int, torch.Tensor], torch.Tensor]


def patch_psnr(sr: torch.Tensor, hr: torch.Tensor, grid: Grid, scale: int) -> torch.Tensor:
    """PSNR of each grid patch of an upscaled CHW frame against the HR frame."""
    err = (sr.float().clamp(0, 1) - hr.float()) ** 2
    mses = torch.stack([err[:, y:y + h, x:x + w].mean() for y, x, h, w in grid.hr_boxes(scale)])
    return mse_to_psnr(mses)


def bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upscaling of a CHW frame, as the models' global skip does it."""
    return F.interpolate(lr[None], scale_factor=scale, mode="bicubic", align_corners=False)[0]


def bicubic_psnr(lr: torch.Tensor, hr: torch.Tensor, grid: Grid, scale: int) -> torch.Tensor:
    """Per-patch PSNR of plain bicubic upscaling: the free reference scorer f0."""
    return patch_psnr(bicubic(lr, scale), hr, grid, scale)


def bicubic_upscaler(scale: int) -> Upscaler:
    return lambda n, lr: bicubic(lr, scale)


def model_upscaler(model: WDSR, device: torch.device) -> Upscaler:
    """Whole-frame inference with replicated borders (what the filter's stitched output equals), in float32
    through the engine's runner (valid convolutions, fused kernels)."""
    runner = Runner(model.eval(), device)
    pad = runner.radius

    def upscale(n: int, lr: torch.Tensor) -> torch.Tensor:
        out = runner(F.pad(lr[None].to(device), (pad,) * 4, mode="replicate"))
        return F.pixel_shuffle(out, runner.scale)[0].cpu()

    return upscale


def bundle_upscaler(bundle: Bundle, width: int, height: int, device: str) -> Upscaler:
    """A bundle as f0, exactly as the filter runs it (route "auto")."""
    engine = Engine(bundle, width, height, route="auto", device=device)
    return lambda n, lr: engine.upscale(lr, engine.router(n, lr))


def score(frames: Frames, grid: Grid, upscale: Upscaler) -> np.ndarray:
    """Per-patch PSNR of an upscaler on every frame, shape (frames, rows, cols)."""
    out = [patch_psnr(upscale(n, frames.lr[n]), frames.hr[n].float() / 255, grid, frames.scale)
           for n in tqdm(range(len(frames)), desc="scoring patches", unit="frame")]
    return torch.stack(out).numpy().reshape(len(frames), grid.rows, grid.cols).astype(np.float32)


def models_psnr(bundle: Bundle, frames: Frames, device: torch.device) -> np.ndarray:
    """Per-patch PSNR of every model of a bundle, each run alone as the filter runs it: (k, frames, rows, cols)."""
    return np.stack([score(frames, bundle.grid, model_upscaler(m, device)) for m in bundle.build_models()])


SPLITS = ("error", "count")


def split(psnr: np.ndarray, k: int, by: str = "error", floor: float = 0.0) -> tuple[np.ndarray, list[float]]:
    """Labels (uint8, same shape as psnr) for k chunks by PSNR rank, chunk 0 the hardest (lowest PSNR),
    and the k-1 PSNR thresholds between chunks.

    by "error": each chunk holds an equal share of the patches' total squared error (so the hard chunks
    are small: a few patches carry most of a clip's error); "count": equal numbers of patches (the paper's).
    Every chunk gets at least one patch, and at least `floor` times an equal share (floor 1: "count"), so
    one outlier frame cannot take a chunk model for a handful of patches.
    """
    flat = psnr.reshape(-1)
    if not 1 <= k <= min(255, flat.size):
        raise ValueError(f"cannot split {flat.size} patches into {k} chunks; use 1 <= k <= {min(255, flat.size)}")
    if by not in SPLITS:
        raise ValueError(f"unknown split {by!r}; choose one of {', '.join(SPLITS)}")
    if not 0 <= floor <= 1:
        raise ValueError(f"a chunk's floor is a share of an equal chunk in [0, 1], got {floor}")
    least = max(1, int(floor * flat.size / k))
    order = np.argsort(flat, kind="stable")
    sorted_psnr = flat[order]
    if by == "count":
        starts = [(i * flat.size) // k for i in range(k)]
    else:
        before = np.cumsum(psnr_to_mse(sorted_psnr))  # error up to and including each patch
        starts = [0]
        for i in range(1, k):
            cut = int(np.searchsorted(before, before[-1] * i / k))
            starts.append(min(max(cut, starts[-1] + least), flat.size - (k - i) * least))
    labels = np.empty(flat.size, dtype=np.uint8)
    labels[order] = np.repeat(np.arange(k, dtype=np.uint8), np.diff(starts + [flat.size]))
    return labels.reshape(psnr.shape), [float(sorted_psnr[i]) for i in starts[1:]]


OUTLIER_FLOOR = 0.25  # --min-chunk auto: the floor used when the error split gives a chunk to one frame


def floor_for(psnr: np.ndarray, k: int, by: str, min_chunk: float | str) -> float:
    """The floor `split` should use: a number is used as given; "auto" is 0 unless the plain split gives some
    chunk the patches of one frame only (an outlier frame, e.g. a fade or a cut, whose few patches would take
    chunk models to themselves), and then OUTLIER_FLOOR. psnr is (frames, rows, cols)."""
    if min_chunk != "auto":
        return float(min_chunk)
    labels, _ = split(psnr, k, by)
    one_frame = any(np.unique(np.nonzero(labels == c)[0]).size == 1 for c in range(k))  # axis 0: the frame
    return OUTLIER_FLOOR if len(psnr) > 1 and one_frame else 0.0


def floor_note(floor: float) -> str:
    """How the training run and `stdo info` name a split's floor after its chunk sizes ("" for none)."""
    return f"; each at least {floor:g} of an equal share" if floor > 0 else ""


def label(psnr: np.ndarray, thresholds: list[float]) -> np.ndarray:
    """Chunks of patches by the thresholds of a split: chunk i holds thresholds[i-1] <= PSNR < thresholds[i]."""
    return np.searchsorted(np.asarray(thresholds, dtype=np.float64), psnr, side="right").astype(np.uint8)


AUTO_TOLERANCE = 0.05  # dB: --chunks auto keeps the fewest models whose routed PSNR is this close to all of them


def fewest_models(each: np.ndarray, tolerance: float = AUTO_TOLERANCE) -> tuple[list[int], list[float]]:
    """--chunks auto: which of k models to keep, from each model's per-patch PSNR `each` (k, frames, ...).

    Every patch goes to its best kept model (as best-model labels route it), and a set of models is judged by
    the mean of per-frame PSNR, as `stdo eval` reports it. Models are added greedily, each time the one that
    raises it most; the first m within `tolerance` dB of all k models' are kept. Returns the kept models
    (ascending) and the PSNR after adding 1, ..., k."""
    mse = psnr_to_mse(each.reshape(*each.shape[:2], -1))
    order: list[int] = []
    best = np.full(mse.shape[1:], np.inf)
    curve = []
    for _ in range(len(mse)):
        i = max((i for i in range(len(mse)) if i not in order), key=lambda i: frames_psnr(np.minimum(best, mse[i])))
        order.append(i)
        best = np.minimum(best, mse[i])
        curve.append(round(frames_psnr(best), 4))
    m = next(n for n, p in enumerate(curve, 1) if p >= curve[-1] - tolerance)
    return sorted(order[:m]), curve


def auto_summary(auto: dict) -> str:
    """What --chunks auto measured and kept, in one line (the training summary and `stdo info`)."""
    curve = auto["psnr"]
    return (f"--chunks auto kept {len(auto['kept'])} of {len(curve)} chunk models {auto['kept']}: mean PSNR of "
            f"the labelled frames with the best 1..{len(curve)} of them {', '.join(f'{p:.2f}' for p in curve)} dB "
            f"(all {len(curve)}: {curve[-1] - curve[0]:+.2f} dB over the best one alone)")
