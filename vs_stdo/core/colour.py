"""One colour conversion for trainer and filter: any common format <-> RGBS (what models see).

The conversions are plain functions from clip to clip (`to_rgbs`, `from_rgbs`, `to_luma`, `from_luma`), built of
VapourSynth's own calls (std.SetFrameProps, resize.*, std.ShufflePlanes), so that the trainer and the filter
convert identically.

The clip's first frame decides the matrix, range and chroma location (`Colour`); they are stamped
on every frame before converting and again on the way out, so both ways always agree and the output
says how it was converted. What the props state wins; a prop that is absent or "unspecified" takes
the value of a given default (the training pair's or the bundle's colour, see `pair_colour`), else:
  _Matrix          BT.709 when width > 1024 or height > 576, else BT.601 (170m)   YUV only
  _Range           limited for YUV and GRAY, full for RGB                          integer formats only
  _ChromaLocation  left                                                            YUV only
Float formats are always full range, and RGB is full range unless tagged (a default never changes it).
GRAY goes in as luma with neutral chroma and comes back as the BT.709 luma of the model's RGB.
Transfer and primaries are not converted: models work on gamma-encoded RGB, and `_Transfer`,
`_Primaries` and every other prop pass through unchanged.

Luma bundles (`stdo train --planes luma`) see GRAYS instead: the filter takes the Y plane of a YUV or GRAY
clip (`to_luma`), the trainer the same on the pair's RGB made YUV with the pair's matrix (`luma_of`).
The filter puts the upscaled Y back next to the clip's chroma resized by Catmull-Rom, sited as the clip says
(`from_luma`). RGB is refused: which luma to take is the user's choice (convert to YUV first).

The way back can also change the geometry (`onto`: a remaster bundle's mapping): the same resize call that
converts puts the picture on the mapping's HR grid, by the kernel the training resampler models.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import vapoursynth as vs
from msgspec import Struct

from .mapping import CATROM, Mapping

MATRIX_RGB, MATRIX_709, MATRIX_UNSPECIFIED, MATRIX_170M = 0, 1, 2, 6
YUV_MATRICES = {int(m) for m in vs.MatrixCoefficients} - {MATRIX_RGB, MATRIX_UNSPECIFIED}
# The _Range prop's values differ between VapourSynth API versions; take them from the module.
RANGE_FULL, RANGE_LIMITED = int(vs.RANGE_FULL), int(vs.RANGE_LIMITED)
RANGE_NAMES = {RANGE_FULL: "full", RANGE_LIMITED: "limited"}
CHROMA_LOCATIONS = {int(c) for c in vs.ChromaLocation}
CHROMALOC_LEFT = 0
YUV_MATRIX_LIST = tuple(sorted(YUV_MATRICES))       # the same, for the manifest's record
CHROMA_LOCATION_LIST = tuple(sorted(CHROMA_LOCATIONS))
PROPS = ("_Matrix", "_Range", "_ChromaLocation")  # the frame props that decide a clip's colour


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
GRAYS = Format(vs.GRAY, vs.FLOAT, 32, 0, 0)


@dataclass(frozen=True)
class Colour:
    """How a clip's samples are to be read: matrix (YUV), range (integer formats), chroma location (YUV)."""

    matrix: int
    range: int
    chromaloc: int

    def to_manifest(self) -> "ColourRecord":
        """The bundle manifest's "colour" record."""
        return ColourRecord(self.matrix, RANGE_NAMES[self.range], self.chromaloc)

    @classmethod
    def from_manifest(cls, r: "ColourRecord") -> "Colour":
        """The inverse of `to_manifest`."""
        return cls(r.matrix, {n: v for v, n in RANGE_NAMES.items()}[r.range], r.chromaloc)

    def describe(self) -> str:
        """For people: "matrix 1 (BT709), limited range, chroma left"."""
        return (f"matrix {self.matrix} ({matrix_name(self.matrix)}), {RANGE_NAMES[self.range]} range, "
                f"chroma {vs.ChromaLocation(self.chromaloc).name.removeprefix('CHROMA_').lower()}")


class ColourRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """A colour as the manifest records it (schema.py): ints as in the props, the range by name."""
    matrix: Literal[YUV_MATRIX_LIST]
    range: Literal["limited", "full"]
    chromaloc: Literal[CHROMA_LOCATION_LIST]


def matrix_name(matrix: int) -> str:
    """VapourSynth's name of a matrix: 1 -> "BT709"."""
    return vs.MatrixCoefficients(matrix).name.removeprefix("MATRIX_")


def default_colour(width: int, height: int) -> Colour:
    """How an untagged YUV clip of this size is read (see the module docstring)."""
    return Colour(MATRIX_709 if width > 1024 or height > 576 else MATRIX_170M, RANGE_LIMITED, CHROMALOC_LEFT)


def stated(fmt: Format, props: dict[str, Any]) -> dict[str, int]:
    """The colour the props state for the parts `fmt` has, checked: matrix and chroma location for
    YUV, range for integer formats. Absent or unspecified props are left out."""
    out = {}
    matrix = int(props.get("_Matrix", MATRIX_UNSPECIFIED))
    if fmt.color_family == vs.YUV and matrix != MATRIX_UNSPECIFIED:
        if matrix not in YUV_MATRICES:
            raise ValueError(f"the clip's _Matrix={matrix} is not a YUV matrix; set the right one first, "
                             f"e.g. std.SetFrameProps(_Matrix=1) for BT.709")
        out["matrix"] = matrix
    if fmt.sample_type == vs.INTEGER and "_Range" in props:
        out["range"] = int(props["_Range"])
        if out["range"] not in RANGE_NAMES:
            raise ValueError(f"the clip's _Range={out['range']} is not a valid range; use "
                             f"std.SetFrameProps(_Range=...) with vs.RANGE_LIMITED ({RANGE_LIMITED}) or vs.RANGE_FULL ({RANGE_FULL})")
    if fmt.color_family == vs.YUV and "_ChromaLocation" in props:
        out["chromaloc"] = int(props["_ChromaLocation"])
        if out["chromaloc"] not in CHROMA_LOCATIONS:
            raise ValueError(f"the clip's _ChromaLocation={out['chromaloc']} is not valid; use 0 (left) to 5 (bottom) "
                             f"with std.SetFrameProps(_ChromaLocation=...)")
    return out


def colour_of(fmt: Format, width: int, height: int, props: dict[str, Any], default: Colour | None = None) -> Colour:
    """The clip's colour from its first frame's props; what they do not state comes from `default`
    (a pair's or bundle's colour), else from the size defaults. Checks the values."""
    fmt.check()
    tags = stated(fmt, props)
    c = replace(default or default_colour(width, height), **tags)
    if fmt.sample_type == vs.FLOAT or (fmt.color_family == vs.RGB and "range" not in tags):
        c = replace(c, range=RANGE_FULL)
    return c


def yuv_tags(fmt: Format, props: dict[str, Any]) -> dict[str, int]:
    """`stated`, less an RGB clip's range: it says nothing about how YUV is read."""
    tags = stated(fmt, props)
    if fmt.color_family == vs.RGB:
        tags.pop("range", None)
    return tags


def conflicts(fmt: Format, props: dict[str, Any], expected: Colour) -> dict[str, tuple[int, int]]:
    """{"matrix" or "range": (stated, expected)} where the props state a matrix or range other than `expected`'s."""
    tags = yuv_tags(fmt, props)
    return {name: (tags[name], getattr(expected, name)) for name in ("matrix", "range")
            if name in tags and tags[name] != getattr(expected, name)}


def show(name: str, value: int) -> str:
    """A prop value for people: "_Matrix=1 (BT709)", "_Range=vs.RANGE_LIMITED"."""
    if name == "matrix":
        return f"_Matrix={value} ({matrix_name(value)})"
    return f"_Range=vs.RANGE_{RANGE_NAMES[value].upper()}"


def first_props(clip: vs.VideoNode, names: tuple[str, ...] = PROPS) -> dict[str, Any]:
    """The props of the clip's first frame that decide its colour (or those `names`), those it has: the others
    are never read, so a prop VapourSynth's Python cannot decode (text that is not UTF-8) does not matter."""
    props = clip.get_frame(0).props
    return {name: props[name] for name in names if name in props}


