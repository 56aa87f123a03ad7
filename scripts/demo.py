"""The main job: train a bundle on a real clip, upscale its LR through `vspipe | ffmpeg`, report PSNR.

    .venv/bin/python scripts/demo.py [--clip bigbuckbunny.mp4] [--frames 0:30] [--steps 1200] [--out out/demo]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import clips
import torch
import vapoursynth as vs
from encode import encode

from vs_stdo.cli import main as stdo
from vs_stdo.core import colour
from vs_stdo.core.metrics import psnr, psnr_y
from vs_stdo.core.video import frame_array, hr_lr_pair, open_clip, select_frames

VPY = """\
# Upscale the LR version of a clip with an STDO bundle (written by scripts/demo.py).
import vapoursynth as vs
from vs_stdo.core.video import hr_lr_pair, open_clip, select_frames

core = vs.core
hr, lr = hr_lr_pair(select_frames(open_clip({clip!r}), {frames!r}), {scale})
if method == "stdo":
    out = core.stdo.Upscale(lr, {bundle!r})
else:
    out = lr.resize.Bicubic(hr.width, hr.height)
out.resize.Bicubic(format=vs.YUV444P16, matrix_s="709").set_output()
"""


def measure(encoded: Path, hr: vs.VideoNode) -> tuple[float, float]:
    """Mean PSNR (RGB, Y) of an encoded file against the HR frames."""
    got = colour.clip_to_rgbs(open_clip(encoded))
    if (got.num_frames, got.width, got.height) != (hr.num_frames, hr.width, hr.height):
        raise RuntimeError(f"{encoded} has {got.num_frames} frames of {got.width}x{got.height}, "
                           f"expected {hr.num_frames} of {hr.width}x{hr.height}")
    rgb, y = [], []
    for a, b in zip(got.frames(), hr.frames()):
        ta, tb = torch.from_numpy(frame_array(a)).clamp(0, 1), torch.from_numpy(frame_array(b)).clamp(0, 1)
        rgb.append(psnr(ta, tb))
        y.append(psnr_y(ta, tb))
    return sum(rgb) / len(rgb), sum(y) / len(y)


# The 4-minute recipe (docs/results.md, "The demo in four minutes"): coarser patches with less training context
# (half the seconds per trained pixel of the defaults; on other footage the defaults are worth up to 5 dB more), batches
# of 8 (on this clip 14 400 patches in batches of 8 beat 19 200 in batches of 16 by 0.12 dB), and the generic
# start, worth about 0.4 dB here at equal steps (on film footage it cost 2.5 to 4 dB, so `stdo train` does not
# start from it by default).
FAST = ["--patch", "48x54", "--batch", "8", "--context", "4", "--init", "auto"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=clips.DEFAULT, help="a clip name from scripts/clips.py or a video path")
    p.add_argument("--frames", default="0:30")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--out", default="out/demo", help="output prefix")
    a = p.parse_args()

    clip = clips.source(a.clip)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    bundle, vpy = out.with_suffix(".stdo"), out.with_suffix(".vpy")

    t0 = time.time()
    # The demo owns its output: a rerun replaces the bundle, and continues a run Ctrl-C interrupted.
    resume = ["--resume"] if Path(f"{bundle}.ckpt").exists() else []
    rc = stdo(["train", str(clip), "-o", str(bundle), "--scale", str(a.scale), "--frames", a.frames,
               "--steps", str(a.steps), *FAST, "--force", *resume])
    if rc:
        return rc
    t_train = time.time() - t0
    vpy.write_text(VPY.format(clip=str(clip.resolve()), frames=a.frames, scale=a.scale,
                              bundle=str(bundle.resolve())))
    results = {}
    for method in ("stdo", "bicubic"):
        mp4 = out.with_name(f"{out.name}-{method}.mp4")
        t0 = time.time()
        # x264 lossless in 4:4:4, so the numbers measure the upscaler, not the encoder (lossless: the fastest preset
        # decodes to the same pixels, only the file is larger)
        encode(vpy, mp4, ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv444p"],
               {"method": method})
        results[method] = (*measure(mp4, hr_lr_pair(select_frames(open_clip(clip), a.frames), a.scale)[0]),
                           time.time() - t0, mp4)
    print(f"\n{clip.name} frames {a.frames}, x{a.scale}: trained {bundle} in {t_train:.0f} s "
          f"({bundle.stat().st_size} bytes)")
    print(f"{'method':<8} {'PSNR RGB':>9} {'PSNR Y':>8} {'encode s':>9}  file")
    for method, (rgb, y, secs, mp4) in results.items():
        print(f"{method:<8} {rgb:9.2f} {y:8.2f} {secs:9.1f}  {mp4}")
    gain = results["stdo"][0] - results["bicubic"][0]
    print(f"STDO vs bicubic: {gain:+.2f} dB (RGB)")
    return 0 if gain > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
