"""The Python side of the native `stdo` plugin (plugin/stdo.c), and the `upscale` Python API.

Only a native plugin can add `core.stdo`, and Python cannot turn the plugin's C node into a `vs.VideoNode`, so
`stdo.Upscale` is a hand-off: its create function checks the clip, keeps it for this thread and calls `build`,
which takes the clip through `stdo.InternalInput`, builds the whole graph in Python with ordinary VapourSynth
calls (graph.py) and gives the result back through `stdo.InternalOutput`. The engine reaches its frame filter,
`stdo.InternalFrames`, by a key (`graph.claim_engine`). The three Internal functions work only inside that
hand-off: called from a script they are a clear error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import vapoursynth as vs

from .graph import upscaled
from .options import UpscaleOptions


def build(bundle_path: str, args: dict[str, Any]) -> None:
    """Build one `stdo.Upscale` call's graph; plugin/stdo.c's Upscale calls it. `args` holds the optional
    arguments that were given, as the plugin received them (options.py checks them)."""
    options = UpscaleOptions.from_args(args)
    clip = vs.core.stdo.InternalInput()
    vs.core.stdo.InternalOutput(upscaled(clip, bundle_path, options))


def upscale(clip: vs.VideoNode, bundle: str | Path, **options: Any) -> vs.VideoNode:
    """Super-resolve `clip` with a `.stdo` bundle; the same as `core.stdo.Upscale(clip, bundle, **options)`, whose
    arguments (route, device, fp16, pad, batch, bf16) options.py lists with their defaults (docs/filter.md)."""
    if not isinstance(clip, vs.VideoNode):
        raise vs.Error("stdo.upscale: clip must be a vs.VideoNode")
    if not hasattr(vs.core, "stdo"):
        raise vs.Error("stdo.upscale: the stdo plugin is not installed in this VapourSynth; run scripts/setup.sh "
                       "(or `pip install .`) in this environment")
    try:
        given = UpscaleOptions.from_keywords(options).given()
    except ValueError as e:
        raise vs.Error(f"stdo.upscale: {e}") from None
    return vs.core.stdo.Upscale(clip, str(bundle), **given)
