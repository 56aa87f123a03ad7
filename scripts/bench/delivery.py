"""Delivery benchmark: an LR encode plus a bundle against the HR encode, in bytes at equal quality.

    .venv/bin/python -m scripts.bench.delivery CLIP --scale S [--frames A:B] [--codec x264|x265|both]
        [--steps N] [--out DIR] [--json FILE]

1. The HR reference: the clip's frames A:B, cropped to a multiple of S, stored losslessly (FFV1).
2. HR ladder: the reference encoded by the codec at preset medium, one file per --hr-crfs value.
3. LR ladder: the reference downscaled by the trainer's kernel (`video.hr_lr_pair`, bicubic), encoded
   by the same codec at each --lr-crfs value. For every LR encode: `stdo train` on the reference with
   `--lr` that encode (the models learn to undo the codec too), then the encode through
   `core.stdo.Upscale` (vspipe), and through bicubic for the baseline. STDO's bytes are the LR
   stream plus the bundle.
4. Quality of every output against the reference: PSNR (RGB and BT.709 Y, `vs_stdo.core.metrics`, mean
   over frames) and VMAF (ffmpeg's libvmaf), all on the delivered 8-bit 4:2:0 video.
5. BD-rate (Bjontegaard, cubic fit of log-rate against quality) of STDO and bicubic against the HR
   ladder, for PSNR (RGB and Y) and VMAF; negative means fewer bytes at equal quality. Also what the
   bundle costs and the models give: STDO's LR stream alone against the HR ladder, STDO against bicubic
   from the same streams, and the largest bundle that would reach a BD-rate of -20 % on PSNR RGB.
Every encode and output is tagged BT.709 (matrix, transfer, primaries, limited range), so that the
HR and LR sides are read with the same matrix whatever their size. Writes points.csv, results.md,
rd.png and results.json (or --json FILE) in --out. Intermediate files already present are reused.
"""
from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench.lib import pyplot, save_png, train_bundle
from scripts.encode import encode, ffmpeg_exe
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.colour import clip_to_rgbs
from vs_stdo.core.metrics import psnr, psnr_y
from vs_stdo.core.video import open_clip
from vs_stdo.tools.evaluate import tensor

CODECS = {"x264": "libx264", "x265": "libx265"}
HR_CRFS = {"x264": [22, 27, 32, 37, 42, 47], "x265": [24, 29, 34, 39, 44, 49]}
LR_CRFS = {"x264": [17, 22, 27, 32], "x265": [19, 24, 29, 34]}
# BT.709 tags set on the frames (setparams), not asked of the encoder: ffmpeg converts untagged y4m (taken as
# BT.601) to an encoder's -colorspace, which would shift the pixels
BT709 = ["-vf", "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"]
LOSSLESS = ["-c:v", "ffv1", "-pix_fmt", "yuv420p", *BT709]
METRICS = {"psnr": "psnr_rgb", "psnr_y": "psnr_y", "vmaf": "vmaf"}  # BD-rate name -> point field
TARGET = -20.0  # BD-rate (%, PSNR RGB, bundle counted) that delivery aims for: `bundle_budget` is the bundle reaching it

# One script for every picture the bench makes; vspipe passes the mode and paths as -a arguments.
SCRIPT = '''\
import vapoursynth as vs
from vs_stdo.core import video
from vs_stdo.core.colour import clip_to_rgbs
from vs_stdo.filter.plugin import upscale

def yuv(rgbs):
    return vs.core.resize.Bicubic(rgbs, format=vs.YUV420P8, matrix_s="709", range_s="limited",
                                  dither_type="error_diffusion")

frames, bundle = globals().get("frames", ""), globals().get("bundle")
clip = video.open_clip(src)
if mode == "hr":
    out = video.crop_to_multiple(video.select_frames(clip, frames or None), int(scale))
elif mode == "lr":
    out = yuv(video.hr_lr_pair(clip, int(scale))[1])
elif mode == "stdo":
    out = yuv(upscale(clip_to_rgbs(clip), bundle))
else:
    lr = clip_to_rgbs(clip)
    out = yuv(video.resize(lr, lr.width * int(scale), lr.height * int(scale), "bicubic"))
out.set_output()
'''


