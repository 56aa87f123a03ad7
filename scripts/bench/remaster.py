"""Remaster benchmark: bundles trained on DVD-like pairs of a show, measured on scenes outside their training range.

    .venv/bin/python -m scripts.bench.remaster [--shows film fillets bbb sintel] [--options '--steps N ...']
        [--tag NAME] [--reuse] [--out out/bench_remaster]

A user trains on the episodes they hold on both DVD and Blu-ray and plays the bundle on the DVD-only ones, so
every frame that matters is one the bundle never saw. Each show below is a real multi-scene source (or segments
of one spliced, like episodes) made into a DVD-like pair (scripts/pairs.py: a 640x480 HR, a 352x240 MPEG-2 LR at
1.5 Mb/s missing 6/2/4/8 HR px at the edges, shifted +0.37/-0.41 px, two frames late). `stdo train HR --lr LR
--frames TRAIN` trains on the training range; `Upscale` then plays the LR of every scene listed, which all lie
outside that range, and a sample of the training range. Per scene: PSNR RGB (mean over frames, inside the area
both clips show less 8 px; blank frames, one flat level there, left out) of the bundle, of bicubic through the
true mapping (what a remaster bundle must beat), and of the generic model shipped for the scale put through the
same mapping (the stand-in for "a generic DVD model"). Everything is played as a user plays it: the LR in its own format (YUV 4:2:0, 8 bit)
through the real filter, read back to RGB.

The shows, their training ranges and scenes were fixed before the first run. "film" and "mix" are development
shows (levers are tuned on them; "mix" was added after "film" proved too uniform to tell levers apart); "fillets",
"bbb" and "sintel" are set aside and reported whatever they show.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import vapoursynth as vs

from scripts import clips
from scripts import pairs as P
from scripts.bench.lib import pyplot, save_png, table, train_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.mapping import Mapping
from vs_stdo.core.video import KERNELS
from vs_stdo.train import generic

core = vs.core
MARGIN = 8  # HR pixels left out inside the area both clips show


@dataclass(frozen=True)
class Show:
    """Sources made into one DVD-like pair: `segments` of clips spliced ((clip, first, last) source frames, like
    episodes), black `bars` cut off first; `train` is the --frames range trained on, `scenes` the HR frame ranges
    of the pair (first, last, inclusive) that are played and measured, all outside it."""
    segments: tuple[tuple[str, int, int], ...]
    train: tuple[int, int]
    scenes: dict[str, tuple[int, int]]
    role: str
    bars: tuple[int, int, int, int] = (0, 0, 0, 0)
    note: str = ""

    @property
    def frames(self) -> int:
        return sum(last - first + 1 for _, first, last in self.segments)


SHOWS = {
    "film": Show((("film.mkv", 0, 1927),), (0, 1000), {
        "interior, people": (1085, 1195), "riders in a forest": (1245, 1315), "two horsemen": (1365, 1475),
        "ships, battle": (1485, 1675), "ships at sea": (1725, 1927)}, "development",
        note="old colour film, plains, huts, a wagon train, a congress hall in the training range"),
    "mix": Show((("cockatoo.mp4", 0, 199), ("jellyfish1080.mp4", 0, 299), ("cartoon3d.mp4", 0, 199),
                 ("diver.mov", 0, 149), ("surveillance.avi", 0, 149), ("screencast.webm", 0, 199),
                 ("ball576.mp4", 0, 199), ("talkinghead.mp4", 0, 199), ("phone1080.mp4", 0, 40)), (0, 1000), {
        "screencast": (1000, 1199), "ball toss": (1200, 1399), "talking head": (1400, 1599),
        "phone video": (1600, 1640)}, "development",
        note="unrelated clips spliced: trained on five (a bird, jellyfish, a CG tour, a diver, a street camera), "
             "played on four others; harsher than the scenes of one show"),
    "fillets": Show((("fillets-intro.mpg", 0, 2197),), (0, 1244), {
        "house interior": (1254, 1454), "alien lab": (1455, 1571), "space again": (1588, 1781),
        "ocean, seagull": (1782, 1954), "house close-ups": (1955, 2099)}, "held out",
        note="CG game intro; trained on space and undersea scenes"),
    "bbb": Show(tuple(("bbb-film.mp4", a, b) for a, b in ((1346, 1845), (5579, 6078), (7325, 7524), (8945, 9144),
                                                         (11053, 11252))), (0, 1000), {
        "dark forest": (1000, 1199), "blue-sky trap": (1200, 1399), "finale": (1400, 1599)}, "held out",
        note="two episodes spliced (meadow, revenge) trained on; three later ones played"),
    "sintel": Show((("sintel-trailer.mp4", 0, 1252),), (302, 851), {
        "snow": (33, 218), "desert": (851, 975)}, "held out", bars=(0, 0, 88, 86),
        note="letterbox bars cut off; trained on the warm scenes (550 frames: the trailer has no more)"),
}


def bicubic_through(lr: vs.VideoNode, m: Mapping) -> vs.VideoNode:
    """The LR on the HR grid by bicubic (Catmull-Rom) given the mapping."""
    name, params = KERNELS["bicubic"]
    return getattr(core.resize, name)(lr, **m.resize_args(1), **params)


def rgb(clip: vs.VideoNode) -> vs.VideoNode:
    """RGBS, read with the clip's own matrix tag."""
    return core.resize.Bicubic(clip, format=vs.RGBS, matrix_in=int(clip.get_frame(0).props["_Matrix"]))


