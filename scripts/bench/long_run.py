"""Long run: many frames through `stdo.Upscale` under the real vspipe; RSS and fps at start and end.

    .venv/bin/python -m scripts.bench.long_run [--frames 10000] [--out out/long]

Trains a tiny bundle on a 640x360 version of the default clip (x4, LR 160x90), then pipes
`--frames` LR frames (the 132-frame clip looped, route="auto") through vspipe, reading its y4m
output here. Reports the RSS of vspipe (with its child processes) and the frame rate over the
first and last 10 % of the run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

from scripts import clips
from scripts.bench.lib import train_bundle
from scripts.encode import vspipe_exe

HR_VPY = """\
import vapoursynth as vs
from vs_stdo.core.video import open_clip
open_clip({clip!r}).resize.Bicubic(640, 360).set_output()
"""
LONG_VPY = """\
import vapoursynth as vs
from vs_stdo.core.video import hr_lr_pair, open_clip
_, lr = hr_lr_pair(open_clip({hr_vpy!r}), 4)
lr = (lr * ({frames} // lr.num_frames + 1))[:{frames}]
vs.core.stdo.Upscale(lr, {bundle!r}, route="auto").resize.Bicubic(format=vs.YUV420P8, matrix_s="709").set_output()
"""


def rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants (the vspipe console script starts the real
    vspipe binary as a child, and that is where the filter runs)."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1])
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                total += rss_kib(int(child))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=10000)
    p.add_argument("--out", default="out/long")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    hr_vpy, bundle, long_vpy = out / "hr.vpy", out / "long.stdo", out / "long.vpy"
    hr_vpy.write_text(HR_VPY.format(clip=str(clips.fetch())))
    train_bundle(hr_vpy, bundle, "--scale", 4, "--steps", 60, "--chunks", 4, "--frames", "0:20", reuse=True)
    long_vpy.write_text(LONG_VPY.format(hr_vpy=str(hr_vpy.resolve()), frames=a.frames, bundle=str(bundle.resolve())))

    frame_bytes = 640 * 360 * 3 // 2
    proc = subprocess.Popen([vspipe_exe(), "-c", "y4m", str(long_vpy), "-"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    samples: list[tuple[float, int, int]] = []   # (time, frames done, RSS KiB)
    done = 0

    def sample() -> None:
        while proc.poll() is None:
            try:
                samples.append((time.monotonic(), done, rss_kib(proc.pid)))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(1)

    threading.Thread(target=sample, daemon=True).start()
    proc.stdout.readline()                                  # y4m stream header
    while True:
        header = proc.stdout.readline()                     # "FRAME\n"
        if not header:
            break
        if len(proc.stdout.read(frame_bytes)) != frame_bytes:
            break
        done += 1
    proc.wait()
    if proc.returncode or done != a.frames:
        print(f"vspipe exited {proc.returncode} after {done} frames: {proc.stderr.read().decode()[-2000:]}")
        return 1

    def window(lo: float, hi: float) -> tuple[float, int]:
        pts = [s for s in samples if max(1, lo * a.frames) <= s[1] <= hi * a.frames]
        (t0, f0, _), (t1, f1, r1) = pts[0], pts[-1]
        return (f1 - f0) / max(t1 - t0, 1e-9), r1

    fps0, rss0 = window(0.0, 0.1)
    fps1, rss1 = window(0.9, 1.0)
    print(f"{done} frames 160x90 -> 640x360 (x4, tiny preset, k=4, route=auto) through vspipe")
    print(f"first 10 %: {fps0:.1f} fps, RSS {rss0 / 1024:.1f} MiB")
    print(f"last 10 %:  {fps1:.1f} fps, RSS {rss1 / 1024:.1f} MiB")
    print(f"RSS growth {(rss1 - rss0) / 1024:+.1f} MiB, fps ratio end/start {fps1 / fps0:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
