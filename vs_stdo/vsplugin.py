"""The Python side of the native `stdo` plugin (plugin/stdo.c) and the `upscale` Python API.

`prepare` is called by the plugin's create function. It validates the arguments, loads the bundle,
builds the engine, and returns the colour conversion calls for the plugin to wire around its filter.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import vapoursynth as vs

from . import bundle as bundle_io
from . import colour
from .engine import Engine

ARG_TYPES = {"route": str, "device": str, "fp16": int, "pad": int, "batch": int}


def prepare(bundle_path: str, fmt: tuple[int, int, int, int], width: int, height: int, num_frames: int,
            props: dict[str, Any], args: dict[str, Any]) -> tuple[Engine, list, list, int, int]:
    """Plan one `stdo.Upscale` call: (engine, calls to RGBS, calls back, output width, output height)."""
    family, sample_type, bits, subsampling = fmt
    f = colour.Format(family, sample_type, bits, subsampling // 16, subsampling % 16)
    f.check()
    b = bundle_io.load(bundle_path)
    engine = Engine(b, width, height, route=args.get("route", "auto"), device=args.get("device", "auto"),
                    fp16=bool(args.get("fp16", 0)), pad=args.get("pad"), batch=args.get("batch", 0))
    out_w, out_h = width * b.scale, height * b.scale
    return (engine, colour.to_rgbs(f, width, height, props), colour.from_rgbs(f, out_w, out_h, props),
            out_w, out_h)


def upscale(clip: vs.VideoNode, bundle: str | Path, route: str | None = None, device: str | None = None,
            fp16: bool | None = None, pad: int | None = None, batch: int | None = None) -> vs.VideoNode:
    """Same as `core.stdo.Upscale(clip, bundle, ...)`: super-resolve `clip` with a `.stdo` bundle."""
    if not hasattr(vs.core, "stdo"):
        raise vs.Error("the stdo plugin is not installed in this VapourSynth; run scripts/setup.sh "
                       "(or `pip install .`) in this environment")
    kwargs = {k: v for k, v in dict(route=route, device=device, fp16=fp16, pad=pad, batch=batch).items()
              if v is not None}
    return vs.core.stdo.Upscale(clip, str(bundle), **kwargs)
