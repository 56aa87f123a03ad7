"""WDSR-style super-resolution backbone (Yu et al., 2018), as used by STDO.

A model is `shuffle(bicubic(x) + tail(body(head(x))) + skip(x))`, where `bicubic` is torch's bicubic
upscaling written as a fixed 5x5 convolution per output phase (so it adds before the shuffle, like the
rest). The tail and skip convolutions start at zero, so a fresh model is exactly bicubic upscaling and
training only learns a residual.
It maps `planes` channels to as many: 3 (RGB) or 1 (luma, `stdo train --planes luma`).
"""
from __future__ import annotations

import copy
from functools import cache
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from msgspec import Meta, Struct
from torch.nn.utils import parametrizations, parametrize

from . import schema

SCALES = (2, 3, 4)


class Arch(Struct, frozen=True, forbid_unknown_fields=True, tag_field="name", tag="wdsr"):
    """Architecture of one model; the manifest's "models" records ({"name": "wdsr", ...}, schema.py)."""

    scale: Literal[SCALES]
    blocks: Annotated[int, Meta(ge=1, le=64)]
    channels: Annotated[int, Meta(ge=1, le=256)]
    expansion: Annotated[int, Meta(ge=1, le=16)]
    planes: Literal[1, 3] = 3   # input and output channels: 3 (RGB) or 1 (luma); bundles before luma models are RGB

    @property
    def radius(self) -> int:
        """Receptive radius in LR pixels: how much real context a patch needs for seam-free output."""
        # head conv + two 3x3 convs per block + tail conv; the 5x5 skip and bicubic reach 2.
        return max(2 * self.blocks + 2, 2)

    @property
    def macs_per_pixel(self) -> int:
        """Multiply-accumulates per LR pixel of the convolutions (head, body, tail, skip): the model's cost."""
        c, wide, p = self.channels, self.channels * self.expansion, self.planes
        out = p * self.scale ** 2
        return 9 * p * c + self.blocks * 2 * 9 * c * wide + 9 * c * out + 25 * p * out

    def to_dict(self) -> dict[str, Any]:
        """As JSON data, with its "name"."""
        return schema.builtins(self)

    @classmethod
    def from_dict(cls, d: Any) -> "Arch":
        """An architecture from JSON data, checked: ValueError naming the bad field."""
        return schema.read(d, cls, "model")


# tiny is fast on 2 CPU cores; paper matches the STDO paper's WDSR (about 1.2 M parameters); nano is
# bicubic plus a tiny residual, for the easiest chunks of an adaptive bundle (`stdo train --easy-preset`).
PRESETS: dict[str, dict[str, int]] = {
    "nano": {"blocks": 1, "channels": 8, "expansion": 2},
    "tiny": {"blocks": 4, "channels": 16, "expansion": 2},
    "small": {"blocks": 8, "channels": 24, "expansion": 4},
    "paper": {"blocks": 16, "channels": 32, "expansion": 4},
}


def preset(name: str, scale: int) -> Arch:
    """The architecture of a named preset, or of one written BLOCKSxCHANNELSxEXPANSION (`6x16x2`: tiny with 6
    blocks), at a given scale."""
    sizes = PRESETS.get(name) or custom(name)
    if scale not in SCALES:
        raise ValueError(f"unsupported scale {scale}; choose one of {SCALES}")
    return Arch(scale=scale, **sizes)


def custom(name: str) -> dict[str, int]:
    """{"blocks", "channels", "expansion"} of a BLOCKSxCHANNELSxEXPANSION name, each at least 1."""
    parts = name.lower().split("x")
    if len(parts) == 3 and all(p.isdigit() and int(p) >= 1 for p in parts):
        return dict(zip(("blocks", "channels", "expansion"), map(int, parts)))
    raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}, or give the architecture as "
                     f"BLOCKSxCHANNELSxEXPANSION (e.g. 6x16x2)")


