"""Remaster playback against whole-scale playback of the same models, and the remaster output of two
installations (e.g. before and after a change of the filter): what the geometry step costs, and whether it moved.

    .venv/bin/python -m scripts.bench.geometry [--python NAME=PYTHON ...] [--parts speed,quality] [--runs 5]
        [--frames 16] [--workdir out/bench_geometry]

Each `--python` is an installation's interpreter (default: this one, as "this"); every measurement runs in a
process of its own under it, started outside the repository, so it plays with that installation's vs_stdo
and plugin.

speed: a x2 bundle trained on 704x480 frames of bigbuckbunny (`stdo train --steps 4 --pretrain 0`, tiny: speed
does not depend on the weights) and the same bundle given a DVD-like mapping (352x240 -> 640x480, ratios 1.80
x 1.95, shifted): a whole-scale and a remaster bundle of the same models. Both play route="chunk:0" on the
same 352x240 YUV420P8 LR (8 real frames held in memory, cycled), one warm-up frame, then --frames frames
through `clip.frames()`. Rounds interleave every (python, bundle); medians of --runs.

quality: the remaster pair of tests/integration/test_remaster.py (bikes: a 256x144 HR, a 140x74 LR framed
otherwise), trained as there (`--steps 150`); each --python plays the LR frames not trained on: RGB PSNR against
the HR inside the area both clips show less 8 px, and over the whole HR frame (its edges and the parts the LR
does not show included).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import vapoursynth as vs

from scripts import clips
from scripts import pairs as P
from scripts.bench.lib import table, train_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.mapping import Mapping

core = vs.core
DVD = Mapping(352, 240, 640, 480, 632 / 352, 468 / 240, 6.37, 3.59)
TRAIN = 16  # the quality pair's HR frames trained on, as in tests/integration/test_remaster.py

SPEED = """import json, sys, time
import vapoursynth as vs
core = vs.core
source, bundle, frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
lr = core.resize.Bicubic(core.bs.VideoSource(source)[:8], 352, 240, format=vs.YUV420P8, matrix_in_s="709",
                         matrix_s="709")
held = [lr.get_frame(n) for n in range(lr.num_frames)]
blank = core.std.BlankClip(lr, length=frames + 1)
out = core.stdo.Upscale(blank.std.ModifyFrame(blank, lambda n, f: held[n % len(held)]), bundle, route="chunk:0")
out.get_frame(0)
start, cpu = time.perf_counter(), time.process_time()
for _ in out[1:].frames():
    pass