def bd_rate(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> float | None:
    """Bjontegaard delta rate (%) of `test` against `anchor`, each a list of (bytes, quality) points:
    the mean log-rate difference of cubic fits of log10(rate) over quality, integrated over the
    quality range both curves cover. None where either has fewer than 4 points or the ranges do not
    overlap."""
    if len(anchor) < 4 or len(test) < 4:
        return None
    fits, ranges = [], []
    for points in (anchor, test):
        rate, quality = np.log10([p[0] for p in points]), np.array([p[1] for p in points], float)
        fits.append(np.polyint(np.polyfit(quality, rate, 3)))
        ranges.append((quality.min(), quality.max()))
    lo, hi = max(r[0] for r in ranges), min(r[1] for r in ranges)
    if hi <= lo:
        return None
    a, t = (np.polyval(f, hi) - np.polyval(f, lo) for f in fits)
    return float((10 ** ((t - a) / (hi - lo)) - 1) * 100)


def bundle_budget(hr: list[tuple[float, float]], stream: list[tuple[float, float]],
                  target: float = TARGET) -> float | None:
    """The largest bundle (bytes, added to every point of `stream`) with which `stream` stays at a BD-rate of
    `target` % or better against `hr`: how big a bundle may be for these models to pay. None where even a free
    bundle misses the target (or no BD-rate exists)."""
    def rate(bundle: float) -> float | None:
        return bd_rate(hr, [(r + bundle, q) for r, q in stream])

    free = rate(0.0)
    if free is None or free > target:
        return None
    lo, hi = 0.0, 1.0
    while rate(hi) <= target:  # BD-rate grows with the bundle: double until it is past the target, then bisect
        lo, hi = hi, 2 * hi
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if rate(mid) <= target else (lo, mid)
    return lo


def run_script(out: Path, mode: str, src: Path, ffmpeg_args: list[str], **args: Any) -> Path:
    """Render SCRIPT in `mode` from `src` into `out` (skipped where `out` exists)."""
    if not out.exists():
        script = out.parent / "bench.vpy"
        script.write_text(SCRIPT)
        tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
        encode(script, tmp, ffmpeg_args, {"mode": mode, "src": str(src)} | {k: str(v) for k, v in args.items()})
        tmp.replace(out)
    return out


def codec_args(codec: str, crf: int) -> list[str]:
    extra = ["-x265-params", "log-level=error"] if codec == "x265" else []
    return ["-c:v", CODECS[codec], "-preset", "medium", "-crf", str(crf), "-pix_fmt", "yuv420p", *extra, *BT709]


def quality(output: Path, reference: Path) -> dict[str, float]:
    """Mean PSNR (RGB, Y) over frames and VMAF of a video against the reference, both 4:2:0 8-bit."""
    a, b = clip_to_rgbs(open_clip(output)), clip_to_rgbs(open_clip(reference))
    if (a.width, a.height, a.num_frames) != (b.width, b.height, b.num_frames):
        raise ValueError(f"{output.name} is {a.width}x{a.height}x{a.num_frames}, the reference "
                         f"{b.width}x{b.height}x{b.num_frames}")
    rgb, y = [], []
    for fa, fb in zip(a.frames(close=True), b.frames(close=True)):
        ta, tb = tensor(fa), tensor(fb)
        rgb.append(psnr(ta, tb))
        y.append(psnr_y(ta, tb))
    log = output.with_suffix(".vmaf.json")
    r = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(output), "-i", str(reference),
                        "-lavfi", f"[0:v][1:v]libvmaf=log_fmt=json:log_path={log}:n_threads=2", "-f", "null", "-"],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"ffmpeg libvmaf failed on {output.name}: {r.stderr.strip()}")
    vmaf = json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"]
    return {"psnr_rgb": float(np.mean(rgb)), "psnr_y": float(np.mean(y)), "vmaf": float(vmaf)}


def train(reference: Path, lr: Path, bundle: Path, a: argparse.Namespace, log: Path) -> None:
    """`stdo train` on the reference with `--lr` the LR encode (skipped where the bundle exists)."""
    train_bundle(reference, bundle, "--lr", lr, "--scale", a.scale, "--steps", a.steps, *shlex.split(a.train_args),
                 reuse=True, log=log)