def pair_colour(hr: vs.VideoNode, lr: vs.VideoNode | None = None) -> Colour:
    """The one colour of a training pair, for HR and LR alike (the LR is a downscale of the HR).

    The HR decides: what its props state and, where they are unset, the defaults for the HR's size.
    Only what the HR's format cannot say (matrix and chroma location of RGB or GRAY, range of RGB or
    float) comes from the LR's props. An LR whose props contradict the HR's matrix or range is an error.
    """
    hf = Format.of(hr.format)
    hr_props = first_props(hr)
    c = colour_of(hf, hr.width, hr.height, hr_props)
    hr_says = ({"matrix", "chromaloc"} if hf.color_family == vs.YUV else set()) | (
        {"range"} if hf.sample_type == vs.INTEGER and hf.color_family != vs.RGB else set())
    if "range" not in hr_says:
        c = replace(c, range=RANGE_LIMITED)
    if lr is None:
        return c
    lf, lr_props = Format.of(lr.format), first_props(lr)
    for name, (lr_value, hr_value) in conflicts(lf, lr_props, c).items():
        if name in hr_says:
            how = ("tagged" if name in stated(hf, hr_props)
                   else f"untagged, so read by the default for {hr.width}x{hr.height}")
            raise ValueError(f"the LR clip says {show(name, lr_value)} but the HR is {show(name, hr_value)} ({how}); "
                             f"an LR encode of the HR has the HR's colours, so make them agree: set the right value on "
                             f"the wrong one in a .vpy, e.g. lr = core.std.SetFrameProps(lr, "
                             f"{show(name, hr_value).split(' ')[0]})")
    return replace(c, **{name: value for name, value in yuv_tags(lf, lr_props).items() if name not in hr_says})


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


def to_rgbs(clip: vs.VideoNode, c: Colour) -> vs.VideoNode:
    """The clip as RGBS, read with colour `c`."""
    fmt = Format.of(clip.format)
    if fmt.is_rgbs:
        return clip
    clip = clip.std.SetFrameProps(**stamp(fmt, c))
    return getattr(vs.core.resize, kernel(fmt))(clip, format=RGBS.id)


def from_rgbs(clip: vs.VideoNode, fmt: Format, c: Colour, onto: Mapping | None = None) -> vs.VideoNode:
    """An RGBS clip back in `fmt` with colour `c`, undoing `to_rgbs`. With `onto` (a mapping whose LR frame the
    clip shows, at a whole scale of its size) the same resize call puts it on the mapping's HR grid."""
    args: dict[str, Any] = {}
    if not fmt.is_rgbs:
        args["format"] = fmt.id
        if fmt.color_family != vs.RGB:
            args["matrix"] = c.matrix if fmt.color_family == vs.YUV else MATRIX_709
        if fmt.color_family == vs.YUV:
            args["chromaloc"] = c.chromaloc
        if fmt.sample_type == vs.INTEGER:
            args["range_s"] = RANGE_NAMES[c.range]
    clip = converted(clip, kernel(fmt), args, onto)
    return clip if fmt.is_rgbs else clip.std.SetFrameProps(**stamp(fmt, c))


def converted(clip: vs.VideoNode, kernel: str, args: dict[str, Any], onto: Mapping | None) -> vs.VideoNode:
    """`clip` through resize.`kernel` with the conversion `args` (format, matrix, range: none, no call), or, with
    `onto`, through the one resize.Bicubic (Catmull-Rom) that converts and puts it on that mapping's HR grid."""
    if onto:
        return vs.core.resize.Bicubic(clip, **onto.resize_args(scale_of(clip, onto)), **CATROM, **args)
    return getattr(vs.core.resize, kernel)(clip, **args) if args else clip


def scale_of(clip: vs.VideoNode, m: Mapping) -> int:
    """The whole scale at which `clip` shows the LR frame of `m`; ValueError if it shows it at none."""
    s = clip.width // m.lr_width
    if s < 1 or (clip.width, clip.height) != (s * m.lr_width, s * m.lr_height):
        raise ValueError(f"a {clip.width}x{clip.height} clip is no whole scale of the mapping's "
                         f"{m.lr_width}x{m.lr_height} LR")
    return s


