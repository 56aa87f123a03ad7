"""One colour conversion for trainer and filter: any common format <-> RGBS (what models see).

The conversion is a list of VapourSynth calls, `(namespace, function, clip_argument, kwargs)`, so
that the native plugin can invoke it in C and the trainer can apply it in Python, identically.

The clip's first frame decides the matrix, range and chroma location (`Colour`); they are stamped
on every frame before converting and again on the way out, so both ways always agree and the output
says how it was converted. Defaults when a
prop is absent or "unspecified":
  _Matrix          BT.709 when width > 1024 or height > 576, else BT.601 (170m)   YUV only
  _Range           limited for YUV and GRAY, full for RGB                          integer formats only
  _ChromaLocation  left                                                            YUV only
GRAY goes in as luma with neutral chroma and comes back as the BT.709 luma of the model's RGB.
Transfer and primaries are not converted: models work on gamma-encoded RGB, and `_Transfer`,
`_Primaries` and every other prop pass through unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import vapoursynth as vs

Call = tuple[str, str, str, dict[str, Any]]

MATRIX_RGB, MATRIX_709, MATRIX_UNSPECIFIED, MATRIX_170M = 0, 1, 2, 6
YUV_MATRICES = {int(m) for m in vs.MatrixCoefficients} - {MATRIX_RGB, MATRIX_UNSPECIFIED}
# The _Range prop's values differ between VapourSynth API versions; take them from the module.
RANGE_FULL, RANGE_LIMITED = int(vs.RANGE_FULL), int(vs.RANGE_LIMITED)
RANGE_NAMES = {RANGE_FULL: "full", RANGE_LIMITED: "limited"}
CHROMA_LOCATIONS = {int(c) for c in vs.ChromaLocation}
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
    """How a clip's samples are to be read: matrix (YUV), range (integer formats), chroma location (YUV)."""

    matrix: int
    range: int
    chromaloc: int


def colour_of(fmt: Format, width: int, height: int, props: dict[str, Any]) -> Colour:
    """The clip's colour from its first frame's props, with the documented defaults; checks the values."""
    fmt.check()
    yuv = fmt.color_family == vs.YUV
    matrix = int(props.get("_Matrix", MATRIX_UNSPECIFIED))
    if not yuv or matrix == MATRIX_UNSPECIFIED:
        matrix = MATRIX_709 if width > 1024 or height > 576 else MATRIX_170M
    elif matrix not in YUV_MATRICES:
        raise ValueError(f"the clip's _Matrix={matrix} is not a YUV matrix; set the right one first, "
                         f"e.g. std.SetFrameProps(_Matrix=1) for BT.709")
    if fmt.sample_type == vs.FLOAT:
        rng = RANGE_FULL
    else:
        rng = int(props.get("_Range", RANGE_FULL if fmt.color_family == vs.RGB else RANGE_LIMITED))
        if rng not in RANGE_NAMES:
            raise ValueError(f"the clip's _Range={rng} is not a valid range; use std.SetFrameProps(_Range=...) "
                             f"with vs.RANGE_LIMITED ({RANGE_LIMITED}) or vs.RANGE_FULL ({RANGE_FULL})")
    chromaloc = int(props.get("_ChromaLocation", CHROMALOC_LEFT)) if yuv else CHROMALOC_LEFT
    if chromaloc not in CHROMA_LOCATIONS:
        raise ValueError(f"the clip's _ChromaLocation={chromaloc} is not valid; use 0 (left) to 5 (bottom) "
                         f"with std.SetFrameProps(_ChromaLocation=...)")
    return Colour(matrix, rng, chromaloc)


def stamp(fmt: Format, c: Colour) -> dict[str, int]:
    """The colour props every frame gets before conversion."""
    props = {"_Matrix": c.matrix, "_ChromaLocation": c.chromaloc} if fmt.color_family == vs.YUV else {}
    if fmt.color_family == vs.RGB:
        props["_Matrix"] = MATRIX_RGB
    if fmt.sample_type == vs.INTEGER:
        props["_Range"] = c.range
    return props


def kernel(fmt: Format) -> str:
    """Bicubic where chroma may be resampled, Point (no resampling) elsewhere."""
    return "Bicubic" if fmt.color_family == vs.YUV else "Point"


def to_rgbs(fmt: Format, c: Colour) -> list[Call]:
    """Calls that turn a clip of `fmt` and colour `c` into RGBS."""
    if fmt.is_rgbs:
        return []
    return [("std", "SetFrameProps", "clip", stamp(fmt, c)), ("resize", kernel(fmt), "clip", {"format": RGBS.id})]


def from_rgbs(fmt: Format, c: Colour) -> list[Call]:
    """Calls that turn RGBS back into `fmt` with colour `c`, undoing `to_rgbs`."""
    if fmt.is_rgbs:
        return []
    args: dict[str, Any] = {"format": fmt.id}
    if fmt.color_family != vs.RGB:
        args["matrix"] = c.matrix if fmt.color_family == vs.YUV else MATRIX_709
    if fmt.color_family == vs.YUV:
        args["chromaloc"] = c.chromaloc
    if fmt.sample_type == vs.INTEGER:
        args["range_s"] = RANGE_NAMES[c.range]
    return [("resize", kernel(fmt), "clip", args), ("std", "SetFrameProps", "clip", stamp(fmt, c))]


def apply(clip: vs.VideoNode, calls: list[Call]) -> vs.VideoNode:
    """Run a list of calls in Python, the way the plugin runs them in C."""
    for namespace, name, clip_key, kwargs in calls:
        clip = getattr(getattr(vs.core, namespace), name)(**{clip_key: clip}, **kwargs)
    return clip


def clip_to_rgbs(clip: vs.VideoNode) -> vs.VideoNode:
    """Convert a clip to RGBS with the same plan the filter uses."""
    fmt = Format.of(clip.format)
    return apply(clip, to_rgbs(fmt, colour_of(fmt, clip.width, clip.height, dict(clip.get_frame(0).props))))