def psnr(a: vs.VideoFrame, b: vs.VideoFrame, box: tuple[int, int, int, int]) -> float:
    """PSNR RGB of two RGBS frames inside the box (x0, y0, x1, y1), `a` clamped to [0, 1]."""
    x0, y0, x1, y1 = box
    d = [np.clip(np.asarray(a[p]), 0, 1)[y0:y1, x0:x1] - np.asarray(b[p])[y0:y1, x0:x1] for p in range(3)]
    return float(10 * np.log10(1 / np.mean(np.square(d))))


def generic_through(lr: vs.VideoNode, scale: int, m: Mapping) -> vs.VideoNode:
    """The generic model shipped for `scale` put through the mapping as a remaster bundle's output is: its whole-scale
    output resized onto the HR grid by Catmull-Rom (the generic DVD model's stand-in)."""
    name, params = KERNELS["bicubic"]
    whole = core.stdo.Upscale(lr, str(generic.FOLDER / generic.file_name(generic.PRESET, scale)))
    return getattr(core.resize, name)(whole, **m.resize_args(scale), **params)


def blank(frame: vs.VideoFrame, box: tuple[int, int, int, int]) -> bool:
    """True for an RGBS frame that is one flat level inside the box (black between scenes): every method
    reproduces it exactly, and its infinite PSNR says nothing."""
    x0, y0, x1, y1 = box
    return all(np.ptp(np.asarray(frame[p])[y0:y1, x0:x1]) < 2 / 255 for p in range(3))


def measure(pair: P.Pair, played: dict[str, vs.VideoNode], ranges: dict[str, list[int]],
            box: tuple[int, int, int, int]) -> dict[str, dict[str, float]]:
    """{range: {method: mean PSNR}} of each played clip (HR-sized, frame for frame with the LR) against the HR
    partner of each LR frame whose HR frame is in the range and not blank."""
    hr = rgb(pair.hr)
    outputs = {name: rgb(clip) for name, clip in played.items()}
    out = {}
    for name, hr_frames in ranges.items():
        wanted = set(hr_frames)
        lr_frames = [l for l, h in enumerate(pair.shows) if h in wanted and not blank(hr.get_frame(h), box)]
        out[name] = {m: float(np.mean([psnr(clip.get_frame(l), hr.get_frame(pair.shows[l]), box)
                                       for l in lr_frames])) for m, clip in outputs.items()} | {
            "frames": len(lr_frames)}
    return out


def run_show(name: str, show: Show, out: Path, options: list[str], tag: str, reuse: bool,
             step: int, threads: int) -> list[dict]:
    """Make the show's pair (kept in `out`), train on its training range, play every scene."""
    out.mkdir(parents=True, exist_ok=True)
    segments = [(str(clips.fetch(clip)), first, last) for clip, first, last in show.segments]
    hr_vpy = out / "hr.vpy"
    hr_vpy.write_text("from scripts.pairs import hr_segments\n"
                      f"hr_segments({segments!r}, 640, 480, {show.bars!r}).set_output()\n")
    hr = P.hr_segments(segments, 640, 480, show.bars)
    lr_file = out / "dvd.mpg"
    pair = P.make_pair(hr, 352, 240, (6, 2, 4, 8), (0.37, -0.41), start=2, name="dvd")
    pair = P.Pair(hr, core.bs.VideoSource(str(lr_file)), pair.mapping, pair.shows, "dvd") if lr_file.is_file() \
        else P.mpeg2(pair, out)
    bundle = out / tag / "b.stdo"
    if not reuse:  # a run stopped earlier left its checkpoint: this one starts over
        bundle.with_name(bundle.name + ".ckpt").unlink(missing_ok=True)
    run = train_bundle(hr_vpy, bundle, "--lr", lr_file, "--frames", f"{show.train[0]}:{show.train[1]}", "--force",
                       *options, log=out / tag / "train.log", threads=threads, reuse=reuse)
    b = bundle_io.load(bundle)
    m = pair.mapping
    played = {"stdo": core.stdo.Upscale(pair.lr, str(bundle)), "bicubic": bicubic_through(pair.lr, m),
              "generic": generic_through(pair.lr, b.scale, m)}
    x0, y0, x1, y1 = m.overlap()
    box = (x0 + MARGIN, y0 + MARGIN, x1 - MARGIN, y1 - MARGIN)
    ranges = {scene: list(range(first, last + 1, step)) for scene, (first, last) in show.scenes.items()}
    ranges["training range"] = list(range(max(show.train[0], 2), show.train[1], 10 * step))
    results = measure(pair, played, ranges, box)
    seconds = round(run.seconds) if run else None
    rows = []
    for scene, r in results.items():
        first, last = (show.train[0], show.train[1] - 1) if scene == "training range" else show.scenes[scene]
        rows.append({"show": name, "role": show.role, "tag": tag, "scene": scene, "frames": f"{first}-{last}",
                     "played": r["frames"], "stdo dB": round(r["stdo"], 2), "bicubic dB": round(r["bicubic"], 2),
                     "generic dB": round(r["generic"], 2), "stdo - bicubic": round(r["stdo"] - r["bicubic"], 2),
                     "generic - bicubic": round(r["generic"] - r["bicubic"], 2),
                     "mapping error px": round(b.mapping.distance(m), 3), "train s": seconds})
    picture(pair, played, show, out / tag / "crops.png", box)
    return rows


