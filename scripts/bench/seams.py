"""Seams: PSNR in a band along the borders between patches vs the interior of patches, with the
default context pad and with pad 0, on a real trained bundle and clip (figures in docs/filter.md).

    .venv/bin/python -m scripts.bench.seams [--clip bigbuckbunny.mp4] [--frames 0:8] [--scale 4]
                                            [--steps 400] [--band 4] [--bundle out/bench_seams.stdo]

If the bundle file does not exist it is trained first (`stdo train`, tiny preset, k=4, on those
frames) and kept. The band is `band` HR pixels on each side of every border between patches; the
interior is every other pixel at least `band` pixels from the frame edge. The reference without
seams is one model (chunk 0) at the default pad, which equals whole-frame inference; "seam cost" is
an output's (band - interior) minus the reference's.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import vapoursynth as vs

from scripts import clips
from scripts.bench.lib import table, train_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.metrics import mse_to_psnr
from vs_stdo.core.video import arrays, hr_lr_pair, open_clip, select_frames


def masks(bundle: bundle_io.Bundle, band: int) -> tuple[np.ndarray, np.ndarray]:
    """(band, interior) boolean HR masks for the bundle's grid."""
    grid, s = bundle.grid, bundle.scale
    h, w = grid.height * s, grid.width * s
    near = np.zeros((h, w), bool)
    for y in {y for y, _ in grid.origins} - {0}:
        near[y * s - band:y * s + band] = True
    for x in {x for _, x in grid.origins} - {0}:
        near[:, x * s - band:x * s + band] = True
    inside = np.zeros((h, w), bool)
    inside[band:h - band, band:w - band] = True
    return near & inside, ~near & inside


def psnr_on(clip: vs.VideoNode, hr: vs.VideoNode, mask_list: list[np.ndarray]) -> list[float]:
    """PSNR (RGB, all frames) of `clip` against `hr` on each mask."""
    sums = np.zeros(len(mask_list))
    for out, ref in zip(arrays(clip), arrays(hr)):
        err = ((np.clip(out, 0, 1) - np.clip(ref, 0, 1)) ** 2).mean(0)
        sums += [err[m].mean() for m in mask_list]
    return [float(mse_to_psnr(v / clip.num_frames)) for v in sums]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=clips.DEFAULT)
    p.add_argument("--frames", default="0:8")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--band", type=int, default=4, help="HR pixels on each side of a patch border")
    p.add_argument("--bundle", default="out/bench_seams.stdo", help="bundle to use; trained there if missing")
    a = p.parse_args()
    path = clips.source(a.clip)
    bundle_path = Path(a.bundle)
    train_bundle(path, bundle_path, "--frames", a.frames, "--scale", a.scale, "--chunks", 4, "--steps", a.steps,
                 "--device", "cpu", reuse=True)
    bundle = bundle_io.load(bundle_path)
    hr, lr = hr_lr_pair(select_frames(open_clip(path), a.frames), bundle.scale)
    if (lr.width, lr.height, lr.num_frames) != (bundle.grid.width, bundle.grid.height, len(bundle.labels)):
        raise SystemExit(f"{bundle_path} was trained on other frames; delete it or pass the matching --clip/--frames")
    band, interior = masks(bundle, a.band)
    radius = max(arch.radius for arch in bundle.archs)
    print(f"{path.name} frames {a.frames}: LR {lr.width}x{lr.height} x{bundle.scale}, {bundle.patch_width}x"
          f"{bundle.patch_height} patches, {bundle.chunks} chunk models, receptive radius {radius}; band = {a.band} "
          f"HR px each side of a border ({band.mean():.1%} of the pixels)\n")
    rows = {"bicubic": lr.resize.Bicubic(hr.width, hr.height, filter_param_a=0, filter_param_b=0.5)}
    for route, name in (("chunk:0", "one model (chunk 0)"), ("auto", "stdo, routed by labels")):
        rows[f"{name}, pad {radius} (default)"] = vs.core.stdo.Upscale(lr, str(bundle_path), route=route)
        rows[f"{name}, pad 0"] = vs.core.stdo.Upscale(lr, str(bundle_path), route=route, pad=0)
    results = {name: psnr_on(clip, hr, [band, interior]) for name, clip in rows.items()}
    b0, i0 = results[f"one model (chunk 0), pad {radius} (default)"]
    print("\n".join(table(["output", "PSNR band (dB)", "PSNR interior (dB)", "band - interior", "seam cost (dB)"],
                          [[name, f"{b:.2f}", f"{i:.2f}", f"{b - i:+.2f}", f"{(b - i) - (b0 - i0):+.2f}"]
                           for name, (b, i) in results.items()])))


if __name__ == "__main__":
    main()
