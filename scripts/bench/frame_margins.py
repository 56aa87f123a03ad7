"""Where one bundle beats another, frame by frame: both through the real filter (`stdo eval --json`), the
PSNR RGB of every frame under each and their difference, as a table and a bar chart. Shows whether a mean
margin is spread over the frames or made by a few (one outlier frame can carry a mean over 30).

    .venv/bin/python -m scripts.bench.frame_margins CLIP BASE.stdo OTHER.stdo [--frames 0:30] [--png FILE]

BASE is the reference (e.g. bench_quality's `single` bundle), OTHER the one measured against it (its
`chunks:4` bundle); both are evaluated on the same frames of CLIP (default: the frames they trained on).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from scripts.bench.lib import pyplot, save_png, stdo

SPLITS = {"train": "training frames", "heldout": "held-out frames", "unseen": "frames the bundle never saw"}


def per_frame(bundle: Path, clip: Path, frames: str | None) -> list[dict]:
    """`stdo eval --json`'s per-frame results of a bundle on CLIP."""
    args = ["eval", bundle, clip, "--json", "--device", "cpu", *(["--frames", frames] if frames else [])]
    return json.loads(stdo(*args).stdout)["per_frame"]


def summary(margins: list[float]) -> str:
    """Mean, median and range of the margins, and the mean without the largest one."""
    rest = sorted(margins)[:-1]
    return (f"mean {statistics.mean(margins):+.2f}, median {statistics.median(margins):+.2f}, "
            f"range {min(margins):+.2f} to {max(margins):+.2f}"
            + (f", mean without the largest {statistics.mean(rest):+.2f}" if rest else ""))


def plot(rows: list[tuple[int, str, float]], path: Path, title: str) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(rows)), 4.0))
    for split, colour in zip(SPLITS, ("C1", "C0", "C2")):
        picked = [(n, m) for n, s, m in rows if s == split]
        if picked:
            ax.bar(*zip(*picked), color=colour, label=SPLITS[split])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("frame")
    ax.set_ylabel("PSNR RGB difference (dB)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend()
    save_png(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clip", type=Path)
    p.add_argument("base", type=Path, help="the reference bundle")
    p.add_argument("other", type=Path, help="the bundle measured against it")
    p.add_argument("--frames", help="START:END frames of CLIP (default: the bundles' training frames)")
    p.add_argument("--png", type=Path, help="write the bar chart here")
    a = p.parse_args()
    base, other = (per_frame(b, a.clip, a.frames) for b in (a.base, a.other))
    if [(f["frame"], f["split"]) for f in base] != [(f["frame"], f["split"]) for f in other]:
        raise SystemExit("the two bundles were evaluated on different frames, or hold out different ones; give "
                         "--frames, and compare bundles trained on the same --frames and --holdout")
    rows = [(b["frame"], b["split"], o["stdo"]["psnr_rgb"] - b["stdo"]["psnr_rgb"]) for b, o in zip(base, other)]
    print(f"PSNR RGB (dB) of base {a.base.name} and other {a.other.name}")
    print(f"{'frame':>5}  {'split':<8} {'base':>6} {'other':>6}  difference")
    for (n, split, margin), b, o in zip(rows, base, other):
        print(f"{n:>5}  {split:<8} {b['stdo']['psnr_rgb']:>6.2f} {o['stdo']['psnr_rgb']:>6.2f}  {margin:+.2f}")
    for split, name in SPLITS.items():
        margins = [m for _, s, m in rows if s == split]
        if margins:
            print(f"{name} ({len(margins)}): {summary(margins)}")
    if a.png:
        plot(rows, a.png, f"{a.clip.name}, per frame:\n{a.other.stem} minus {a.base.stem}")
        print(f"wrote {a.png}")


if __name__ == "__main__":
    main()
