"""Scoring patches with a reference upscaler f0 (STDO step 2; chunks.py splits them, step 3).

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

from ..core.bundle import Bundle
from ..core.grid import Grid
from ..core.models import WDSR
from ..filter.engine import Engine
from ..filter.runner import Runner
from .data import Frames
from .target import Target, patch_psnr

Upscaler = Callable[[int, torch.Tensor], torch.Tensor]


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
    return lambda n, lr: engine.upscale(lr, engine.routing(n, lr))


def score(frames: Frames, target: Target, upscale: Upscaler) -> np.ndarray:
    """Per-patch PSNR of an upscaler on every frame, shape (frames, rows, cols), compared on the HR grid as the
    training target does (target.py)."""
    out = [target.patch_psnr(upscale(n, frames.lr[n]), frames.hr[n].float() / 255)
           for n in tqdm(range(len(frames)), desc="scoring patches", unit="frame")]
    return torch.stack(out).numpy().reshape(len(frames), target.grid.rows, target.grid.cols).astype(np.float32)


def models_psnr(bundle: Bundle, frames: Frames, target: Target, device: torch.device) -> np.ndarray:
    """Per-patch PSNR of every model of a bundle, each run alone as the filter runs it: (k, frames, rows, cols)."""
    return np.stack([score(frames, target, model_upscaler(m, device)) for m in bundle.build_models()])