@cache
def _stencil(scale: int) -> torch.Tensor:
    # on the CPU whatever the default device (bundle.param_shapes builds models on "meta"), computed once
    c = 5
    delta = torch.zeros(1, 1, 2 * c + 1, 2 * c + 1, dtype=torch.float64, device="cpu")
    delta[..., c, c] = 1
    up = F.interpolate(delta, scale_factor=scale, mode="bicubic", align_corners=False)[0, 0]
    s = scale
    w = torch.empty(s * s, 1, 5, 5, dtype=torch.float64, device="cpu")
    for i in range(s):
        for j in range(s):
            for a in range(5):
                for b in range(5):
                    w[i * s + j, 0, a, b] = up[(c - a + 2) * s + i, (c - b + 2) * s + j]
    return w.float()


def bicubic_stencil(scale: int) -> torch.Tensor:
    """Torch's bicubic upscaling (align_corners=False) as a (scale*scale, 1, 5, 5) convolution: output
    pixel (i, j) of an LR pixel's scale x scale block is the stencil of channel i*scale+j on its 5x5
    neighbourhood (exact where the border is replicated, as torch does)."""
    return _stencil(scale).clone()


class ResBlock(nn.Module):
    """WDSR-A block: wide 3x3 expansion, ReLU, 3x3 reduction, identity skip."""

    def __init__(self, channels: int, expansion: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(channels, channels * expansion, 3, padding=1)
        self.reduce = nn.Conv2d(channels * expansion, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.reduce(F.relu(self.expand(x)))


class WDSR(nn.Module):
    """WDSR backbone with a bicubic global skip. Input and output are RGB (or luma) in [0, 1], NCHW."""

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        self.arch = arch
        s, c, p = arch.scale, arch.channels, arch.planes
        self.head = nn.Conv2d(p, c, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(c, arch.expansion) for _ in range(arch.blocks)])
        self.tail = nn.Conv2d(c, p * s * s, 3, padding=1)
        self.skip = nn.Conv2d(p, p * s * s, 5, padding=2)
        self.shuffle = nn.PixelShuffle(s)
        for conv in (self.tail, self.skip):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
        # a buffer, not a parameter: never trained, and not in the state dict (bundles do not store it)
        self.register_buffer("bicubic", bicubic_stencil(s).repeat(p, 1, 1, 1), persistent=False)

    def unshuffled(self, x: torch.Tensor, crop: int = 0) -> torch.Tensor:
        """The output before the pixel shuffle, (N, P*s*s, h, w): channel c*s*s + i*s + j is HR pixel (i, j)
        of plane c in each LR pixel's s x s block, without the `crop` LR pixels of context on every side.
        Training compares it with HR patches in this layout (dataset.Patches), which skips the shuffle and
        its backward pass."""
        with torch.autocast(x.device.type, enabled=False):  # the image itself stays float32 under fp16 autocast
            base = F.conv2d(F.pad(x.float(), (2, 2, 2, 2), mode="replicate"), self.bicubic, groups=self.arch.planes)
        out = base + (self.tail(self.body(self.head(x))) + self.skip(x)).float()
        return out[..., crop:out.shape[-2] - crop, crop:out.shape[-1] - crop]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.unshuffled(x))


def from_plain(arch: Arch, state: dict[str, torch.Tensor]) -> WDSR:
    """A model with stored (plain, as in bundles) weights."""
    model = WDSR(arch)
    model.load_state_dict(state)
    return model


def convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def add_weight_norm(model: WDSR) -> WDSR:
    """Weight normalisation for training (as in WDSR). Zero-initialised convs keep their direction
    random and their gain at zero, so the model still starts as bicubic."""
    for conv in convs(model):
        zero = not conv.weight.detach().any()
        if zero:
            nn.init.kaiming_uniform_(conv.weight, a=5 ** 0.5)
        parametrizations.weight_norm(conv)
        if zero:
            with torch.no_grad():
                conv.parametrizations.weight.original0.zero_()
    return model


def fold_weight_norm(model: WDSR) -> WDSR:
    """Bake weight normalisation into plain weights: what bundles store and inference runs."""
    for conv in convs(model):
        if parametrize.is_parametrized(conv, "weight"):
            parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)
    return model


def plain_state(model: WDSR) -> dict[str, torch.Tensor]:
    """The model's weights without weight normalisation, detached, on the CPU."""
    folded = fold_weight_norm(copy.deepcopy(model))
    return {k: v.detach().cpu().contiguous() for k, v in folded.state_dict().items()}
