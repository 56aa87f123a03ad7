"""The per-frame inference engine behind `stdo.Upscale`.

frame -> route -> model calls -> write into the output frame, by one of two paths (`Engine(path=...)`):

"regions" (the CPU's default; needs pad >= every model's receptive radius): neighbouring patches of
one chunk are merged into rectangles (`regions.py`) and each rectangle is run with exactly the
model's radius of real context and valid convolutions (`runner.py`), so the output equals
whole-frame inference of each patch's model while context is only paid at chunk borders; same-size
rectangles of one chunk share a call.

"batches" (the default on CUDA, or with a pad below some model's radius): every patch is cut with
context in one gather and a chunk's patches go in one batched call (`batches.py`). On a GPU that is
the same pixels from a few large calls; a model whose radius the pad does not cover runs as it is on
the cut (zero padding beyond it).
"""
from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from ..core.bundle import Bundle
from ..core.device import pick_device
from ..core.grid import Box, Grid, paste
from .batches import PatchBatches
from .regions import Region, cover, owned_box
from .routing import Route, Routing
from .runner import Runner, bf16_runs, native_bf16

log = logging.getLogger("vs_stdo")
PATHS = ("regions", "batches")


def compute_dtype(device: torch.device, fp16: bool, bf16: bool | None) -> torch.dtype:
    """Precision of the models' residual branch (the bicubic skip is always float32).
    bf16=None: bfloat16 on a CPU that computes it natively, else float32."""
    if fp16:
        if device.type != "cuda":
            raise ValueError("fp16 needs a CUDA device; leave fp16 off on the CPU (bf16 is the CPU's fast path)")
        if bf16:
            raise ValueError("fp16 and bf16 exclude each other; pick one")
        return torch.float16
    if bf16 is None:
        bf16 = device.type == "cpu" and native_bf16()
    elif bf16 and device.type == "cpu" and not bf16_runs():
        raise ValueError("bf16=1 needs a CPU on which torch runs bfloat16 (AVX-512 BW/VL/DQ, AVX-NE-CONVERT or "
                         "AMX); this one has none of them: leave bf16 unset, which computes in float32 here")
    return torch.bfloat16 if bf16 else torch.float32


