"""How an LR clip sits on an HR clip's pixel grid, and the resampler from the models' whole-scale grid to it.

Continuous coordinates: pixel i spans [i, i+1), its centre is i + 0.5. An LR position x_lr lies at
x_hr = offset + ratio * x_lr on the HR grid, per axis. The models upscale by a whole scale s; a fixed,
differentiable separable resampling carries their s-grid output onto the HR grid: zimg's (VapourSynth's
resize.Bicubic with `CATROM`): Catmull-Rom, widened when it shrinks, taps beyond the frame mirrored. Training
takes its loss through these matrices; the filter makes the same resampling one zimg call
(`Mapping.resize_args`), and a test holds the two equal.
"""
from __future__ import annotations

import functools
import math
from typing import Annotated, Any

import torch
from msgspec import Meta, Struct

from . import schema
from .schema import Finite, Side

_EPS = 1e-6
Ratio = Annotated[float, Meta(ge=1 / 64, le=64)]  # HR pixels per LR pixel
CATROM = {"filter_param_a": 0.0, "filter_param_b": 0.5}  # resize.Bicubic's b and c for `cubic` (Catmull-Rom)


class Mapping(Struct, frozen=True, forbid_unknown_fields=True):
    """The geometric relation of an LR clip to an HR clip: x_hr = offset_x + ratio_x * x_lr (same for y).
    The manifest's "mapping" record (schema.py)."""

    lr_width: Side
    lr_height: Side
    hr_width: Side
    hr_height: Side
    ratio_x: Ratio
    ratio_y: Ratio
    offset_x: Finite
    offset_y: Finite

    @classmethod
    def plain(cls, lr_width: int, lr_height: int, hr_width: int, hr_height: int) -> "Mapping":
        """Frames that cover each other exactly (a plain resize): ratio = HR size / LR size, no offset."""
        return cls(lr_width, lr_height, hr_width, hr_height, hr_width / lr_width, hr_height / lr_height, 0.0, 0.0)

    def scale(self) -> int:
        """The models' whole scale: the smallest whole number at or above the larger ratio (at least 1).

        At or above, so that the fixed resampling only ever shrinks or keeps (never invents detail the
        models did not make)."""
        return max(1, math.ceil(max(self.ratio_x, self.ratio_y) - _EPS))

    def overlap(self) -> tuple[int, int, int, int]:
        """The HR box (x0, y0, x1, y1), whole pixels, that both clips show: the HR pixels lying entirely
        inside the LR frame's footprint."""
        x0 = max(0, math.ceil(self.offset_x - _EPS))
        y0 = max(0, math.ceil(self.offset_y - _EPS))
        x1 = min(self.hr_width, math.floor(self.offset_x + self.ratio_x * self.lr_width + _EPS))
        y1 = min(self.hr_height, math.floor(self.offset_y + self.ratio_y * self.lr_height + _EPS))
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"the LR frame does not overlap the HR frame: {self.describe()}")
        return x0, y0, x1, y1

    def for_size(self, lr_width: int, lr_height: int, multiple: tuple[int, int] = (1, 1)) -> "Mapping":
        """The same ratios for an LR clip of another size: the HR size scales with the LR size, rounded to the
        nearest multiple of `multiple` (x, y: a YUV clip's chroma subsampling, which its size must divide), and
        the LR frame keeps its place relative to the HR frame's centre (crops scale with the frame).

        Rounding keeps the ratios, the geometry the models were trained at, so the picture is neither stretched
        nor resampled otherwise: the HR frame gains or loses under `multiple` pixels, half at each side."""
        mx, my = multiple
        if ((lr_width, lr_height) == (self.lr_width, self.lr_height) and self.hr_width % mx == 0
                and self.hr_height % my == 0):
            return self
        if lr_width < 1 or lr_height < 1:
            raise ValueError(f"the LR size must be positive, got {lr_width}x{lr_height}")
        kx, ky = lr_width / self.lr_width, lr_height / self.lr_height
        hr_w, hr_h = max(mx, mx * round(self.hr_width * kx / mx)), max(my, my * round(self.hr_height * ky / my))
        # centre of the LR footprint relative to the HR centre, scaled with the frame
        dx = self.offset_x + self.ratio_x * self.lr_width / 2 - self.hr_width / 2
        dy = self.offset_y + self.ratio_y * self.lr_height / 2 - self.hr_height / 2
        try:
            return schema.checked(Mapping(lr_width, lr_height, hr_w, hr_h, self.ratio_x, self.ratio_y,
                                          hr_w / 2 + dx * kx - self.ratio_x * lr_width / 2,
                                          hr_h / 2 + dy * ky - self.ratio_y * lr_height / 2), "mapping")
        except ValueError as e:
            raise ValueError(f"no HR size fits a {lr_width}x{lr_height} LR through {self.describe()}: {e}") from None

    def resize_args(self, s: int) -> dict[str, int | float]:
        """The geometry arguments of a VapourSynth resize (`resize.Bicubic(clip, **m.resize_args(s), **CATROM)`)
        that puts an image of the LR frame at s times its size (the LR itself at s=1, the models' output at
        their scale) onto the HR grid: HR pixel j's centre j + 0.5 lies at s (j + 0.5 - offset) / ratio on
        it, per axis, as in `axis_matrix`."""
        return {"width": self.hr_width, "height": self.hr_height,
                "src_left": -s * self.offset_x / self.ratio_x, "src_top": -s * self.offset_y / self.ratio_y,
                "src_width": self.hr_width * s / self.ratio_x, "src_height": self.hr_height * s / self.ratio_y}

    def whole(self) -> bool:
        """True for an exact whole ratio s on both axes, no offset and HR = s x LR: no resampling needed."""
        s = self.scale()
        return (abs(self.ratio_x - s) < _EPS and abs(self.ratio_y - s) < _EPS and abs(self.offset_x) < _EPS
                and abs(self.offset_y) < _EPS and self.hr_width == s * self.lr_width
                and self.hr_height == s * self.lr_height)

    def crops(self) -> tuple[float, float, float, float]:
        """HR pixels outside the LR frame's footprint at left, right, top, bottom (negative: the LR shows more)."""
        return (self.offset_x, self.hr_width - self.offset_x - self.ratio_x * self.lr_width,
                self.offset_y, self.hr_height - self.offset_y - self.ratio_y * self.lr_height)

    def distance(self, other: "Mapping") -> float:
        """The largest displacement, in HR pixels, between where the two mappings put the LR frame's
        edges: the alignment error of an estimate against the truth (the mapping is affine per axis, so
        the largest displacement over the frame is at an edge)."""
        return max(abs(self.offset_x - other.offset_x),
                   abs(self.offset_x + self.ratio_x * self.lr_width - other.offset_x - other.ratio_x * self.lr_width),
                   abs(self.offset_y - other.offset_y),
                   abs(self.offset_y + self.ratio_y * self.lr_height - other.offset_y - other.ratio_y * self.lr_height))

    def describe(self) -> str:
        """One line for people: sizes, ratios, crop per side in HR px, offset."""
        left, right, top, bottom = self.crops()
        return (f"{self.lr_width}x{self.lr_height} -> {self.hr_width}x{self.hr_height}, ratio {self.ratio_x:.5f} x "
                f"{self.ratio_y:.5f}, HR px outside the LR left/right/top/bottom {left:.2f}/{right:.2f}/{top:.2f}/"
                f"{bottom:.2f}, offset {self.offset_x:+.3f}/{self.offset_y:+.3f}")

    def to_dict(self) -> dict[str, Any]:
        """As JSON data (the manifest's and export-onnx's geometry.json)."""
        return schema.builtins(self)

    @classmethod
    def from_dict(cls, d: Any) -> "Mapping":
        """A mapping from JSON data, checked: ValueError naming the bad field."""
        return schema.read(d, cls, "mapping")

    def axes(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((ratio_y, offset_y), (ratio_x, offset_x)): the per-axis arguments of `axis_matrix`, rows first."""
        return (self.ratio_y, self.offset_y), (self.ratio_x, self.offset_x)


def cubic(t: torch.Tensor) -> torch.Tensor:
    """The Catmull-Rom kernel (bicubic b=0, c=0.5), support [-2, 2]."""
    a = t.abs()
    a2, a3 = a * a, a * a * a
    near = 1.5 * a3 - 2.5 * a2 + 1
    far = -0.5 * a3 + 2.5 * a2 - 4 * a + 2
    return torch.where(a < 1, near, torch.where(a < 2, far, torch.zeros_like(a)))


def weights(ratio: torch.Tensor | float, offset: torch.Tensor | float, s: float, src_start: int, src_len: int,
            dst_start: int, dst_len: int) -> torch.Tensor:
    """`axis_matrix` differentiable in ratio and offset (tensors, float64 recommended): the alignment
    refinement takes gradients through it."""
    ratio = torch.as_tensor(ratio, dtype=torch.float64)
    offset = torch.as_tensor(offset, dtype=torch.float64)
    width = torch.clamp(s / ratio, min=1.0)  # antialias: the kernel widens when the destination is coarser
    reach = 2 * float(width.detach())
    j = torch.arange(dst_start, dst_start + dst_len, dtype=torch.float64)
    pos = s * (j + 0.5 - offset) / ratio  # destination centres on the source grid
    lo = math.floor(min(float(pos.detach().min()) - reach, src_start)) - 1
    hi = math.ceil(max(float(pos.detach().max()) + reach, src_start + src_len)) + 1
    src = torch.arange(lo, hi, dtype=torch.float64)
    w = cubic((src[None, :] + 0.5 - pos[:, None]) / width)
    # zimg's edges: a tap beyond the window reads the pixel mirrored about the window's edge (the edge pixel
    # repeated, then inwards), clamped to the window where even the mirror falls beyond it
    k = torch.arange(lo, hi) - src_start
    k = torch.where(k < 0, -k - 1, k)
    k = torch.where(k >= src_len, 2 * src_len - k - 1, k).clamp(0, src_len - 1)
    inner = torch.zeros(dst_len, src_len, dtype=w.dtype).index_add(1, k, w)
    return inner / inner.sum(1, keepdim=True)


@functools.lru_cache(maxsize=256)
def axis_matrix(ratio: float, offset: float, s: int, src_start: int, src_len: int, dst_start: int,
                dst_len: int) -> torch.Tensor:
    """One axis of the resampler from the s-grid to the HR grid: a (dst_len, src_len) float32 matrix.

    Destination (HR) pixel j, for j in [dst_start, dst_start + dst_len), centre j + 0.5, sits at s-grid
    position s * (j + 0.5 - offset) / ratio; its row holds Catmull-Rom weights of the source pixels
    [src_start, src_start + src_len) around it, widened by max(1, s / ratio) when the HR grid is the coarser
    (antialias), normalised to sum 1, taps outside the window mirrored into it: zimg's resampling, row for
    row (tests/unit/core/test_mapping.py). Cached per geometry: do not modify the returned tensor.
    """
    with torch.no_grad():
        return weights(float(ratio), float(offset), s, src_start, src_len, dst_start, dst_len).float()


def resample(x: torch.Tensor, mx_y: torch.Tensor, mx_x: torch.Tensor) -> torch.Tensor:
    """(..., H_s, W_s) -> (..., H_hr, W_hr): rows by mx_y (H_hr, H_s), columns by mx_x (W_hr, W_s)."""
    mx_y = mx_y.to(device=x.device, dtype=x.dtype)
    mx_x = mx_x.to(device=x.device, dtype=x.dtype)
    return mx_y @ x @ mx_x.transpose(0, 1)


def frame_matrices(mapping: Mapping, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The (rows, columns) matrices that put a whole frame's s-grid output onto the HR grid of `mapping`:
    the filter's last step, and the scoring's."""
    (ry, oy), (rx, ox) = mapping.axes()
    return (axis_matrix(ry, oy, s, 0, mapping.lr_height * s, 0, mapping.hr_height),
            axis_matrix(rx, ox, s, 0, mapping.lr_width * s, 0, mapping.hr_width))