def picture(pair: P.Pair, played: dict[str, vs.VideoNode], show: Show, path: Path,
            box: tuple[int, int, int, int]) -> None:
    """Side-by-side crops (HR, stdo, bicubic, generic) of the middle frame of each scene."""
    plt = pyplot()
    methods = ["hr", *played]
    fig, axes = plt.subplots(len(show.scenes), len(methods), figsize=(3.2 * len(methods), 2.6 * len(show.scenes)),
                             squeeze=False)
    hr = rgb(pair.hr)
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    for row, (scene, (first, last)) in zip(axes, show.scenes.items()):
        mid = (first + last) // 2
        l = min(range(len(pair.shows)), key=lambda i: abs(pair.shows[i] - mid))
        frames = {"hr": hr.get_frame(pair.shows[l])} | {m: rgb(c).get_frame(l) for m, c in played.items()}
        for ax, m in zip(row, methods):
            img = np.stack([np.clip(np.asarray(frames[m][p]), 0, 1) for p in range(3)], -1)
            ax.imshow(img[cy - 80:cy + 80, cx - 120:cx + 120])
            ax.set_title(f"{scene}: {m}" if m == "hr" else m, fontsize=8)
            ax.axis("off")
    save_png(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shows", nargs="+", default=list(SHOWS), choices=list(SHOWS))
    ap.add_argument("--options", default="", help="more `stdo train` options (default: none, its defaults)")
    ap.add_argument("--tag", default="defaults", help="a name for this configuration (its bundles' folder)")
    ap.add_argument("--step", type=int, default=2, help="play every STEP-th frame of each scene (default 2)")
    ap.add_argument("--out", type=Path, default=Path("out/bench_remaster"))
    ap.add_argument("--reuse", action="store_true", help="keep bundles an earlier run wrote (measure only)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the trainings (default 1: on a busy "
                                                            "machine two threads each wait for the other)")
    a = ap.parse_args()
    rows = []
    for name in a.shows:
        for row in run_show(name, SHOWS[name], a.out / name, shlex.split(a.options), a.tag, a.reuse, a.step,
                            a.threads):
            print(json.dumps(row), flush=True)
            rows.append(row)
    summary = []
    for name in a.shows:
        unseen = [r for r in rows if r["show"] == name and r["scene"] != "training range"]
        trained = next(r for r in rows if r["show"] == name and r["scene"] == "training range")
        gains = [r["stdo - bicubic"] for r in unseen]
        summary.append([name, SHOWS[name].role, a.tag, f"{np.mean(gains):+.2f}", f"{min(gains):+.2f}",
                        f"{np.mean([r['generic - bicubic'] for r in unseen]):+.2f}",
                        f"{trained['stdo - bicubic']:+.2f}", trained["train s"]])
    command = f"python -m scripts.bench.remaster --shows {' '.join(a.shows)} --tag {a.tag}" + (
        f" --options '{a.options}'" if a.options else "")
    lines = [f"{datetime.date.today()}, `{command}`", "",
             *table(["show", "role", "tag", "unseen scenes: mean gain dB", "worst scene dB", "generic mean gain dB",
                     "training range gain dB", "train s"], summary), "",
             *table(list(rows[0]), [list(r.values()) for r in rows])]
    (a.out / f"results-{a.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
