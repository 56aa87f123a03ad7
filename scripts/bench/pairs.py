"""Remaster-pair alignment on synthetic pairs with a known mapping, made from real clips.

    .venv/bin/python -m scripts.bench.pairs [--clips bigbuckbunny.mp4 cockatoo.mp4 city.mpg]

Per clip, a DVD-like pair (scripts/pairs.py: a 640x480 HR, a 352x240 LR missing 6/2/4/8 HR px per side,
shifted +0.37/-0.41 px, MPEG-2 at 1.5 Mb/s GOP 15, starting 2 frames later), a letterboxed one (a 16:9
640x360 HR, its picture in a 352x240 4:3 DVD frame between black bars of 30 rows, 25 %) and a pillarboxed
one (a 640x360 Blu-ray whose 480x360 4:3 picture lies between black bars of 80 columns, a full-frame 352x240
DVD of it), the same crops, shift, encode and start; plus one exact lossless 1.5x pair (512x384 of a
768x576 HR, what a descale gives). `align` runs on each; reported: the bars found (left/right/top/bottom
of LR; HR), the alignment error (largest displacement of the LR picture's edges, HR px) and the estimate's
own precision, the frame
offset found and true, pairs kept / left out / true, pairs that are wrong, and the PSNR (RGB, HR frames
from 60 on, overlap less an 8-px margin) of a bicubic upscale of the LR through the estimated mapping and
through the true one; then the error of the coarse search alone (on the pairs the refinement used), which
the refinement starts from. The last column is the time `align` took.

With `--train`, each letterboxed and pillarboxed pair is also trained as a user trains it (`stdo train HR --lr
LR --frames 0:60` at the defaults, the HR a .vpy that makes it again) and played through
`Upscale` in the LR's own format: reported, PSNR RGB on the HR frames from 60 on (those after the trained
ones) of the bundle and of bicubic through the true mapping, inside the true overlap less 8 px; the bundle's
output size; the training's seconds (one thread). Bundles and logs go to --out.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import vapoursynth as vs

from scripts import clips
from scripts import pairs as P
from scripts.bench.lib import table, train_bundle
from vs_stdo.core import colour
from vs_stdo.core.mapping import Mapping
from vs_stdo.train.align import Alignment, align
from vs_stdo.train.align.reading import read_frame
from vs_stdo.train.align.registration import coarse_mapping

core = vs.core
MARGIN = 8
FIRST_EVAL = 60


def bicubic_on_hr(lr: vs.VideoNode, m: Mapping) -> vs.VideoNode:
    """The LR upscaled bicubic onto the HR grid through `m` (RGBS): the output frame [0, hr) is the LR
    window [-offset / ratio, (hr - offset) / ratio)."""
    matrix = colour.colour_of(colour.Format.of(lr.format), lr.width, lr.height, colour.first_props(lr)).matrix
    return core.resize.Bicubic(lr, m.hr_width, m.hr_height, format=vs.RGBS, matrix_in=matrix,
                               src_left=-m.offset_x / m.ratio_x, src_top=-m.offset_y / m.ratio_y,
                               src_width=m.hr_width / m.ratio_x, src_height=m.hr_height / m.ratio_y)


def rgb(clip: vs.VideoNode) -> vs.VideoNode:
    """RGBS, read with the clip's colour tags (or its size's default)."""
    return core.resize.Bicubic(clip, format=vs.RGBS, matrix_in=colour.colour_of(
        colour.Format.of(clip.format), clip.width, clip.height, colour.first_props(clip)).matrix)


def psnr(pair: P.Pair, m: Mapping) -> float:
    """Mean per-frame PSNR (RGB) of the LR's bicubic upscale through `m` against the HR (`played`)."""
    return played(pair, bicubic_on_hr(pair.lr, m))


def played(pair: P.Pair, up: vs.VideoNode) -> float:
    """Mean per-frame PSNR (RGB) of `up` (HR-sized, frame for frame with the LR) against the HR, on HR frames
    from FIRST_EVAL on, inside the true overlap less MARGIN px."""
    x0, y0, x1, y1 = pair.mapping.overlap()
    x0, y0, x1, y1 = x0 + MARGIN, y0 + MARGIN, x1 - MARGIN, y1 - MARGIN
    up = rgb(up)
    hr = core.resize.Bicubic(pair.hr, format=vs.RGBS, matrix_in=1)
    values = []
    for l, h in enumerate(pair.shows):
        if h < FIRST_EVAL:
            continue
        a, b = up.get_frame(l), hr.get_frame(h)
        err = np.mean([np.mean((np.clip(np.asarray(a[p]), 0, 1) - np.clip(np.asarray(b[p]), 0, 1))[y0:y1, x0:x1] ** 2)
                       for p in range(3)])
        values.append(10 * math.log10(1 / err))
    return float(np.mean(values))


def coarse_error(pair: P.Pair, result: Alignment) -> float:
    """The coarse search's error alone (HR px), on the full-size pictures of the pairs the refinement used."""
    m = result.mapping
    hrs = [read_frame(pair.hr, h, m.hr_bars) for h, _ in result.refined_on]
    lrs = [read_frame(pair.lr, l, m.lr_bars) for _, l in result.refined_on]
    return coarse_mapping(hrs, lrs).framed(m.lr_bars, m.hr_bars).distance(pair.mapping)


