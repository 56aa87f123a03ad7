"""One colour conversion for trainer and filter: any common format <-> RGBS (what models see).

The conversion is a list of VapourSynth calls, `(namespace, function, clip_argument, kwargs)`, so
that the native plugin can invoke it in C and the trainer can apply it in Python, identically.

Defaults when a frame prop is absent or "unspecified" (decided once, from the clip's first frame):
  _Matrix          BT.709 when width > 1024 or height > 576, else BT.601 (170m)
  _Range           limited for YUV and GRAY, full for RGB
  _ChromaLocation  left
Transfer and primaries are not converted: models work on gamma-encoded RGB and the output gets the
input's `_Transfer`/`_Primaries` back unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import vapoursynth as vs

Call = tuple[str, str, str, dict[str, Any]]

MATRIX_709, MATRIX_UNSPECIFIED, MATRIX_170M = 1, 2, 6
# The _Range prop's values differ between VapourSynth API versions; take them from the module.
RANGE_FULL, RANGE_LIMITED = int(vs.RANGE_FULL), int(vs.RANGE_LIMITED)
RANGE_NAMES = {RANGE_FULL: "full", RANGE_LIMITED: "limited"}
CHROMALOC_LEFT = 0


@dataclass(frozen=True)
class Format:
    """The parts of a VapourSynth video format that conversion needs (plain ints, no core needed)."""

    color_family: int
    sample_type: int
    bits: int
    subsampling_w: int
    subsampling_h: int

    @classmethod
    def of(cls, fmt: vs.VideoFormat) -> "Format":
        return cls(int(fmt.color_family), int(fmt.sample_type), fmt.bits_per_sample,
                   fmt.subsampling_w, fmt.subsampling_h)

    @property
    def id(self) -> int:
        # VS_MAKE_VIDEO_ID from VapourSynth4.h
        return ((self.color_family << 28) | (self.sample_type << 24) | (self.bits << 16)
                | (self.subsampling_w << 8) | self.subsampling_h)

    @property
    def is_rgbs(self) -> bool:
        return (self.color_family, self.sample_type, self.bits) == (vs.RGB, vs.FLOAT, 32)

    def check(self) -> None:
        """Raise a clear error for formats the filter cannot take."""
        if self.color_family not in (vs.YUV, vs.RGB, vs.GRAY):
            raise ValueError(f"unsupported colour family {self.color_family}; use YUV, RGB or GRAY")
        if self.sample_type == vs.FLOAT and self.bits not in (16, 32):
            raise ValueError(f"unsupported float depth {self.bits}; use half or single precision")
        if self.sample_type == vs.INTEGER and not 8 <= self.bits <= 16:
            raise ValueError(f"unsupported integer depth {self.bits}; use 8 to 16 bits")


RGBS = Format(vs.RGB, vs.FLOAT, 32, 0, 0)


@dataclass(frozen=True)
class Colour:
    matrix: int
    range: int
    chromaloc: int


def colour_of(fmt: Format, width: int, height: int, props: dict[str, Any]) -> Colour:
    """Matrix, range and chroma location from frame props, with the documented defaults."""
    matrix = int(props.get("_Matrix", MATRIX_UNSPECIFIED))
    if matrix in (MATRIX_UNSPECIFIED, 0) or fmt.color_family != vs.YUV:
        matrix = MATRIX_709 if width > 1024 or height > 576 else MATRIX_170M
    default_range = RANGE_FULL if fmt.color_family == vs.RGB else RANGE_LIMITED
    rng = int(props.get("_Range", default_range))
    if rng not in (RANGE_FULL, RANGE_LIMITED):
        rng = default_range
    return Colour(matrix, rng, int(props.get("_ChromaLocation", CHROMALOC_LEFT)))


def to_rgbs(fmt: Format, width: int, height: int, props: dict[str, Any]) -> list[Call]:
    """Calls that turn a clip of `fmt` into RGBS."""
    fmt.check()
    c = colour_of(fmt, width, height, props)
    if fmt.color_family == vs.RGB:
        return [] if fmt.is_rgbs else [("resize", "Point", "clip", {"format": RGBS.id})]
    if fmt.color_family == vs.GRAY:
        grays = Format(vs.GRAY, vs.FLOAT, 32, 0, 0)
        return [("resize", "Point", "clip", {"format": grays.id, "range_in_s": RANGE_NAMES[c.range]}),
                ("std", "ShufflePlanes", "clips", {"planes": [0, 0, 0], "colorfamily": vs.RGB})]
    return [("resize", "Bicubic", "clip", {"format": RGBS.id, "matrix_in": c.matrix, "range_in_s": RANGE_NAMES[c.range],
                                           "chromaloc_in": c.chromaloc})]


def from_rgbs(fmt: Format, width: int, height: int, props: dict[str, Any]) -> list[Call]:
    """Calls that turn RGBS back into `fmt`, undoing `to_rgbs`."""
    c = colour_of(fmt, width, height, props)
    if fmt.color_family == vs.RGB:
        return [] if fmt.is_rgbs else [("resize", "Point", "clip", {"format": fmt.id})]
    if fmt.color_family == vs.GRAY:
        return [("std", "ShufflePlanes", "clips", {"planes": [1], "colorfamily": vs.GRAY}),
                ("resize", "Point", "clip", {"format": fmt.id, "range_s": RANGE_NAMES[c.range]})]
    return [("resize", "Bicubic", "clip", {"format": fmt.id, "matrix": c.matrix, "range_s": RANGE_NAMES[c.range],
                                           "chromaloc": c.chromaloc})]


def apply(clip: vs.VideoNode, calls: list[Call]) -> vs.VideoNode:
    """Run a list of calls in Python, the way the plugin runs them in C."""
    for namespace, name, clip_key, kwargs in calls:
        clip = getattr(getattr(vs.core, namespace), name)(**{clip_key: clip}, **kwargs)
    return clip


def clip_to_rgbs(clip: vs.VideoNode) -> vs.VideoNode:
    """Convert a clip to RGBS with the same plan the filter uses."""
    fmt = Format.of(clip.format)
    props = dict(clip.get_frame(0).props) if fmt.color_family != vs.RGB else {}
    return apply(clip, to_rgbs(fmt, clip.width, clip.height, props))
