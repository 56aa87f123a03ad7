"""Training at any input length: peak RSS, disk and time per phase against the number of input frames,
steps/s on one and two processes under torchrun, and quality on frames not trained on.

    .venv/bin/python -m scripts.bench.scale [--lengths 300 3000 30000 50000] [--steps 50]
        [--speed-steps 200] [--quality-steps 2000] [--out out/scale] [--skip length speed quality]

1. length: `stdo train long.vpy -o L.stdo --scale 4 --steps N` at the defaults on a 1080p input of L
   frames (the 41 frames of phone1080.mp4 looped in a .vpy); peak RSS of the process (wait4), bundle
   bytes, the trainer's phases (manifest), then `core.stdo.Upscale` (route "auto") renders the last frame.
2. speed: training steps/s of the same run (bikes.mp4, 30 frames, x4, k=4) on 1 and on 2 processes
   (torchrun, gloo), from the manifest's train phase.
3. bundle: a bundle holding 170,000 frames (a 2-hour film; synthetic labels and fingerprints): bytes,
   load time, the filter's first frame, and the per-frame search for a frame by content.
4. quality: a multi-scene input, the four development clips at 640x360 one after another (30 frames
   each); STDO k=4 and single at the same budget on --train-frames 40 of its 120 frames; `stdo eval`
   PSNR on the 80 frames not trained on, against bicubic.
Writes results.json and results.md in --out; lscpu flags are printed with the speed figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from scripts import clips
from scripts.bench.lib import stdo, table, train_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core import schema
from vs_stdo.core.clip_record import ClipRecord

QUALITY_CLIPS = ["bigbuckbunny.mp4", "bikes.mp4", "cockatoo.mp4", "city.mpg"]


def looped_vpy(path: Path, length: int) -> Path:
    path.write_text(
        "import vapoursynth as vs\n"
        f"clip = vs.core.bs.VideoSource({str(clips.fetch('phone1080.mp4'))!r})\n"
        f"clip = (clip * (-(-{length} // clip.num_frames)))[:{length}]\n"
        "clip.set_output()\n")
    return path


def render_last(vpy: Path, bundle: Path) -> float:
    """Seconds to render the last frame of the LR of `vpy` through Upscale, route auto, in a fresh process."""
    code = ("import sys, time, vapoursynth as vs\n"
            "from vs_stdo.core.video import open_pair\n"
            "lr = open_pair(sys.argv[1], None, None, 4).lr\n"
            "t = time.perf_counter(); out = vs.core.stdo.Upscale(lr, sys.argv[2])\n"
            "f = out.get_frame(out.num_frames - 1); print(out.num_frames, time.perf_counter() - t)\n")
    r = subprocess.run([sys.executable, "-c", code, str(vpy), str(bundle)], capture_output=True, text=True, check=True)
    return float(r.stdout.split()[1])


def lengths(a: argparse.Namespace) -> list[dict]:
    rows = []
    for n in a.lengths:
        vpy = looped_vpy(a.out / f"long{n}.vpy", n)
        out = a.out / f"long{n}.stdo"
        run = train_bundle(vpy, out, "--scale", 4, "--steps", a.steps, "--force", log=a.out / f"long{n}.log")
        b = bundle_io.load(out)
        rows.append({"frames": n, "trained_frames": len(b.labels), "seconds": round(run.seconds, 1),
                     "peak_rss_mib": round(run.peak_rss_mib), "bundle_bytes": out.stat().st_size,
                     "phases": schema.builtins(b.training.phases), "render_last_s": round(render_last(vpy, out), 2)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def speed(a: argparse.Namespace) -> list[dict]:
    rows = [step_parts()]
    print(json.dumps(rows[-1]), flush=True)
    for procs in (1, 2):
        out = a.out / f"speed{procs}.stdo"
        train_bundle(clips.fetch("bikes.mp4"), out, "--frames", "0:30", "--scale", 4, "--steps", a.speed_steps,
                     "--device", "cpu", "--force", processes=procs, log=a.out / f"speed{procs}.log")
        phases = bundle_io.load(out).training.phases
        train_s = sum(p.seconds for p in phases if p.phase.startswith("train "))
        rows.append({"processes": procs, "steps_per_s": round(a.speed_steps / train_s, 2),
                     "wall_s": round(sum(p.seconds for p in phases), 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def step_parts(steps: int = 30) -> dict:
    """One training step of the tiny preset (x4, batch 16, 48x54 patches, bigbuckbunny frames) in parts: batch
    assembly (Patches.batch) and the model's forward+backward+Adam, its FLOPs (torch's FlopCounterMode) as
    GFLOP/s, against a float32 GEMM (2048^2) timed in the same process: medians of `steps`."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from vs_stdo.core.grid import Grid
    from vs_stdo.core.models import WDSR, add_weight_norm, preset
    from vs_stdo.core.video import open_pair
    from vs_stdo.train.data import Patches, all_items, load_frames
    from vs_stdo.train.target import WholeScale

    p = open_pair(clips.fetch("bigbuckbunny.mp4"), None, "0:8", 4)
    frames = load_frames(p.hr, p.lr)
    grid = Grid(p.lr.width, p.lr.height, 48, 54)
    model = add_weight_norm(WDSR(preset("tiny", 4)))
    patches = Patches(frames, grid, WholeScale(grid, 4, min(model.arch.radius, 8)))
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    items = all_items(len(frames), grid.count)
    gen = torch.Generator().manual_seed(0)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        loss = F.l1_loss(model.unshuffled(x, crop=patches.target.context), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    x, y = patches.batch(items[:16])
    with FlopCounterMode(display=False) as counter:
        step(x, y)
    batch_s, step_s, gemm_s = [], [], []
    m = torch.randn(2048, 2048)
    for _ in range(steps):
        t0 = time.perf_counter()
        x, y = patches.batch(items[torch.randint(len(items), (16,), generator=gen)])
        t1 = time.perf_counter()
        step(x, y)
        t2 = time.perf_counter()
        m @ m
        gemm_s.append(time.perf_counter() - t2)
        batch_s.append(t1 - t0)
        step_s.append(t2 - t1)

    def median(v: list[float]) -> float:
        return sorted(v)[len(v) // 2]

    gflop = counter.get_total_flops() / 1e9
    return {"batch_ms": round(1000 * median(batch_s), 2), "step_ms": round(1000 * median(step_s), 1),
            "step_gflops": round(gflop / median(step_s), 1),
            "gemm_gflops": round(2 * 2048 ** 3 / 1e9 / median(gemm_s), 1),
            "threads": torch.get_num_threads()}


def quality(a: argparse.Namespace) -> list[dict]:
    vpy = a.out / "scenes.vpy"
    vpy.write_text("import vapoursynth as vs\nfrom vs_stdo.core import colour\n" + "parts = [colour.clip_to_rgbs("
                   "vs.core.bs.VideoSource(p)[:30]).resize.Bicubic(640, 360) for p in %r]\n"
                   % [str(clips.fetch(c)) for c in QUALITY_CLIPS] + "vs.core.std.Splice(parts).set_output()\n")
    rows = []
    for mode, chunks in (("chunks", 4), ("single", 1)):
        out = a.out / f"scenes_{mode}.stdo"
        train_bundle(vpy, out, "--mode", mode, "--chunks", chunks, "--train-frames", 40, "--steps", a.quality_steps,
                     "--force", log=a.out / f"scenes_{mode}.log")
        res = json.loads(stdo("eval", out, vpy, "--json").stdout)["results"]
        rows.append({"method": f"{mode} k={chunks}", "train": res["stdo"]["train"]["psnr_rgb"],
                     "not_trained_on": res["stdo"]["unseen"]["psnr_rgb"],
                     "bicubic_not_trained_on": res["bicubic"]["unseen"]["psnr_rgb"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def long_bundle(a: argparse.Namespace) -> dict:
    """A bundle holding labels and fingerprints of --bundle-frames frames (synthetic: random labels, distinct
    random fingerprints; one tiny model, 480x270 LR grid): file size, load time, filter creation, and the
    per-frame search for a frame by its fingerprint (median of 200)."""
    import numpy as np
    import vapoursynth as vs

    from vs_stdo.core.fingerprint import CELLS, FrameMatcher
    from vs_stdo.core.grid import Grid
    from vs_stdo.core.models import WDSR, plain_state, preset

    n, rng = a.bundle_frames, np.random.default_rng(0)
    grid = Grid(480, 270, 48, 54)
    model = WDSR(preset("tiny", 4))
    prints = rng.random((n, CELLS * CELLS), dtype=np.float32)
    b = bundle_io.Bundle(scale=4, patch_width=48, patch_height=54, archs=[model.arch] * 4,
                         weights=[plain_state(model)] * 4,
                         labels=rng.integers(0, 4, (n, grid.rows, grid.cols), dtype=np.uint8),
                         psnr=rng.normal(35, 3, (n, grid.rows, grid.cols)).astype(np.float32), fingerprints=prints,
                         thresholds=[30.0, 35.0, 40.0], clip=ClipRecord(480, 270, n, 24, 1, "synthetic"))
    path = a.out / "long_bundle.stdo"
    bundle_io.save(b, path)
    loads = []
    for _ in range(3):
        t = time.perf_counter()
        loaded = bundle_io.load(path)
        loads.append(time.perf_counter() - t)
    t = time.perf_counter()
    clip = vs.core.std.BlankClip(format=vs.RGBS, width=480, height=270, length=1)
    vs.core.stdo.Upscale(clip, str(path), route="auto").get_frame(0)
    create = time.perf_counter() - t
    matcher = FrameMatcher(loaded.fingerprints)
    searches = []
    for i in rng.integers(0, n, 200):
        t = time.perf_counter()
        matcher.match(loaded.fingerprints[i])
        searches.append(time.perf_counter() - t)
    row = {"frames": n, "bytes": path.stat().st_size, "parts": bundle_io.part_bytes(path.read_bytes()),
           "load_s": round(sorted(loads)[1], 2), "filter_first_frame_s": round(create, 2),
           "search_ms": round(1000 * float(np.median(searches)), 3)}
    print(json.dumps(row), flush=True)
    return row


def markdown(result: dict) -> str:
    lines = table(
        ["input frames", "trained on", "wall s", "peak RSS MiB", "bundle bytes", "last frame rendered in s",
         "phases (s)"],
        [[r["frames"], r["trained_frames"], r["seconds"], r["peak_rss_mib"], r["bundle_bytes"], r["render_last_s"],
          ", ".join(f"{p['phase']} {p['seconds']:.1f}" for p in r["phases"])] for r in result.get("lengths", [])])
    if result.get("speed"):
        parts, runs = result["speed"][0], result["speed"][1:]
        lines += ["", f"One step (tiny, x4, batch 16): batch assembly {parts['batch_ms']} ms, model "
                      f"{parts['step_ms']} ms = {parts['step_gflops']} GFLOP/s against a {parts['gemm_gflops']} "
                      f"GFLOP/s float32 GEMM ({parts['threads']} threads)", "",
                  *table(["processes", "training steps/s", "whole run s"],
                         [[r["processes"], r["steps_per_s"], r["wall_s"]] for r in runs])]
    if result.get("bundle"):
        r = result["bundle"]
        lines += ["", *table(["frames in the bundle", "bytes", "of which labels / fingerprints / psnr", "load s",
                              "filter's first frame s", "search for a frame, ms"],
                             [[r["frames"], r["bytes"], f"{r['parts']['labels']} / {r['parts']['fingerprints']} / "
                               f"{r['parts']['psnr']}", r["load_s"], r["filter_first_frame_s"], r["search_ms"]]])]
    if result.get("quality"):
        lines += ["", *table(["method", "PSNR train frames", "PSNR frames not trained on", "bicubic, not trained on"],
                             [[r["method"], f"{r['train']:.2f}", f"{r['not_trained_on']:.2f}",
                               f"{r['bicubic_not_trained_on']:.2f}"] for r in result["quality"]])]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[300, 3000, 30000, 50000])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--speed-steps", type=int, default=200)
    p.add_argument("--quality-steps", type=int, default=2000)
    p.add_argument("--bundle-frames", type=int, default=170_000)
    p.add_argument("--skip", nargs="*", default=[], choices=["length", "bundle", "speed", "quality"])
    p.add_argument("--out", type=Path, default=Path("out/scale"))
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    flags = [f for f in Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0].split()
             if f.startswith(("avx512", "amx", "avx2"))]
    result = {"cpu_flags": flags, "cores": os.cpu_count()}
    for name, fn in (("length", lengths), ("speed", speed), ("bundle", long_bundle), ("quality", quality)):
        if name not in a.skip:
            result[{"length": "lengths"}.get(name, name)] = fn(a)
    (a.out / "results.json").write_text(json.dumps(result, indent=2))
    (a.out / "results.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
