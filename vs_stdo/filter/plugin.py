"""The Python side of the native `stdo` plugin (plugin/stdo.c) and the `upscale` Python API.

`prepare` is called by the plugin's create function. It validates the arguments, loads the bundle,
builds the engine, and returns the colour conversion calls for the plugin to wire around its filter
(to RGBS and back; for a luma bundle to GRAYS and back, see `conversions`).
The clip's colour props win; what they leave unset comes from the colour the bundle was trained with.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import vapoursynth as vs

from ..core import bundle as bundle_io
from ..core import colour
from ..core.video import KERNELS
from .engine import Engine
from .options import UpscaleOptions
from .resampled import Resampled

CHROMA_KERNEL = "bicubic"  # luma bundles on YUV: how chroma is resized (Catmull-Rom, as the trainer's downscale)

log = logging.getLogger("vs_stdo")
_warned: set[tuple[str, tuple]] = set()  # (bundle, conflicts) already warned about in this process


def prepare(bundle_path: str, fmt: tuple[int, int, int, int, int], width: int, height: int,
            props: dict[str, Any], args: dict[str, Any]) -> tuple[Engine | Resampled, list, list, int, int]:
    """Prepare one `stdo.Upscale` call: (engine, calls to the engine's format, calls back, output width, output height).

    `fmt` is (colour family, sample type, bits, subsampling_w, subsampling_h); `props` are the first
    frame's; `args` holds the optional arguments that were given, as the plugin received them (options.py).
    """
    f = colour.Format(*fmt)
    f.check()
    options = UpscaleOptions.from_args(args)
    fields = props.get("_FieldBased", 0)
    if fields in (1, 2):
        raise ValueError(f"the clip is interlaced (_FieldBased={fields}): the bundle's models upscale whole "
                         f"progressive frames; deinterlace (or IVTC) first, e.g. with QTGMC or vivtc.VFM + VDecimate")
    b = bundle_io.load(bundle_path)
    c = colour.colour_of(f, width, height, props, b.colour)
    if b.colour:
        warn_conflicts(bundle_path, colour.conflicts(f, props, b.colour))
    engine = Engine(b, width, height, **options.engine_args())
    if not b.mapping.whole():  # a remaster bundle: the output on the HR grid
        if b.planes == 1:
            raise ValueError(f"{Path(bundle_path).name} is a luma bundle with a mapping (a remaster pair), which "
                             f"this vs-stdo does not play; retrain it with --planes rgb")
        engine = Resampled(engine, b.mapping.for_size(width, height))
    out_w, out_h = engine.size
    return engine, *conversions(b, f, c, out_w, out_h), out_w, out_h


def conversions(b: bundle_io.Bundle, f: colour.Format, c: colour.Colour, out_w: int,
                out_h: int) -> tuple[list[colour.Call], list[colour.Call]]:
    """The calls that bring a clip of format `f` and colour `c` to what the bundle's models see (RGBS, or
    GRAYS for a luma bundle) and back from the upscaled result (`out_w` x `out_h`)."""
    if b.planes == 1:
        return colour.to_luma(f, c), colour.from_luma(f, c, out_w, out_h, KERNELS[CHROMA_KERNEL])
    return colour.to_rgbs(f, c), colour.from_rgbs(f, c)


def warn_conflicts(bundle_path: str, conflicts: dict[str, tuple[int, int]]) -> None:
    """Warn once per bundle and conflict that the clip's tags override the bundle's colour."""
    key = (str(Path(bundle_path).resolve()), tuple(sorted(conflicts.items())))
    if conflicts and key not in _warned:
        _warned.add(key)
        log.warning("stdo.Upscale: the clip says %s but %s was trained on %s; converting as the clip says. If the "
                    "tags are wrong, fix them with std.SetFrameProps before stdo.Upscale",
                    ", ".join(colour.show(name, v) for name, (v, _) in conflicts.items()), Path(bundle_path).name,
                    ", ".join(colour.show(name, v) for name, (_, v) in conflicts.items()))


def upscale(clip: vs.VideoNode, bundle: str | Path, **options: Any) -> vs.VideoNode:
    """Super-resolve `clip` with a `.stdo` bundle; the same as `core.stdo.Upscale(clip, bundle, **options)`, whose
    arguments (route, device, fp16, pad, batch, bf16) options.py lists with their defaults (docs/filter.md)."""
    if not isinstance(clip, vs.VideoNode):
        raise vs.Error("stdo.upscale: clip must be a vs.VideoNode")
    if not hasattr(vs.core, "stdo"):
        raise vs.Error("stdo.upscale: the stdo plugin is not installed in this VapourSynth; run scripts/setup.sh "
                       "(or `pip install .`) in this environment")
    try:
        given = UpscaleOptions.from_args({k: int(v) if isinstance(v, bool) else v for k, v in options.items()}).given()
    except ValueError as e:
        raise vs.Error(f"stdo.upscale: {e}") from None
    return vs.core.stdo.Upscale(clip, str(bundle), **given)
