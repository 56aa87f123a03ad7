"""The per-frame inference engine behind `stdo.Upscale`.

frame -> patches with context -> route -> one batched call per chunk model -> stitch -> frame.
"""
from __future__ import annotations

import numpy as np
import torch

from .bundle import Bundle
from .grid import Grid
from .routing import Route, Router

MAX_PAD = 64  # LR pixels; context beyond the models' receptive radius changes nothing


def pick_device(name: str) -> torch.device:
    """'auto' is CUDA when present, else CPU; 'cpu' and 'cuda[:N]' are checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use 'auto', 'cpu' or 'cuda[:N]'") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: CUDA is not available here; use device='cpu'")
        if (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type != "cpu":
        raise ValueError(f"unsupported device {name!r}; use 'auto', 'cpu' or 'cuda[:N]'")
    return device


class Engine:
    """Upscales RGB frames of one clip size with a bundle's chunk models."""

    def __init__(self, bundle: Bundle, width: int, height: int, route: str = "auto", device: str = "auto",
                 fp16: bool = False, pad: int | None = None, batch: int = 0) -> None:
        self.scale = bundle.scale
        self.width, self.height = width, height
        self.grid = Grid(width, height, bundle.patch_width, bundle.patch_height)
        self.router = Router(bundle, self.grid, Route.parse(route, bundle.chunks))
        self.device = pick_device(device)
        if fp16 and self.device.type != "cuda":
            raise ValueError("fp16 needs a CUDA device; leave fp16 off on the CPU")
        self.dtype = torch.float16 if fp16 else torch.float32
        radius = max(a.radius for a in bundle.archs)
        self.pad = radius if pad is None else pad
        if not 0 <= self.pad <= MAX_PAD:
            raise ValueError(f"pad must be in 0..{MAX_PAD} (the models' receptive radius is {radius}), got {self.pad}")
        if batch < 0:
            raise ValueError(f"batch must be >= 0 (0 = a whole chunk at once), got {batch}")
        self.batch = batch
        self.models = [m.to(self.device, self.dtype) for m in bundle.build_models()]

    @torch.inference_mode()
    def upscale(self, frame: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Upscale one (3, H, W) frame, patch i going to model labels[i]. Returns (3, H*s, W*s) on CPU."""
        frame = frame.to(self.device, self.dtype)
        s, p = self.scale, self.pad
        outs = torch.empty(self.grid.count, 3, (self.grid.patch_height + 2 * p) * s,
                           (self.grid.patch_width + 2 * p) * s, device=self.device, dtype=self.dtype)
        for k in labels.unique().tolist():
            index = torch.nonzero(labels == k).flatten()
            step = self.batch or len(index)
            for part in index.split(step):
                outs[part.to(self.device)] = self.models[k](self.grid.cut(frame, p, part))
        result = torch.empty(3, self.height * s, self.width * s, device=self.device, dtype=self.dtype)
        return self.grid.stitch(outs, s, p, result).clamp_(0, 1).float().cpu()

    def process(self, n: int, srcs: tuple, dsts: tuple, src_stride: int, dst_stride: int) -> None:
        """Fill the planes of output frame n from the planes of input frame n (RGBS memoryviews)."""
        frame = torch.from_numpy(np.stack([plane_array(v, self.height, self.width, src_stride) for v in srcs]))
        out = self.upscale(frame, self.router(n, frame)).numpy()
        for plane, view in zip(out, dsts):
            plane_array(view, self.height * self.scale, self.width * self.scale, dst_stride)[...] = plane


def plane_array(view: memoryview, height: int, width: int, stride: int) -> np.ndarray:
    """A float32 (height, width) view of one plane whose rows are `stride` bytes apart (no copy)."""
    return np.frombuffer(view, dtype=np.float32).reshape(height, stride // 4)[:, :width]
