"""Fast exact-context inference of one chunk model on one region of a frame.

A `Runner` computes what the WDSR module computes on a padded frame, but only where it must:
  - valid convolutions: the input carries exactly the model's receptive radius of real context and
    every convolution shrinks it by its own reach, so deep layers no longer pay for context that
    only shallow layers need (the output is the region itself, equal to whole-frame inference);
  - the bicubic global skip is folded into the 5x5 skip convolution (bicubic is a fixed 5x5
    stencil per output phase) and both stay float32, so the image itself is never rounded;
  - the residual branch (head, body, tail) runs in `dtype`: bfloat16 on CPUs with native bf16
    (AMX / AVX512-BF16), which oneDNN runs several times faster than float32;
  - on the CPU, oneDNN kernels with prepacked weights and fused ReLU and residual adds.
"""
from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F

from ..core.models import WDSR, bicubic_stencil

CL = torch.channels_last
# oneDNN keeps each compiled convolution (one per layer and input shape) in a process-wide cache of
# 1024 by default. A routed frame brings hundreds (11 layers x its regions' sizes and batch counts)
# and the next frame others, so that cache thrashes and convolutions are compiled again every frame
# (960x540 -> x2: 0.51 s per routed frame, 0.27 s with room for 8192; docs/speed.md). oneDNN reads
# this when it creates its first primitive; a value the user set wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8192")


@cache
def bf16_runs() -> bool:
    """Whether torch's oneDNN runs bfloat16 convolutions on this CPU at all, natively or emulated: it needs
    AVX-512 (BW, VL, DQ), AVX-NE-CONVERT or AMX; an AVX2-only CPU has none of them. ONEDNN_MAX_CPU_ISA or a
    hypervisor can hide what /proc/cpuinfo lists, so this tries one small convolution."""
    try:
        x = torch.rand(1, 2, 5, 5, dtype=torch.bfloat16).contiguous(memory_format=CL)
        _Conv(torch.nn.Conv2d(2, 2, 3), torch.bfloat16, torch.device("cpu"), fusion_available())(x)
    except RuntimeError:
        return False
    return True


@cache
def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX512-BF16; emulated bf16 is slower than fp32)
    and torch's oneDNN runs it here."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return ("amx_bf16" in flags or "avx512_bf16" in flags) and bf16_runs()


class _Conv:
    """One convolution with its weights ready for the fastest kernel available."""

    def __init__(self, conv: torch.nn.Conv2d, dtype: torch.dtype, device: torch.device, fused: bool,
                 weight: torch.Tensor | None = None) -> None:
        w = (conv.weight if weight is None else weight).detach().to(device, dtype).contiguous(memory_format=CL)
        self.bias = conv.bias.detach().to(device, dtype)
        self.macs = w.numel()  # per output pixel
        self.fused = fused
        if fused:
            k = w.shape[-1]
            w = torch.ops.mkldnn._reorder_convolution_weight(w, [0, 0], [1, 1], [1, 1], 1,
                                                             [1, w.shape[1], 64 + k, 64 + k])
        self.weight = w

    def __call__(self, x: torch.Tensor, relu: bool = False, add: torch.Tensor | None = None) -> torch.Tensor:
        """conv(x) (no padding), then `+ add` (consumed: written in place) or ReLU."""
        if self.fused:
            one, zero = [1, 1], [0, 0]
            if add is not None:
                return torch.ops.mkldnn._convolution_pointwise_.binary(add, x, self.weight, self.bias, zero, one, one,
                                                                        1, "add", 1.0, None, [], None)
            return torch.ops.mkldnn._convolution_pointwise(x, self.weight, self.bias, zero, one, one, 1,
                                                          "relu" if relu else "none", [], "")
        y = F.conv2d(x, self.weight, self.bias)
        if add is not None:
            return add.add_(y)
        return y.relu_() if relu else y


@cache
def fusion_available() -> bool:
    """Whether torch's oneDNN fused convolution ops work here (they are internal torch ops)."""
    try:
        conv = torch.nn.Conv2d(2, 2, 3)
        x = torch.rand(1, 2, 5, 5).contiguous(memory_format=CL)
        got = _Conv(conv, torch.float32, torch.device("cpu"), True)(x, add=torch.zeros(1, 2, 3, 3))
        return torch.allclose(got, conv(x), atol=1e-5)
    except (AttributeError, RuntimeError):
        return False


class Runner:
    """A chunk model ready to run regions: `runner(x)` for x (1, P, h + 2r, w + 2r) float32 (P planes: 3
    or 1) with r = `radius` pixels of real context returns (1, P*s*s, h, w) float32, the model's output before the
    pixel shuffle (channel c*s*s + i*s + j is HR pixel (i, j) of colour c)."""

    def __init__(self, model: WDSR, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        a = model.arch
        self.scale, self.radius, self.dtype = a.scale, a.radius, dtype
        fused = device.type == "cpu" and fusion_available()
        self.head = _Conv(model.head, dtype, device, fused)
        self.blocks = [(_Conv(b.expand, dtype, device, fused), _Conv(b.reduce, dtype, device, fused))
                       for b in model.body]
        self.tail = _Conv(model.tail, dtype, device, fused)
        # float32: the learned 5x5 skip plus the bicubic stencil of each colour's s*s output channels
        s = a.scale
        stencil = bicubic_stencil(s).to(model.skip.weight.device)
        skip = model.skip.weight.detach().clone()
        for c in range(a.planes):
            skip[c * s * s:(c + 1) * s * s, c:c + 1] += stencil
        self.skip = _Conv(model.skip, torch.float32, device, fused, weight=skip)

    def macs(self, height: int, width: int) -> int:
        """Multiply-accumulates of one call that outputs a height x width LR region (context included)."""
        convs = [self.head] + [c for pair in self.blocks for c in pair] + [self.tail]
        total = self.skip.macs * height * width
        for left, conv in zip(range(self.radius - 1, -1, -1), convs):
            total += conv.macs * (height + 2 * left) * (width + 2 * left)
        return total

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=CL)
        y = self.head(x.to(self.dtype))
        for expand, reduce in self.blocks:
            y = reduce(expand(y, relu=True), add=y[..., 2:-2, 2:-2].contiguous(memory_format=CL))
        r = self.radius - 2
        base = self.skip(x[..., r:x.shape[-2] - r, r:x.shape[-1] - r])
        return base.add_(self.tail(y))
