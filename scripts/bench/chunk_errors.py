"""Where a clip's error sits: per chunk of a STDO bundle (the split its models trained on), the squared
error of bicubic, of the bundle's scorer, of a one-model bundle and of the chunk models (routed by the
stored labels, and the best of them per patch), on the bundle's training frames. Shows whether the hard
chunk carries most of the error and how much its model gains.

    .venv/bin/python -m scripts.bench.chunk_errors CLIP SINGLE.stdo CHUNKS.stdo [--frames 0:30]

Both bundles must come from `stdo train` on the same CLIP and --frames (bench_quality's bundles do).
Each line gives, per chunk (0 = hardest), the PSNR of the chunk's mean squared error and its share of
the total; "all" is the PSNR of the mean squared error over every training patch.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.metrics import mse_to_psnr, psnr_to_mse
from vs_stdo.core.video import open_pair
from vs_stdo.train.chunks import label
from vs_stdo.train.data import load_frames
from vs_stdo.train.scoring import bicubic_upscaler, model_upscaler, models_psnr, score
from vs_stdo.train.target import target_for


def line(name: str, psnr: np.ndarray, labels: np.ndarray, k: int) -> str:
    err = psnr_to_mse(psnr)
    parts = [f"{name:<17} all {mse_to_psnr(float(err.mean())):6.2f}"]
    for c in range(k):
        chunk = err[labels == c]
        parts.append(f"chunk {c}: {mse_to_psnr(float(chunk.mean())):6.2f} dB, {chunk.sum() / err.sum():4.0%}")
    return "  ".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("clip")
    p.add_argument("single", help="a --mode single bundle")
    p.add_argument("chunks", help="a --mode chunks bundle of the same clip and frames")
    p.add_argument("--frames", default="0:30", help="the frame range both bundles were trained on")
    a = p.parse_args()
    one, many = bundle_io.load(a.single), bundle_io.load(a.chunks)
    pair = open_pair(a.clip, None, a.frames, many.scale)
    hr, lr = pair.hr, pair.lr
    frames = load_frames(hr, lr)
    cpu = torch.device("cpu")
    target = target_for(many.mapping, many.scale, many.grid, 0)
    single = score(frames, target, model_upscaler(one.build_models()[0], cpu))
    each = models_psnr(many, frames, target, cpu)
    train = [f for f in range(len(frames)) if f not in set(many.training.heldout)]
    chunk = label(many.psnr, many.thresholds)[train]
    routed = np.take_along_axis(each, many.labels[None].astype(np.int64), 0)[0]
    rows = [("bicubic", score(frames, target, bicubic_upscaler(many.scale)))]
    if (many.training.scorer or "bicubic") != "bicubic":
        rows.append((f"scorer ({many.training.scorer})", many.psnr))
    rows += [("single", single), ("chunks, routed", routed), ("chunks, best", each.max(0))]
    for name, psnr in rows:
        print(line(name, psnr[train], chunk, many.chunks))


if __name__ == "__main__":
    main()
