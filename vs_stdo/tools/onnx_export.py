"""Export a bundle's chunk models to ONNX, for vs-mlrt (`core.ort.Model`) and other ONNX runtimes.

One file per chunk model, NCHW float32 RGB (or luma) in [0, 1], dynamic height and width, upscaling by the
bundle's whole scale. Beside them `geometry.json` says where that output lands: the bundle's mapping and the
`resize.Bicubic` arguments that put a model's output on the HR grid (for a remaster bundle; a whole-scale
bundle's output is already there). What does not travel: the routing (labels and blind router: an ONNX file
is one model applied to whole frames, or vs-mlrt's tiles) and the colour conversions (`Upscale` does those).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from ..core import bundle as bundle_io
from ..core.files import atomic_write, write_atomic
from ..core.video import KERNELS

OPSET = 17


def export(bundle_path: str | Path, outdir: str | Path) -> list[Path]:
    """Write `chunk{i}.onnx` for every model of the bundle and `geometry.json` into `outdir`; returns the paths
    of the models."""
    b = bundle_io.load(bundle_path)
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"{str(outdir)!r} is a file, not a folder; give a folder for chunk0.onnx, chunk1.onnx, ...")
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    example = torch.rand(1, b.planes, b.patch_height, b.patch_width)
    for i, model in enumerate(b.build_models()):
        path = outdir / f"chunk{i}.onnx"
        with warnings.catch_warnings(), atomic_write(path) as f:
            warnings.simplefilter("ignore", DeprecationWarning)
            # torch notes that it leaves a strided Slice unfolded; the exported graph is complete
            warnings.filterwarnings("ignore", "Constant folding - Only steps=1", UserWarning)
            # The TorchScript exporter handles the bicubic skip and dynamic sizes without onnxscript.
            torch.onnx.export(model, (example,), f, input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {2: "height", 3: "width"}, "output": {2: "height", 3: "width"}},
                              opset_version=OPSET, dynamo=False)
        paths.append(path)
    write_atomic(outdir / GEOMETRY, json.dumps(geometry(b), indent=2).encode())
    return paths


GEOMETRY = "geometry.json"


def geometry(b: bundle_io.Bundle) -> dict:
    """Where the exported models' output lands: the mapping, and for a remaster bundle the resize that puts a
    model's output (the training LR's size times the scale) on the HR grid, as `core.stdo.Upscale` does (with
    bars, the crop before it and the black borders after it)."""
    name, params = KERNELS["bicubic"]  # Catmull-Rom: the resampler the models were trained through
    m = b.mapping
    out = {"scale": b.scale, "planes": "luma" if b.planes == 1 else "rgb", "mapping": m.to_dict()}
    if m.whole():
        return out
    if m.has_bars():  # the output cut to the LR picture, resized onto the HR picture, the HR's bars added
        out["crop"] = {"function": "std.Crop", "args": dict(zip(("left", "right", "top", "bottom"),
                                                                (b.scale * v for v in m.lr_bars)))}
        out["add_borders"] = {"function": "std.AddBorders", "args": dict(zip(("left", "right", "top", "bottom"),
                                                                             m.hr_bars)), "note": "black"}
    out["resize"] = {"function": f"resize.{name}", "args": m.inner().resize_args(b.scale) | params,
                     "note": "clamp the model's output to [0, 1] first (std.Limiter)" + (
                         ", crop it (crop), resize it (these arguments), add the HR's bars (add_borders)"
                         if m.has_bars() else "") + "; the arguments are for the training LR's size: for another "
                         "size, scale them with it"}
    return out
