"""The filter's last step for a remaster bundle (one trained on an LR that is no whole-scale downscale of its
HR): the engine's stitched s-grid frame goes through the bundle's mapping (core/mapping.py, the resampler
training took its loss through) into the output planes, which have the HR's geometry.
"""
from __future__ import annotations

import torch

from ..core.mapping import Mapping, frame_matrices, resample
from .engine import Engine


class Resampled:
    """An engine whose output frames are put on the HR grid of `mapping` (for the clip's LR size: see
    `Mapping.for_size`). It runs `Engine.process` itself, so the plugin drives it like an engine."""

    def __init__(self, engine: Engine, mapping: Mapping) -> None:
        if (mapping.lr_width, mapping.lr_height) != (engine.width, engine.height):
            raise ValueError(f"the mapping is for {mapping.lr_width}x{mapping.lr_height} but the clip is "
                             f"{engine.width}x{engine.height}")
        self.engine, self.mapping = engine, mapping
        self.width, self.height, self.routing = engine.width, engine.height, engine.routing
        self.my, self.mx = (m.to(engine.device) for m in frame_matrices(mapping, engine.scale))

    @property
    def size(self) -> tuple[int, int]:
        """The output (width, height)."""
        return self.mapping.hr_width, self.mapping.hr_height

    @torch.inference_mode()
    def upscale(self, frame: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One (P, H, W) frame on the HR grid: (P, HR height, HR width), clamped to [0, 1], on the CPU."""
        sr = self.engine.upscale(frame, labels).to(self.engine.device)  # stitched s-grid, already clamped
        return resample(sr, self.my, self.mx).clamp_(0, 1).cpu()

    def upscale_into(self, frame: torch.Tensor, labels: torch.Tensor, planes: list[torch.Tensor]) -> None:
        """`upscale` into the output planes (HR height, HR width), which may be strided views."""
        for plane, out in zip(planes, self.upscale(frame, labels)):
            plane.copy_(out)

    process = Engine.process  # reads size, width, height, routing and upscale_into, all of them this object's
