"""CUDA checks and speed, in one short run on a machine with a GPU (docs/speed.md, GPU section).

    python -m scripts.bench.gpu [--device cuda] [--preset small] [--steps 300] [--frames 0:8]
        [--cases 1920x1080x2 480x270x4] [--timed 30] [--out out/gpu]

1. Trains a k=4 bundle per scale on frames of phone1080.mp4 with `stdo train --device cuda`
   (CUDA training with fp16 autocast), timing it.
2. For each case WIDTHxHEIGHTxSCALE (LR size and scale; the default cases are 1080p -> 4K x2 and
   270p -> 1080p x4): frames per second of `core.stdo.Upscale` on the device in float32, fp16 and
   bf16, and with every patch on one model (`route="chunk:0"`), over `--timed` frames after two
   warm-up frames, plus `core.resize.Bicubic` on the CPU. LR frames are the clip's frames resized
   to the case's size and served from memory (`lib.from_memory`), so decoding is not timed.
3. Output of the device against the CPU in float32 (max difference), and PSNR of fp16 and bf16
   output against float32 output.
4. Out of memory, for real: the GPU is filled until only a few hundred MB are free, then a frame
   is upscaled (the engine must lower its batch and give the same picture), then filled until
   nothing is free (the frame must fail with a clear error, the process must live).

Writes gpu.json and gpu.md into --out and prints the Markdown.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import vapoursynth as vs

from scripts import clips
from scripts.bench.lib import from_memory, interleaved, medians, table, train_bundle
from vs_stdo.core.colour import clip_to_rgbs
from vs_stdo.core.metrics import psnr
from vs_stdo.core.video import frame_array, open_clip, resize, select_frames

core = vs.core


def fps(clip: vs.VideoNode, timed: int) -> float:
    for n in range(2):
        clip.get_frame(n)
    start = time.perf_counter()
    for _ in clip[2:2 + timed].frames(close=True):
        pass
    return timed / (time.perf_counter() - start)


def out_of_memory(lr: vs.VideoNode, bundle: str, device: str) -> dict:
    """Upscale one frame with the GPU nearly full, then completely full."""
    want = frame_array(core.stdo.Upscale(lr, bundle, device=device, fp16=1).get_frame(0))
    torch.cuda.empty_cache()
    result = {}
    for name, keep_mb in (("nearly full", 400), ("full", 0)):
        free, _ = torch.cuda.mem_get_info()
        filler = torch.empty(max(0, free - keep_mb * 2 ** 20 - 64 * 2 ** 20), dtype=torch.uint8, device=device)
        if keep_mb == 0:   # take what is left in small pieces
            rest = []
            while True:
                try:
                    rest.append(torch.empty(16 * 2 ** 20, dtype=torch.uint8, device=device))
                except torch.OutOfMemoryError:
                    break
        try:   # creating the filter on a full GPU must fail as cleanly as rendering on one
            got = frame_array(core.stdo.Upscale(lr, bundle, device=device, fp16=1).get_frame(0))
            result[name] = {"ok": True, "max_diff_vs_roomy": float(np.abs(got - want).max()),
                            "free_mb_at_start": keep_mb}
        except vs.Error as e:
            result[name] = {"ok": False, "error": str(e)[:300], "free_mb_at_start": keep_mb}
        del filler
        if keep_mb == 0:
            del rest
        torch.cuda.empty_cache()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--preset", default="small")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--frames", default="0:8")
    p.add_argument("--cases", nargs="+", default=["1920x1080x2", "480x270x4"])
    p.add_argument("--timed", type=int, default=30)
    p.add_argument("--out", type=Path, default=Path("out/gpu"))
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    clip = clips.fetch("phone1080.mp4")
    source = clip_to_rgbs(select_frames(open_clip(clip), a.frames))
    report: dict = {"device": torch.cuda.get_device_name() if "cuda" in a.device else a.device,
                    "torch": torch.__version__, "preset": a.preset, "steps": a.steps, "cases": []}
    bundles = {}
    for scale in sorted({int(c.split("x")[2]) for c in a.cases}):
        bundle = a.out / f"{a.preset}_x{scale}.stdo"
        run = train_bundle(clip, bundle, "--frames", a.frames, "--scale", scale, "--preset", a.preset, "--chunks", 4,
                           "--steps", a.steps, "--device", a.device, "--force")
        report[f"train_x{scale}_s"] = round(run.seconds, 1)
        bundles[scale] = str(bundle)
    for case in a.cases:
        w, h, scale = (int(v) for v in case.split("x"))
        lr = from_memory(resize(source, w, h, "bicubic"), a.timed + 2)
        b = bundles[scale]
        half = {"fp16": 1} if "cuda" in a.device else {"bf16": 1}   # fp16 is CUDA only (CPU dry runs: bf16)
        runs = {
            "fp32": core.stdo.Upscale(lr, b, device=a.device, bf16=0),
            "fp16": core.stdo.Upscale(lr, b, device=a.device, **half),
            "bf16": core.stdo.Upscale(lr, b, device=a.device, bf16=1),
            "fp16 one model": core.stdo.Upscale(lr, b, device=a.device, route="chunk:0", **half),
            "bicubic (CPU)": core.resize.Bicubic(lr, w * scale, h * scale),
        }
        speeds = medians(interleaved({k: lambda node=node: fps(node, a.timed) for k, node in runs.items()}, 3))
        row = {"case": f"{w}x{h} -> {w * scale}x{h * scale} (x{scale})",
               "fps": {k: round(v, 2) for k, v in speeds.items()}}
        ref = torch.from_numpy(frame_array(runs["fp32"].get_frame(0)))
        cpu = torch.from_numpy(frame_array(core.stdo.Upscale(lr, b, device="cpu", bf16=0).get_frame(0)))
        row["max_diff_device_vs_cpu_fp32"] = float((ref - cpu).abs().max())
        for k in ("fp16", "bf16"):
            row[f"psnr_{k}_vs_fp32"] = round(psnr(torch.from_numpy(frame_array(runs[k].get_frame(0))), ref), 2)
        if "cuda" in a.device:
            row["out_of_memory"] = out_of_memory(lr, b, a.device)
        report["cases"].append(row)
        print(json.dumps(row), flush=True)
    (a.out / "gpu.json").write_text(json.dumps(report, indent=2))
    lines = [f"Device: {report['device']}, torch {report['torch']}, preset {a.preset}; training "
             + ", ".join(f"x{s}: {report[f'train_x{s}_s']} s" for s in bundles) + f" ({a.steps} steps).", "",
             *table(["LR -> HR", *(f"{k} fps" for k in report["cases"][0]["fps"]), "device vs CPU (fp32) max diff",
                     "PSNR fp16 / bf16 vs fp32 (dB)"],
                    [[row["case"], *(f"{v:.2f}" for v in row["fps"].values()),
                      f"{row['max_diff_device_vs_cpu_fp32']:.2e}",
                      f"{row['psnr_fp16_vs_fp32']:.1f} / {row['psnr_bf16_vs_fp32']:.1f}"] for row in report["cases"]])]
    text = "\n".join(lines) + "\n"
    (a.out / "gpu.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