class Engine:
    """Upscales RGB frames (or luma planes, for a luma bundle) of one clip size with a bundle's chunk models.

    The arguments are Upscale's, already checked by options.UpscaleOptions. path: "regions" or "batches" (the
    module's docstring says what each does); None picks "batches" on CUDA or when `pad` is below some model's
    receptive radius, else "regions"."""

    def __init__(self, bundle: Bundle, width: int, height: int, route: str = "auto", device: str = "auto",
                 fp16: bool = False, pad: int | None = None, batch: int = 0, bf16: bool | None = None,
                 path: str | None = None) -> None:
        self.scale = bundle.scale
        self.planes = bundle.planes
        self.width, self.height = width, height
        self.grid = Grid(width, height, bundle.patch_width, bundle.patch_height)
        self.routing = Routing(bundle, self.grid, Route.parse(route, bundle.chunks))
        self.device = pick_device(device)
        self.dtype = compute_dtype(self.device, fp16, bf16)
        radius = max(a.radius for a in bundle.archs)
        self.pad = radius if pad is None else pad
        self.batch = batch
        if path is None:
            path = "batches" if self.device.type == "cuda" or self.pad < radius else "regions"
        if path not in PATHS:
            raise ValueError(f"unknown engine path {path!r}; use 'regions' or 'batches'")
        if path == "regions" and self.pad < radius:
            raise ValueError(f"path 'regions' needs pad >= the models' receptive radius {radius}, got {self.pad}; "
                             f"use path 'batches' for a smaller pad")
        self.path = path
        try:
            self.models = [m.to(self.device) for m in bundle.build_models()]
            # exact-context runners for every model whose receptive radius the pad covers
            self.runners = [Runner(m, self.device, self.dtype) if self.pad >= m.arch.radius else None
                            for m in self.models]
            self.batches = PatchBatches(self.grid, self.scale, self.pad, self.device,
                                        self.planes) if path == "batches" else None
        except torch.OutOfMemoryError as e:
            raise MemoryError(f"{self.device} has no room for the models: free memory on it, "
                              f"or use device='cpu'") from e

    @property
    def size(self) -> tuple[int, int]:
        """The output frames' (width, height)."""
        return self.width * self.scale, self.height * self.scale

    @torch.inference_mode()
    def upscale(self, frame: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Upscale one (P, H, W) frame (P = self.planes), patch i going to model labels[i]. Returns (P, H*s, W*s)
        on CPU."""
        out = torch.empty(self.planes, self.height * self.scale, self.width * self.scale)
        self.upscale_into(frame, labels, list(out))
        return out

    @torch.inference_mode()
    def upscale_into(self, frame: torch.Tensor, labels: torch.Tensor, planes: list[torch.Tensor]) -> None:
        """Upscale one (P, H, W) frame into P float32 CPU planes (H*s, W*s), which may be strided views.

        When the device runs out of memory, the batch (patches per model call) is halved for this and
        every later frame, down to one patch; only then is it an error."""
        while True:
            try:
                return self.run_frame(frame, labels, planes)
            except torch.OutOfMemoryError as e:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.batch == 1:
                    raise MemoryError(f"{self.device} is out of memory even at one patch per model call: free "
                                      f"memory on it, use a smaller preset, or device='cpu'") from e
                self.batch = max(1, (self.batch or self.grid.count) // 2)
                log.warning("stdo.Upscale: %s out of memory, batch lowered to %d patches per call",
                            self.device, self.batch)

    def run_frame(self, frame: torch.Tensor, labels: torch.Tensor, planes: list[torch.Tensor]) -> None:
        frame = frame.to(self.device, torch.float32)
        if self.path == "batches":
            return self.run_batches(frame, labels, planes)
        return self.run_regions(frame, labels, planes)

    def run_regions(self, frame: torch.Tensor, labels: torch.Tensor, planes: list[torch.Tensor]) -> None:
        """Each region of one chunk with exactly its model's radius of context, written where it is owned.
        The frame is padded once (replicated border), so that every region's window is a view of it."""
        p = self.pad
        padded = F.pad(frame[None], (p, p, p, p), mode="replicate")[0]
        for k, boxes in self.same_shape_batches(cover(self.grid, labels, self.batch)):
            runner = self.runners[k]
            c = p - runner.radius
            res = runner(torch.stack([padded[:, y0 + c:y1 + p + runner.radius, x0 + c:x1 + p + runner.radius]
                                      for y0, x0, y1, x1 in boxes]))
            for out, box in zip(res, boxes):
                paste(out, box, planes, self.scale)

    def same_shape_batches(self, regions: list[Region]) -> list[tuple[int, list[Box]]]:
        """Regions grouped into model calls: one chunk, one box size (so they stack into a batch), at most
        `batch` patches a call. Most regions are a single patch, so most calls carry many."""
        groups: dict[tuple[int, int, int], list[tuple[Region, Box]]] = {}
        for g in regions:
            y0, x0, y1, x1 = box = owned_box(self.grid, g)
            groups.setdefault((g.chunk, y1 - y0, x1 - x0), []).append((g, box))
        calls = []
        for (k, _, _), members in groups.items():
            call: list[Box] = []
            patches = 0
            for g, box in members:
                if call and self.batch and patches + g.patches > self.batch:
                    calls.append((k, call))
                    call, patches = [], 0
                call.append(box)
                patches += g.patches
            calls.append((k, call))
        return calls

    def run_batches(self, frame: torch.Tensor, labels: torch.Tensor, planes: list[torch.Tensor]) -> None:
        """Every patch cut with context in one gather, each chunk's patches in batches, one stitch."""
        b, s, p = self.batches, self.scale, self.pad
        grid = self.grid
        outs = torch.empty(grid.count, self.planes * s * s, grid.patch_height, grid.patch_width, device=self.device)
        labels = labels.to(self.device)
        for k in labels.unique().tolist():
            picked = torch.nonzero(labels == k).flatten()
            for part in picked.split(self.batch or len(picked)):
                runner = self.runners[k]
                if runner:
                    outs[part] = runner(b.cut(frame, part, runner.radius))
                else:                  # pad below the model's radius: its own zero padding beyond the cut
                    with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
                        outs[part] = self.models[k].unshuffled(b.cut(frame, part, p), crop=p)
        b.stitch(outs, planes)

    def process(self, n: int, srcs: tuple, dsts: tuple, src_stride: int,
                dst_stride: int) -> dict[str, str | int | list[float]]:
        """Fill the planes of output frame n from the planes of input frame n (RGBS, or GRAYS for a luma
        bundle: float32 memoryviews);
        returns the props that say how the frame was routed, for the plugin to set on it."""
        frame = torch.from_numpy(np.stack([plane_array(v, self.height, self.width, src_stride) for v in srcs]))
        w, h = self.size
        planes = [torch.from_numpy(plane_array(v, h, w, dst_stride)) for v in dsts]
        decision = self.routing.decide(n, frame)
        self.upscale_into(frame, decision.chunks, planes)
        return decision.props(self.routing.chunks)


def plane_array(view: memoryview, height: int, width: int, stride: int) -> np.ndarray:
    """A float32 (height, width) view of one plane whose rows are `stride` bytes apart (no copy)."""
    return np.frombuffer(view, dtype=np.float32).reshape(height, stride // 4)[:, :width]
