"""What `stdo.Upscale` is, as a VapourSynth graph built of ordinary calls:

    clip -> to what the models see (RGBS; GRAYS for a luma bundle: colour.to_rgbs / to_luma)
         -> stdo.InternalFrames: the engine fills each frame on the models' grid, s times the clip's size
         -> back to the clip's format (colour.from_rgbs / from_luma)

For a remaster bundle (a mapping that is not a whole scale) the way back is also the geometry: the same zimg
resize that converts puts the picture on the mapping's HR grid (`Mapping.resize_args`), the resampling the
models were trained through, and the output is square-pixel (`_SARNum` = `_SARDen` = 1). Whole-scale bundles
keep the clip's sample aspect ratio: both sides grow by the same factor.

A remaster bundle whose pictures have black bars (a letterboxed DVD, a pillarboxed Blu-ray: `Mapping.lr_bars`,
`hr_bars`) plays the same way on the pictures: the models' output is cut to the LR picture (so the LR's bars
never reach the output), that one resize puts it on the HR picture, and `std.AddBorders` gives back the HR's
bars in black. HR picture pixels the LR picture does not reach are filled by the resize's edge rule: zimg
mirrors the LR picture into them.

The clip's colour props win; what they leave unset comes from the colour the bundle was trained with.
"""
from __future__ import annotations

import itertools
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import vapoursynth as vs

from ..core import bundle as bundle_io
from ..core import colour
from ..core.mapping import NO_BARS, Box, Mapping
from .engine import Engine
from .options import UpscaleOptions

log = logging.getLogger("vs_stdo")
_warned: set[tuple[str, tuple]] = set()  # (bundle, conflicts) already warned about in this process
_engines: dict[int, Engine] = {}  # engines waiting for stdo.InternalFrames to take them, by key
_keys = itertools.count(1)


def upscaled(clip: vs.VideoNode, bundle_path: str, options: UpscaleOptions, hr_grid: bool = True) -> vs.VideoNode:
    """`clip` through the bundle: what `stdo.Upscale` returns. `hr_grid=False` leaves a remaster bundle's output
    on the models' grid (the clip's own frame at s times its size, in its format), as `STDOScaler` takes it."""
    if clip.format is None or clip.width == 0 or clip.height == 0:
        raise ValueError("the clip must have a constant format and size")
    f = colour.Format.of(clip.format)
    f.check()
    props = read_props(clip)
    fields = props.get("_FieldBased", 0)
    if fields in (1, 2):
        raise ValueError(f"the clip is interlaced (_FieldBased={fields}): the bundle's models upscale whole "
                         f"progressive frames; deinterlace (or IVTC) first, e.g. with QTGMC or vivtc.VFM + VDecimate")
    b = bundle_io.load(bundle_path)
    c = colour.colour_of(f, clip.width, clip.height, props, b.colour)
    if b.colour:
        warn_conflicts(bundle_path, colour.conflicts(f, props, b.colour))
    engine = Engine(b, clip.width, clip.height, **options.engine_args())
    onto = hr_geometry(b, clip) if hr_grid else None
    cut = onto.lr_bars if onto is not None else NO_BARS  # the models' output is cut to the LR picture
    inner = onto.inner() if onto is not None else None
    if b.planes == 1:
        out = colour.from_luma(cropped(run(colour.to_luma(clip, c), engine), cut, b.scale), cropped(clip, cut), c,
                               inner)
    else:
        out = colour.from_rgbs(cropped(run(colour.to_rgbs(clip, c), engine), cut, b.scale), f, c, inner)
    if onto is None:
        return out
    if onto.hr_bars != NO_BARS:
        out = out.std.AddBorders(*onto.hr_bars, color=black(f, c))
    return out.std.SetFrameProps(_SARNum=1, _SARDen=1)