def clip_to_rgbs(clip: vs.VideoNode, default: Colour | None = None) -> vs.VideoNode:
    """Convert a clip to RGBS as the filter does, read with the colour its props state (`default` as in
    `colour_of`)."""
    fmt = Format.of(clip.format)
    return to_rgbs(clip, colour_of(fmt, clip.width, clip.height, first_props(clip), default))


def luma_of(rgbs: vs.VideoNode, c: Colour) -> vs.VideoNode:
    """Y (GRAYS) of an RGBS clip read with colour `c`: the clip as YUV 4:4:4 float with `c`'s matrix, then its Y
    plane taken as the filter takes it from a YUV clip (`to_luma`). What a luma bundle trains on, for HR and LR
    alike."""
    return to_luma(from_rgbs(rgbs, Format(vs.YUV, vs.FLOAT, 32, 0, 0), c), c)


def to_luma(clip: vs.VideoNode, c: Colour) -> vs.VideoNode:
    """The Y plane of a GRAY or YUV clip of colour `c` as GRAYS (vsutil's get_y and depth, in VapourSynth's own
    calls); an RGB clip is refused."""
    fmt = Format.of(clip.format)
    if fmt.color_family == vs.RGB:
        raise ValueError(f"this bundle upscales luma only (trained with --planes luma) and the clip is RGB: convert "
                         f"it to YUV first, e.g. clip.resize.Bicubic(format=vs.YUV444P16, matrix={c.matrix}) "
                         f"({matrix_name(c.matrix)}: the matrix the bundle was trained with, else the default for "
                         f"this size), and back after stdo.Upscale; or use a bundle trained with --planes rgb")
    if fmt == GRAYS:
        return clip
    clip = clip.std.SetFrameProps(**stamp(fmt, c))
    if fmt.color_family == vs.YUV:
        clip = vs.core.std.ShufflePlanes(clip, planes=[0], colorfamily=vs.GRAY)
    return vs.core.resize.Point(clip, format=GRAYS.id)


def from_luma(y: vs.VideoNode, source: vs.VideoNode, c: Colour, onto: Mapping | None = None) -> vs.VideoNode:
    """The upscaled GRAYS luma `y` back in the format of `source` (the clip `to_luma` took it from), undoing
    `to_luma`. For YUV the chroma is the source's own, resized by Catmull-Rom with the siting `c` says: to y's
    size, or with `onto` (the mapping of the source's frame) both y and the chroma onto its HR grid, each in
    one resize call."""
    fmt = Format.of(source.format)
    gray = Format(vs.GRAY, fmt.sample_type, fmt.bits, 0, 0)
    args: dict[str, Any] = {}
    if gray != GRAYS:
        args["format"] = gray.id
        if fmt.sample_type == vs.INTEGER:
            args["range_s"] = RANGE_NAMES[c.range]
    y = converted(y, "Point", args, onto)
    if fmt.color_family == vs.YUV:
        geometry = onto.resize_args(1) if onto else {"width": y.width, "height": y.height}
        chroma = vs.core.resize.Bicubic(source.std.SetFrameProps(**stamp(fmt, c)), **geometry, **CATROM)
        y = vs.core.std.ShufflePlanes([y, chroma], planes=[0, 1, 2], colorfamily=vs.YUV)
    return y.std.SetFrameProps(**stamp(fmt, c))


def common_luma(clip: vs.VideoNode, width: int | None = None, height: int | None = None) -> vs.VideoNode:
    """GRAYS BT.709 luma of any clip's RGB, optionally resized: the clip read as `clip_to_rgbs` reads it (its own
    tags, else the defaults for its size), so that a BT.601 DVD and a BT.709 Blu-ray of one picture give one luma.
    What the remaster alignment compares."""
    if clip.format is None:
        raise ValueError("the clip has a variable format; convert it to one format first")
    size = {} if width is None else {"width": width, "height": height}
    return vs.core.resize.Bicubic(clip_to_rgbs(clip), **size, format=GRAYS.id, matrix=MATRIX_709)
