"""Export a bundle's chunk models to ONNX, for vs-mlrt (`core.ort.Model`) and other ONNX runtimes.

One file per chunk model, NCHW float32 RGB in [0, 1], dynamic height and width. The routing labels
do not travel: an ONNX file is one model applied to whole frames (or vs-mlrt's tiles).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..core import bundle as bundle_io
from ..core.files import atomic_write

OPSET = 17


def export(bundle_path: str | Path, outdir: str | Path) -> list[Path]:
    """Write `chunk{i}.onnx` for every model of the bundle into `outdir`; returns the paths."""
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
    return paths