def bench_codec(codec: str, reference: Path, out: Path, a: argparse.Namespace, seconds: float) -> list[dict]:
    """Every point of one codec: the HR ladder, and STDO and bicubic on each LR encode."""
    points = []
    for crf in a.hr_crfs or HR_CRFS[codec]:
        hr = run_script(out / f"hr_{codec}_crf{crf}.mkv", "hr", reference, codec_args(codec, crf), scale=a.scale)
        points.append({"codec": codec, "method": "hr", "crf": crf, "stream_bytes": hr.stat().st_size,
                       "bundle_bytes": 0, "train_seconds": None} | quality(hr, reference))
        print(f"{codec} HR crf {crf}: {points[-1]}", flush=True)
    for crf in a.lr_crfs or LR_CRFS[codec]:
        lr = run_script(out / f"lr_{codec}_crf{crf}.mkv", "lr", reference, codec_args(codec, crf), scale=a.scale)
        bundle = out / f"lr_{codec}_crf{crf}.stdo"
        started = time.time()
        train(reference, lr, bundle, a, bundle.with_suffix(".log"))
        trained = round(time.time() - started, 1)
        for method, extra in (("stdo", {"bundle": bundle}), ("bicubic", {})):
            up = run_script(out / f"{method}_{codec}_crf{crf}.mkv", method, lr, LOSSLESS, scale=a.scale, **extra)
            b = bundle.stat().st_size if method == "stdo" else 0
            points.append({"codec": codec, "method": method, "crf": crf, "stream_bytes": lr.stat().st_size,
                           "bundle_bytes": b, "train_seconds": trained if method == "stdo" else None}
                          | quality(up, reference))
            print(f"{codec} {method} on LR crf {crf}: {points[-1]}", flush=True)
    for p in points:
        p["bytes"] = p["stream_bytes"] + p["bundle_bytes"]
        p["kbps"] = round(p["bytes"] * 8 / seconds / 1000, 1)
        p["bundle_bytes_per_s"] = round(p["bundle_bytes"] / seconds)
    return points


def bd_rates(points: list[dict], codec: str) -> dict[str, dict[str, float | int | None]]:
    """BD-rates (%) of one codec's points: STDO and bicubic against the HR encode, bundle counted (the
    delivery's cost); then what the bundle costs and what the models give: STDO's LR stream alone against
    the HR encode (`stdo_stream_only`), STDO with its bundle against bicubic from the same streams
    (`stdo_vs_bicubic`), and the largest bundle reaching TARGET on PSNR RGB (`bundle_budget`, bytes)."""
    curve = {m: [p for p in points if p["codec"] == codec and p["method"] == m] for m in ("hr", "stdo", "bicubic")}

    def pts(method: str, f: str, counted: str = "bytes") -> list[tuple[float, float]]:
        return [(p[counted], p[f]) for p in curve[method]]

    rates = {m: {name: bd_rate(pts("hr", f), pts(m, f)) for name, f in METRICS.items()} for m in ("stdo", "bicubic")}
    rates["stdo_stream_only"] = {name: bd_rate(pts("hr", f), pts("stdo", f, "stream_bytes"))
                                 for name, f in METRICS.items()}
    rates["stdo_vs_bicubic"] = {name: bd_rate(pts("bicubic", f), pts("stdo", f)) for name, f in METRICS.items()}
    budget = bundle_budget(pts("hr", "psnr_rgb"), pts("stdo", "psnr_rgb", "stream_bytes"))
    rates["bundle_budget"] = {"bytes": None if budget is None else round(budget),
                              "bundle_bytes": max((p["bundle_bytes"] for p in curve["stdo"]), default=0)}
    return rates


def markdown(points: list[dict], bd: dict, title: str) -> str:
    def pct(v: float | None) -> str:
        return "n/a (curves do not overlap)" if v is None else f"{v:+.1f} %"

    lines = [f"# {title}", "", "| codec | method | CRF | stream bytes | bundle bytes | total kbps | PSNR RGB | "
             "PSNR Y | VMAF |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {p['codec']} | {p['method']} | {p['crf']} | {p['stream_bytes']} | {p['bundle_bytes']} | "
              f"{p['kbps']} | {p['psnr_rgb']:.2f} | {p['psnr_y']:.2f} | {p['vmaf']:.2f} |" for p in points]
    rows = {"stdo": "stdo (bundle counted) | the HR encode", "bicubic": "bicubic | the HR encode",
            "stdo_stream_only": "stdo, LR stream alone (bundle free) | the HR encode",
            "stdo_vs_bicubic": "stdo (bundle counted) | bicubic from the same LR streams"}
    lines += ["", "BD-rate (negative: fewer bytes at equal quality):", "",
              "| codec | method | against | PSNR RGB | PSNR Y | VMAF |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {codec} | {row} | {pct(by[m]['psnr'])} | {pct(by[m]['psnr_y'])} | {pct(by[m]['vmaf'])} |"
              for codec, by in bd.items() for m, row in rows.items()]
    lines += [""] + [f"{codec}: the largest bundle for {TARGET:+.0f} % on PSNR RGB against the HR encode is "
                     + ("out of reach (the LR stream alone misses it)" if by["bundle_budget"]["bytes"] is None
                        else f"{by['bundle_budget']['bytes']} bytes")
                     + f"; the largest bundle here is {by['bundle_budget']['bundle_bytes']} bytes."
                     for codec, by in bd.items()]
    return "\n".join(lines) + "\n"


