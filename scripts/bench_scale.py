"""Training at any input length: peak RSS, disk and time per phase against the number of input frames,
steps/s on one and two processes under torchrun, and quality on frames not trained on.

    .venv/bin/python scripts/bench_scale.py [--lengths 300 3000 30000 50000] [--steps 50]
        [--speed-steps 200] [--quality-steps 2000] [--out out/scale] [--skip length speed quality]

1. length: `stdo train long.vpy -o L.stdo --scale 4 --steps N` at the defaults on a 1080p input of L
   frames (the 41 frames of phone1080.mp4 looped in a .vpy); peak RSS of the process (wait4), bundle
   bytes, the trainer's phases (manifest), then `core.stdo.Upscale` (route "auto") renders the last frame.
2. speed: training steps/s of the same run (bikes.mp4, 30 frames, x4, k=4) on 1 and on 2 processes
   (torchrun, gloo), from the manifest's train phase.
3. quality: a multi-scene input, the four development clips at 640x360 one after another (30 frames
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
from pathlib import Path

from vs_stdo import bundle as bundle_io

import clips
from benchlib import stdo, table, train_bundle

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
            "from vs_stdo.video import open_pair\n"
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
                     "phases": b.training["phases"], "render_last_s": round(render_last(vpy, out), 2)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def speed(a: argparse.Namespace) -> list[dict]:
    rows = []
    for procs in (1, 2):
        out = a.out / f"speed{procs}.stdo"
        train_bundle(clips.fetch("bikes.mp4"), out, "--frames", "0:30", "--scale", 4, "--steps", a.speed_steps,
                     "--device", "cpu", "--force", processes=procs, log=a.out / f"speed{procs}.log")
        phases = bundle_io.load(out).training["phases"]
        train_s = sum(p["seconds"] for p in phases if p["phase"].startswith("train "))
        rows.append({"processes": procs, "steps_per_s": round(a.speed_steps / train_s, 2),
                     "wall_s": round(sum(p["seconds"] for p in phases), 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def quality(a: argparse.Namespace) -> list[dict]:
    vpy = a.out / "scenes.vpy"
    vpy.write_text("import vapoursynth as vs\nfrom vs_stdo import colour\n" + "parts = [colour.clip_to_rgbs("
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


def markdown(result: dict) -> str:
    lines = table(
        ["input frames", "trained on", "wall s", "peak RSS MiB", "bundle bytes", "last frame rendered in s",
         "phases (s)"],
        [[r["frames"], r["trained_frames"], r["seconds"], r["peak_rss_mib"], r["bundle_bytes"], r["render_last_s"],
          ", ".join(f"{p['phase']} {p['seconds']:.1f}" for p in r["phases"])] for r in result.get("lengths", [])])
    if result.get("speed"):
        lines += ["", *table(["processes", "training steps/s", "whole run s"],
                             [[r["processes"], r["steps_per_s"], r["wall_s"]] for r in result["speed"]])]
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
    p.add_argument("--skip", nargs="*", default=[], choices=["length", "speed", "quality"])
    p.add_argument("--out", type=Path, default=Path("out/scale"))
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    flags = [f for f in Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0].split()
             if f.startswith(("avx512", "amx", "avx2"))]
    result = {"cpu_flags": flags, "cores": os.cpu_count()}
    for name, fn in (("length", lengths), ("speed", speed), ("quality", quality)):
        if name not in a.skip:
            result[{"length": "lengths"}.get(name, name)] = fn(a)
    (a.out / "results.json").write_text(json.dumps(result, indent=2))
    (a.out / "results.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
