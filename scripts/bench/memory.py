"""Memory over a long clip: the RSS of a process that renders thousands of small frames through
`stdo.Upscale` (tests/test_filter.py runs it short; docs/filter.md reports a long run).

    .venv/bin/python -m scripts.bench.memory [--frames 20000] [--warmup 500] [--threads 2] [--json]

The clip is 16 real frames (the default clip, 64x48 LR, YUV420P8) looped; the bundle has two micro
models (x2, 16x12 patches, random labels) and knows those 16 frames, so every frame is matched by
content and routed by its labels. RSS (VmRSS of /proc/self/status, read after glibc's malloc_trim)
is sampled after the warm-up and every 500 frames. A leak grows without end, so the growth over the
second half of the samples is what tells one (the first steps after the warm-up still fill caches).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import vapoursynth as vs

from scripts import clips
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core import colour
from vs_stdo.core.clip_record import ClipRecord
from vs_stdo.core.fingerprint import fingerprint
from vs_stdo.core.grid import Grid
from vs_stdo.core.models import WDSR, Arch, plain_state
from vs_stdo.core.video import arrays, open_clip

WIDTH, HEIGHT, SCALE, PATCH, FRAMES = 64, 48, 2, (16, 12), 16
ARCH = Arch(scale=SCALE, blocks=1, channels=4, expansion=1)  # memory does not depend on model size


def rss_mb() -> float:
    """Resident memory after glibc hands its free pages back, so allocator slack does not count."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def small_clip() -> vs.VideoNode:
    """FRAMES real frames at WIDTH x HEIGHT, YUV420P8 BT.709."""
    src = open_clip(clips.fetch(clips.DEFAULT))[:FRAMES]
    rgb = colour.clip_to_rgbs(src).resize.Bicubic(WIDTH, HEIGHT)
    return rgb.resize.Bicubic(format=vs.YUV420P8, matrix_s="709")


def make_bundle(clip: vs.VideoNode, path: Path) -> Path:
    """Two freshly initialised micro models, random labels, the clip's fingerprints."""
    torch.manual_seed(0)
    models = [WDSR(ARCH) for _ in range(2)]
    frames = [torch.from_numpy(a) for a in arrays(colour.clip_to_rgbs(clip))]
    grid = Grid(WIDTH, HEIGHT, *PATCH)
    labels = np.random.default_rng(0).integers(0, 2, (FRAMES, grid.rows, grid.cols), dtype=np.uint8)
    bundle_io.save(bundle_io.Bundle(
        scale=SCALE, patch_width=PATCH[0], patch_height=PATCH[1], archs=[m.arch for m in models],
        weights=[plain_state(m) for m in models], labels=labels, psnr=np.zeros(labels.shape, np.float32),
        fingerprints=np.stack([fingerprint(f) for f in frames]), thresholds=[0.0],
        clip=ClipRecord(WIDTH, HEIGHT, FRAMES, 25, 1, "bench_memory")), path)
    return path


def measure(frames: int, warmup: int, threads: int, step: int = 500) -> dict:
    """Render `warmup` frames, then `frames` more, reading the RSS every `step` frames."""
    vs.core.num_threads = threads
    clip = small_clip()
    with tempfile.TemporaryDirectory() as tmp:
        out = vs.core.stdo.Upscale(clip.std.Loop(-(-(frames + warmup) // FRAMES)),
                                   str(make_bundle(clip, Path(tmp, "memory.stdo"))), route="labels")
        for _ in out[:warmup].frames(close=True):
            pass
        samples = [rss_mb()]
        start = time.perf_counter()
        for first in range(warmup, warmup + frames, step):
            for _ in out[first:min(first + step, warmup + frames)].frames(close=True):
                pass
            samples.append(rss_mb())
        seconds = time.perf_counter() - start
    return {"frames": frames, "warmup": warmup, "threads": threads, "fps": round(frames / seconds, 1),
            "rss_mb": [round(r, 1) for r in samples], "growth_mb": round(samples[-1] - samples[0], 2),
            "late_growth_mb": round(samples[-1] - samples[len(samples) // 2], 2),
            "spread_mb": round(max(samples) - min(samples), 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=20000, help="frames rendered after the warm-up")
    p.add_argument("--warmup", type=int, default=500, help="frames rendered before the first sample")
    p.add_argument("--threads", type=int, default=vs.core.num_threads, help="VapourSynth threads")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args()
    r = measure(a.frames, a.warmup, a.threads)
    print(json.dumps(r) if a.json else
          f"{r['frames']} frames of {WIDTH}x{HEIGHT} -> x{SCALE} with {r['threads']} thread(s), {r['fps']} fps, after "
          f"{r['warmup']} warm-up frames: RSS {r['rss_mb'][0]} -> {r['rss_mb'][-1]} MB ({r['growth_mb']:+} MB, second half "
          f"{r['late_growth_mb']:+} MB; "
          f"samples every 500 frames within {r['spread_mb']} MB)")


if __name__ == "__main__":
    main()