def plot(points: list[dict], path: Path, title: str) -> None:
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    codecs = sorted({p["codec"] for p in points})
    fig, axes = plt.subplots(len(codecs), 2, figsize=(11, 4.2 * len(codecs)), squeeze=False)
    for row, codec in zip(axes, codecs):
        for ax, (field, label) in zip(row, (("psnr_rgb", "PSNR RGB (dB)"), ("vmaf", "VMAF"))):
            for method, style in (("hr", "o-"), ("stdo", "s-"), ("bicubic", "^--")):
                curve = sorted((p["kbps"], p[field]) for p in points if p["codec"] == codec and p["method"] == method)
                ax.plot(*zip(*curve), style, label={"hr": f"HR {codec}", "stdo": f"LR {codec} + STDO bundle",
                                                    "bicubic": f"LR {codec} + bicubic"}[method])
            ax.set_xscale("log")
            # plain kbit/s at 1-2-5 steps: the default labels every minor tick as a power of ten and they overlap
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("kbit/s (stream + bundle)")
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
    fig.suptitle(title)
    save_png(fig, path)


def parse_crfs(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated CRFs (e.g. 22,27,32,37), got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("clip", type=Path, help="the HR source video")
    p.add_argument("--scale", type=int, required=True, choices=(2, 3, 4))
    p.add_argument("--frames", default="", help="START:END frame range of the clip (default: all)")
    p.add_argument("--codec", choices=("x264", "x265", "both"), default="x264")
    p.add_argument("--steps", type=int, default=2000, help="`stdo train --steps` for every LR point (default 2000)")
    p.add_argument("--train-args", default="", help="more `stdo train` options, e.g. \"--chunks 1 --weights int8\"")
    p.add_argument("--hr-crfs", type=parse_crfs, help=f"HR ladder CRFs (default x264 {HR_CRFS['x264']})")
    p.add_argument("--lr-crfs", type=parse_crfs, help=f"LR ladder CRFs (default x264 {LR_CRFS['x264']})")
    p.add_argument("--test-ladder", action="store_true",
                   help="allow ladders of 2-3 CRFs (for the test suite; BD-rate needs 4 and is then n/a)")
    p.add_argument("--out", type=Path, default=Path("out") / "bench_delivery")
    p.add_argument("--json", type=Path, help="results JSON (default OUT/results.json)")
    a = p.parse_args(argv)
    least = 2 if a.test_ladder else 4
    for name in ("hr_crfs", "lr_crfs"):
        if getattr(a, name) is not None and len(getattr(a, name)) < least:
            p.error(f"--{name.replace('_', '-')} needs at least {least} CRFs for a BD-rate")
    if not a.clip.is_file():
        p.error(f"{a.clip} does not exist")
    a.out = a.out.resolve()  # vspipe runs the script from its own folder: the paths it gets must be absolute
    a.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    reference = run_script(a.out / "reference.mkv", "hr", a.clip.resolve(), LOSSLESS, scale=a.scale, frames=a.frames)
    ref = open_clip(reference)
    seconds = ref.num_frames * ref.fps_den / ref.fps_num
    codecs = ["x264", "x265"] if a.codec == "both" else [a.codec]
    points = [pt for codec in codecs for pt in bench_codec(codec, reference, a.out, a, seconds)]
    bd = {codec: bd_rates(points, codec) for codec in codecs}
    title = (f"{a.clip.name} frames {a.frames or 'all'} ({ref.num_frames} frames, {seconds:.2f} s), "
             f"{ref.width}x{ref.height} at x{a.scale}, stdo train --steps {a.steps} {a.train_args}".rstrip())
    with (a.out / "points.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(points[0]))
        w.writeheader()
        w.writerows(points)
    (a.out / "results.md").write_text(markdown(points, bd, title))
    plot(points, a.out / "rd.png", title)
    result = {"title": title, "bd_rate": bd[codecs[0]] if len(codecs) == 1 else bd, "bd_rate_by_codec": bd,
              "points": points, "seconds": round(time.time() - started, 1),
              "bundle_format": bundle_io.VERSION}
    (a.json or a.out / "results.json").write_text(json.dumps(result, indent=2))
    print((a.out / "results.md").read_text())
    print(f"wrote {a.out}/points.csv, results.md, rd.png and {a.json or a.out / 'results.json'} "
          f"in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
