"""Remaster benchmark: `stdo train HR --lr LR -o B --frames 0:60` on synthetic remaster pairs with a known
mapping, then `Upscale(LR, B)` on the LR frames after those 60 against bicubic given the true mapping (the
table in docs/remaster.md).

    .venv/bin/python -m scripts.bench.remaster [--clips cockatoo.mp4 city.mpg] [--pairs dvd exact-1.5x]
        [--options '--steps N ...'] [--out out/bench_remaster]

Per clip, two pairs (scripts/pairs.py): "dvd", a 640x480 HR and a 352x240 LR of it (ratios 1.80 x
1.95, 6/2/4/8 HR px cropped at left/right/top/bottom, shifted +0.37/-0.41 px, BT.601, MPEG-2 at 1.5 Mb/s
GOP 15, starting 2 frames later), and "exact-1.5x", a 768x576 HR and its lossless 512x384 bicubic LR. The
HR is a .vpy, the DVD's LR the real MPEG-2 file. PSNR is RGB, the mean over frames, inside the area both
clips show less an 8-pixel margin; both sides are fed RGBS (the LR read with its own matrix), so no YUV
round trip favours either. Also reported: the alignment error of the bundle's mapping against the truth,
and bicubic with each plane fitted to the HR by a gain and an offset, which credits bicubic with any levels
correction the models learnt (the DVD-to-Blu-ray look), so the gain over it is the detail alone.
"""
from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path

import numpy as np
import vapoursynth as vs

from scripts import clips
from scripts import pairs as P
from scripts.bench.lib import table, train_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.mapping import Mapping
from vs_stdo.core.video import KERNELS

core = vs.core
TRAIN = 60      # HR frames trained on (--frames 0:60)
FRAMES = 80     # HR frames of each pair: the LR frames showing HR frames 60-79 are the test frames
MARGIN = 8      # HR pixels left out inside the overlap
HR_SCRIPT = """import vapoursynth as vs
from scripts.pairs import hr_clip
hr_clip({path!r}, {width}, {height}, 0, {frames}).set_output()
"""
LR_SCRIPT = """import vapoursynth as vs
from scripts.pairs import exact_15
exact_15({path!r}, 0, {frames}).lr.set_output()
"""


def rgb(clip: vs.VideoNode) -> vs.VideoNode:
    """RGBS, a YUV clip read with its own matrix tag."""
    return clip if clip.format.id == vs.RGBS else core.resize.Bicubic(
        clip, format=vs.RGBS, matrix_in=int(clip.get_frame(0).props["_Matrix"]))


def bicubic_through(lr: vs.VideoNode, m: Mapping) -> vs.VideoNode:
    """The LR on the HR grid by bicubic (Catmull-Rom) given the mapping: HR pixel j's centre at LR
    (j + 0.5 - offset) / ratio."""
    name, params = KERNELS["bicubic"]
    return getattr(core.resize, name)(lr, m.hr_width, m.hr_height, src_left=-m.offset_x / m.ratio_x,
                                      src_top=-m.offset_y / m.ratio_y, src_width=m.hr_width / m.ratio_x,
                                      src_height=m.hr_height / m.ratio_y, **params)


def psnr(a: vs.VideoNode, b: vs.VideoNode, n_a: int, n_b: int, box: tuple[int, int, int, int],
         levels: bool = False) -> float:
    """PSNR (RGB, [0, 1]) of frame n_a of `a` against frame n_b of `b` inside the box (x0, y0, x1, y1); with
    `levels`, each plane of `a` first fitted to `b` with a gain and an offset (least squares)."""
    x0, y0, x1, y1 = box
    fa, fb = a.get_frame(n_a), b.get_frame(n_b)
    d = []
    for p in range(3):
        x, y = np.clip(np.asarray(fa[p]), 0, 1)[y0:y1, x0:x1], np.asarray(fb[p])[y0:y1, x0:x1]
        if levels:
            gain, offset = np.polyfit(x.ravel(), y.ravel(), 1)
            x = gain * x + offset
        d.append(x - y)
    return float(10 * np.log10(1 / np.mean(np.square(d))))