print(json.dumps({"fps": frames / (time.perf_counter() - start), "cpu": (time.process_time() - cpu) / frames}))
"""

QUALITY = """import json, sys
import numpy as np
import vapoursynth as vs
core = vs.core
lr, hr, bundle, box = np.load(sys.argv[1]), np.load(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
blank = core.std.BlankClip(format=vs.RGBS, width=lr.shape[3], height=lr.shape[2], length=len(lr))
def fill(n, f):
    f = f.copy()
    for p in range(3):
        np.copyto(np.asarray(f[p]), lr[n, p])
    return f
up = core.stdo.Upscale(blank.std.ModifyFrame(blank, fill), bundle, device="cpu")
x0, y0, x1, y1 = box
inner, whole = [], []
for n, f in enumerate(up.frames()):
    d = np.stack([np.clip(np.asarray(f[p]), 0, 1) for p in range(3)]) - hr[n]
    inner.append(10 * np.log10(1 / np.mean(np.square(d[:, y0:y1, x0:x1]))))
    whole.append(10 * np.log10(1 / np.mean(np.square(d))))
print(json.dumps({"psnr": float(np.mean(inner)), "whole": float(np.mean(whole))}))
"""


def child(python: str, code: str, *args: object) -> dict:
    """`code` run by `python` in a process of its own, outside the repository (so it imports the vs_stdo of
    that interpreter's installation); its one line of JSON."""
    with tempfile.TemporaryDirectory() as cwd:
        r = subprocess.run([python, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd)
    if r.returncode:
        raise SystemExit(f"{python} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def speed_bundles(work: Path) -> dict[str, Path]:
    """{"whole": a x2 bundle trained on 704x480 frames, "remaster": the same with the DVD-like mapping}."""
    vpy = work / "hr704.vpy"
    vpy.write_text(f"from scripts.pairs import hr_clip\nhr_clip({str(clips.fetch('bigbuckbunny.mp4'))!r}, 704, 480, "
                   f"0, 8).set_output()\n")
    whole, remaster = work / "whole.stdo", work / "remaster.stdo"
    train_bundle(vpy, whole, "--scale", "2", "--steps", "4", "--pretrain", "0", "--chunks", "2", "--force",
                 log=work / "train_speed.log", reuse=True)
    b = bundle_io.load(whole)
    b.mapping = DVD
    bundle_io.save(b, remaster)
    return {"whole": whole, "remaster": remaster}


def speed(pythons: dict[str, str], work: Path, runs: int, frames: int) -> list[str]:
    """Frames per second (wall) and CPU seconds per frame (all the process's threads: less sensitive to other
    processes' load) of each bundle under each python, medians of interleaved runs."""
    bundles = speed_bundles(work)
    source = clips.fetch("bigbuckbunny.mp4")
    got: dict[tuple[str, str], list[dict]] = {(p, b): [] for p in pythons for b in bundles}
    for round_ in range(runs):
        for (name, kind), samples in got.items():
            samples.append(child(pythons[name], SPEED, source, bundles[kind], frames))
        print(f"round {round_ + 1}/{runs}: " + ", ".join(f"{p} {b} {s[-1]['fps']:.2f} fps {s[-1]['cpu']:.3f} cpu-s"
                                                         for (p, b), s in got.items()), file=sys.stderr)
    fps = {key: statistics.median(r["fps"] for r in s) for key, s in got.items()}
    cpu = {key: statistics.median(r["cpu"] for r in s) for key, s in got.items()}
    rows = [[name, f"{fps[name, 'whole']:.2f}", f"{fps[name, 'remaster']:.2f}",
             f"{fps[name, 'remaster'] / fps[name, 'whole']:.2f}", f"{cpu[name, 'whole']:.3f}",
             f"{cpu[name, 'remaster']:.3f}", f"{cpu[name, 'whole'] / cpu[name, 'remaster']:.2f}"] for name in pythons]
    return table(["python", "whole-scale x2 fps", "remaster fps", "fps remaster / whole", "whole CPU s/frame",
                  "remaster CPU s/frame", "CPU whole / remaster"], rows)


def quality(pythons: dict[str, str], work: Path) -> list[str]:
    pair = P.make_pair(P.hr_clip(clips.fetch("bikes.mp4"), 256, 144, 0, 24), 140, 74, (4, 2, 3, 5), (0.37, -0.41),
                       start=2)
    script = ("from pathlib import Path\nfrom scripts.pairs import hr_clip, make_pair\n"
              f"hr = hr_clip(Path({str(clips.fetch('bikes.mp4'))!r}), 256, 144, 0, 24)\n"
              "make_pair(hr, 140, 74, (4, 2, 3, 5), (0.37, -0.41), start=2).{side}.set_output()\n")
    for side in ("hr", "lr"):
        (work / f"pair_{side}.vpy").write_text(script.replace("{side}", side))
    bundle = work / "pair.stdo"
    train_bundle(work / "pair_hr.vpy", bundle, "--lr", work / "pair_lr.vpy", "--frames", f"0:{TRAIN}", "--steps",
                 "150", "--patch", "24x24", "--batch", "8", "--chunks", "2", "--device", "cpu", "--force",
                 log=work / "train_quality.log", reuse=True)
    tests = [(n, h) for n, h in enumerate(pair.shows) if h >= TRAIN]
    to_rgb = dict(format=vs.RGBS, matrix_in_s="170m")
    lr = core.resize.Bicubic(pair.lr, **to_rgb)
    hr = core.resize.Bicubic(pair.hr, format=vs.RGBS, matrix_in_s="709")
    arrays = {"lr": [lr.get_frame(n) for n, _ in tests], "hr": [hr.get_frame(h) for _, h in tests]}
    for side, frames in arrays.items():
        np.save(work / f"{side}.npy", np.stack([np.stack([np.asarray(f[p]) for p in range(3)]) for f in frames]))
    x0, y0, x1, y1 = pair.mapping.overlap()
    box = json.dumps([x0 + 8, y0 + 8, x1 - 8, y1 - 8])
    got = {name: child(python, QUALITY, work / "lr.npy", work / "hr.npy", bundle, box)
           for name, python in pythons.items()}
    first = next(iter(got.values()))
    return table(["python", "PSNR inside the overlap less 8 px (dB)", f"difference to {next(iter(got))}",
                  "PSNR of the whole HR frame (dB)", f"difference to {next(iter(got))}"],
                 [[name, f"{g['psnr']:.3f}", f"{g['psnr'] - first['psnr']:+.4f}", f"{g['whole']:.3f}",
                   f"{g['whole'] - first['whole']:+.4f}"] for name, g in got.items()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", action="append", default=[], metavar="NAME=PYTHON",
                    help="an installation's interpreter to measure (repeatable; default: this one)")
    ap.add_argument("--parts", default="speed,quality")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--workdir", type=Path, default=Path("out/bench_geometry"))
    a = ap.parse_args()
    # absolute, not resolved: a venv's python is a link that must stay the venv's
    pythons = {name: os.path.abspath(path) for name, path in (p.split("=", 1) for p in a.python)} or {
        "this": sys.executable}
    a.workdir.mkdir(parents=True, exist_ok=True)
    parts = a.parts.split(",")
    if "speed" in parts:
        print("\n".join(speed(pythons, a.workdir.resolve(), a.runs, a.frames)) + "\n")
    if "quality" in parts:
        print("\n".join(quality(pythons, a.workdir.resolve())) + "\n")


if __name__ == "__main__":
    main()