def bars(m: Mapping) -> str:
    """The bars of both sides, LR; HR, left/right/top/bottom."""
    return "; ".join("/".join(map(str, b)) for b in (m.lr_bars, m.hr_bars))


HR_SCRIPTS = {  # each barred pair's HR as a .vpy that makes it again (what `stdo train` reads)
    "letterboxed": "from scripts.pairs import hr_clip\nhr_clip({path!r}, 640, 360, {first}, 90).set_output()\n",
    "pillarboxed": "from scripts.pairs import hr_segments\n"
                   "hr_segments([({path!r}, {first}, {first} + 89)], 640, 360, pad=(80, 80, 0, 0)).set_output()\n"}


def trained(pair: P.Pair, hr_script: str, lr_file: Path, out: Path) -> list[object]:
    """[bundle dB, bicubic through the true mapping dB, gain, output size, train s] of a bundle trained at the
    defaults on the pair's first FIRST_EVAL HR frames (the HR made by the .vpy text `hr_script`, the LR being the
    DVD-like encode `lr_file`), played on the frames after them."""
    out.mkdir(parents=True, exist_ok=True)
    hr_file = out / "hr.vpy"
    hr_file.write_text(hr_script)
    bundle = out / "b.stdo"
    run = train_bundle(hr_file, bundle, "--lr", lr_file, "--frames", f"0:{FIRST_EVAL}", "--force",
                       log=out / "train.log", threads=1)
    up = core.stdo.Upscale(pair.lr, str(bundle))
    stdo_db, bicubic_db = played(pair, up), psnr(pair, pair.mapping)
    return [f"{stdo_db:.2f}", f"{bicubic_db:.2f}", f"{stdo_db - bicubic_db:+.2f}", f"{up.width}x{up.height}",
            round(run.seconds)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", default=["bigbuckbunny.mp4", "cockatoo.mp4", "city.mpg"])
    ap.add_argument("--first", type=int, default=20, help="first frame of each clip used")
    ap.add_argument("--train", action="store_true", help="also train and play the letterboxed and pillarboxed "
                                                          "pairs (minutes each)")
    ap.add_argument("--out", type=Path, default=Path("out/bench_pairs"), help="bundles and logs of --train")
    args = ap.parse_args()
    rows, played_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(f"{label} {name}", lambda make=make, name=f"{label}-{Path(name).stem}", clip=name:
                  make(clips.fetch(clip), Path(tmp), args.first, name=name))
                 for name in args.clips
                 for label, make in (("DVD-like", P.dvd_like), ("letterboxed", P.letterboxed),
                                     ("pillarboxed", P.pillarboxed))]
        cases.append((f"exact 1.5x {args.clips[0]}", lambda: P.exact_15(clips.fetch(args.clips[0]), args.first)))
        for label, make in cases:
            pair = make()
            start = time.perf_counter()
            result = align(pair.hr, pair.lr)
            took = time.perf_counter() - start
            wrong = sum(pair.shows[l] != h for h, l in result.pairs)
            m = result.mapping
            rows.append([label, bars(m), bars(pair.mapping), f"{m.ratio_x:.4f} x {m.ratio_y:.4f}",
                         f"{m.distance(pair.mapping):.3f}",
                         f"{result.precision:.3f}" if result.precision is not None else "-",
                         f"{result.frame_offset():+d} / {pair.frame_offset():+d}",
                         f"{len(result.pairs)} / {len(result.dropped)} / {len(set(pair.shows))}", wrong,
                         f"{psnr(pair, m):.2f}", f"{psnr(pair, pair.mapping):.2f}",
                         f"{coarse_error(pair, result):.2f}", f"{took:.1f}"])
            print(" | ".join(map(str, rows[-1])), flush=True)
            if args.train and label.startswith(("letterboxed", "pillarboxed")):
                script = HR_SCRIPTS[label.split()[0]].format(path=str(clips.fetch(label.split()[1])), first=args.first)
                played_rows.append([label, *trained(pair, script, Path(tmp, f"{pair.name}.mpg"),
                                                         args.out / label.replace(" ", "-"))])
                print(" | ".join(map(str, played_rows[-1])), flush=True)
    print()
    print("\n".join(table(["pair", "bars found (LR; HR)", "bars true", "ratios found", "error on the picture (HR px)",
                           "precision (HR px)", "frame offset found / true",
                           "pairs kept / left out / true", "wrong pairs", "bicubic PSNR, mapping found (dB)",
                           "bicubic PSNR, true mapping (dB)", "coarse search error (HR px)", "align (s)"], rows)))
    if played_rows:
        print()
        print("\n".join(table(["pair", f"Upscale PSNR, frames {FIRST_EVAL}+ (dB)", "bicubic, true mapping (dB)",
                               "gain (dB)", "output", "train s"], played_rows)))


if __name__ == "__main__":
    main()