def run_pair(pair: P.Pair, hr_path: Path, lr_path: Path, out: Path, options: list[str], reuse: bool) -> dict:
    """Train on the pair's first TRAIN HR frames through the real `stdo train` (with `reuse`, a bundle already
    there is kept), measure on the rest."""
    bundle = out / f"{pair.name}.stdo"
    run = train_bundle(hr_path, bundle, "--lr", lr_path, "--frames", f"0:{TRAIN}", "--force",
                       *options, log=out / f"{pair.name}.log", threads=2, reuse=reuse)
    b = bundle_io.load(bundle)
    lr = rgb(pair.lr)
    up = core.stdo.Upscale(lr, str(bundle))
    m = pair.mapping
    if (up.width, up.height) != (m.hr_width, m.hr_height):
        raise SystemExit(f"{pair.name}: Upscale gave {up.width}x{up.height}, the HR is {m.hr_width}x{m.hr_height}")
    bic, hr = bicubic_through(lr, m), rgb(pair.hr)
    x0, y0, x1, y1 = m.overlap()
    box = (x0 + MARGIN, y0 + MARGIN, x1 - MARGIN, y1 - MARGIN)
    tests = [(l, h) for l, h in enumerate(pair.shows) if h >= TRAIN]
    stdo_db = np.mean([psnr(up, hr, l, h, box) for l, h in tests])
    bic_db = np.mean([psnr(bic, hr, l, h, box) for l, h in tests])
    fitted_db = np.mean([psnr(bic, hr, l, h, box, levels=True) for l, h in tests])
    return {"pair": pair.name, "frames tested": len(tests), "stdo dB": round(float(stdo_db), 2),
            "bicubic (true mapping) dB": round(float(bic_db), 2), "gain dB": round(float(stdo_db - bic_db), 2),
            "bicubic, levels fitted dB": round(float(fitted_db), 2),
            "alignment error px": round(b.mapping.distance(m), 3) if b.mapping else "none (whole)",
            "steps": b.training.get("total_steps"), "mode": b.training.get("mode"),
            "train s": round(run.seconds) if run else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", nargs="+", default=["cockatoo.mp4", "city.mpg"])
    ap.add_argument("--options", default="", help="more `stdo train` options, e.g. '--steps 400 --mode single' "
                                                  "(default: none, stdo train's defaults)")
    ap.add_argument("--pairs", nargs="+", default=["dvd", "exact-1.5x"], choices=["dvd", "exact-1.5x"])
    ap.add_argument("--out", type=Path, default=Path("out/bench_remaster"))
    ap.add_argument("--reuse", action="store_true", help="keep bundles an earlier run wrote to --out (measure only)")
    a = ap.parse_args()
    rows = []
    for name in a.clips:
        path = Path(name) if Path(name).is_file() else clips.fetch(name)
        out = a.out / Path(name).stem
        out.mkdir(parents=True, exist_ok=True)
        cases = []
        if "dvd" in a.pairs:
            (out / "dvd_hr.vpy").write_text(HR_SCRIPT.format(path=str(path), width=640, height=480, frames=FRAMES))
            cases.append((P.dvd_like(path, out, frames=FRAMES, name="dvd"), out / "dvd_hr.vpy", out / "dvd.mpg"))
        if "exact-1.5x" in a.pairs:
            (out / "exact_hr.vpy").write_text(HR_SCRIPT.format(path=str(path), width=768, height=576, frames=FRAMES))
            (out / "exact_lr.vpy").write_text(LR_SCRIPT.format(path=str(path), frames=FRAMES))
            cases.append((P.exact_15(path, frames=FRAMES), out / "exact_hr.vpy", out / "exact_lr.vpy"))
        for pair, hr_path, lr_path in cases:
            row = {"clip": Path(name).name} | run_pair(pair, hr_path, lr_path, out, a.options.split(), a.reuse)
            print(json.dumps(row), flush=True)
            rows.append(row)
    lines = [f"{datetime.date.today()}, `python -m scripts.bench.remaster --clips {' '.join(a.clips)} "
             f"--pairs {' '.join(a.pairs)}" + (f" --options '{a.options}'`" if a.options else "`"), ""] + table(list(rows[0]), [list(r.values()) for r in rows])
    (a.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