def cropped(clip: vs.VideoNode, bars: Box, k: int = 1) -> vs.VideoNode:
    """`clip` less `bars` (left, right, top, bottom) times k: a clip k times the size of the one they are of."""
    return clip if bars == NO_BARS else clip.std.Crop(*(k * v for v in bars))


def black(f: colour.Format, c: colour.Colour) -> list[float]:
    """Black in format `f` read with colour `c`, per plane: 0 for RGB and float; 16 and 128 (scaled to the bit
    depth) for limited-range integer YUV, 0 and 128 for full range."""
    if f.sample_type == vs.FLOAT or f.color_family == vs.RGB:
        return [0.0] * (1 if f.color_family == vs.GRAY else 3)
    luma = 16 << (f.bits - 8) if c.range == colour.RANGE_LIMITED else 0
    return [luma] if f.color_family == vs.GRAY else [luma, 128 << (f.bits - 8), 128 << (f.bits - 8)]


def read_props(clip: vs.VideoNode) -> dict[str, Any]:
    """The first frame's props that decide the conversion (colour, interlacing)."""
    try:
        return colour.first_props(clip, (*colour.PROPS, "_FieldBased"))
    except vs.Error as e:
        raise ValueError(f"cannot read frame 0 of the clip: {e}") from None


def hr_geometry(b: bundle_io.Bundle, clip: vs.VideoNode) -> Mapping | None:
    """Where a remaster bundle puts the clip: its mapping for the clip's size, the HR size and both sides' bars
    multiples of the clip's chroma subsampling (`Mapping.for_size`); None for a bundle whose output is s x the
    clip."""
    m = b.mapping.for_size(clip.width, clip.height, (1 << clip.format.subsampling_w, 1 << clip.format.subsampling_h))
    return None if m.whole() else m


def run(clip: vs.VideoNode, engine: Engine) -> vs.VideoNode:
    """`clip` (RGBS or GRAYS, the engine's size) through the engine: `stdo.InternalFrames`, which takes the
    engine by the key it is registered under for this call."""
    with registered(engine) as key:
        return vs.core.stdo.InternalFrames(clip, engine=key)


@contextmanager
def registered(engine: Engine) -> Iterator[int]:
    """The engine, registered under a fresh key while the block runs (whatever happens, nothing stays behind)."""
    key = next(_keys)
    _engines[key] = engine
    try:
        yield key
    finally:
        _engines.pop(key, None)


def claim_engine(key: int, planes: int, width: int, height: int) -> tuple[Engine, int, int]:
    """The engine registered under `key`, taken (each key serves one frame filter), for a clip of `planes`
    float32 planes of width x height: (engine, output width, output height). plugin/stdo.c's InternalFrames
    calls it; a key that is not there, or a clip the engine was not made for, is an error."""
    engine = _engines.pop(key, None)
    if engine is None:
        raise ValueError(f"no engine is waiting under key {key}: stdo.InternalFrames is internal to stdo.Upscale, "
                         f"which registers one for each call; use stdo.Upscale")
    if (engine.planes, engine.width, engine.height) != (planes, width, height):
        raise ValueError(f"the engine under key {key} takes {engine.planes}-plane {engine.width}x{engine.height} "
                         f"frames, not {planes}-plane {width}x{height} ones")
    return engine, *engine.size


def warn_conflicts(bundle_path: str, conflicts: dict[str, tuple[int, int]]) -> None:
    """Warn once per bundle and conflict that the clip's tags override the bundle's colour."""
    key = (str(Path(bundle_path).resolve()), tuple(sorted(conflicts.items())))
    if conflicts and key not in _warned:
        _warned.add(key)
        log.warning("stdo.Upscale: the clip says %s but %s was trained on %s; converting as the clip says. If the "
                    "tags are wrong, fix them with std.SetFrameProps before stdo.Upscale",
                    ", ".join(colour.show(name, v) for name, (v, _) in conflicts.items()), Path(bundle_path).name,
                    ", ".join(colour.show(name, v) for name, (_, v) in conflicts.items()))
