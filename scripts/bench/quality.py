"""Quality benchmark: STDO chunk models vs one model of the same backbone at equal total steps, with
bicubic and Lanczos, on whole stitched frames through the real filter (the table in docs/results.md).

    .venv/bin/python -m scripts.bench.quality [--quick] [--clips NAME|PATH ...] [--scales 4 2]
        [--presets tiny small] [--budgets 600 2000] [--methods single chunks:4 joint ...]
        [--frames 0:30] [--holdout 10] [--jobs 1] [--out out/bench_quality]

Every cell (clip x scale x preset x budget x method) is one `stdo train` run with `--steps BUDGET`,
the total optimiser steps of the run whatever the method (every step trains on `--batch` patches, so
methods compare at equal compute), followed by `stdo eval --json`; bicubic and Lanczos come from the same eval. A method
is `single`, `chunks:K` or `joint`, optionally followed by `stdo train` options as `:key=value`
pairs separated by commas, e.g. `chunks:4:pretrain=0.25,learning-rate=5e-4`, or `equal-fps`: one model
(`--mode single`) of the architecture whose playback time through `Upscale` matches that of the cell's routed
bundle (the first chunks method's, played on the clip's first LR frames): the preset with more blocks, the
count found from playback times measured in the same run (`scripts/bench/speed.py`'s workers, interleaved,
medians), trained with the same steps; its cell runs after the chunks cells. Results are appended to
results.csv as cells finish and a cell whose result exists is not run again, so an interrupted run
continues where it stopped; results.md is rewritten after each cell. One PNG report per clip, scale
and preset (`stdo eval --report`) shows the first chunks method at the largest budget; where a clip has
cells at two or more budgets, budgets.png plots each method's PSNR against the steps (training and
held-out frames).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from scripts import clips
from scripts.bench.lib import append_csv, interleaved, medians, pyplot, save_png, stdo, table, train_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.models import preset

QUICK = {"clips": [clips.DEFAULT], "scales": [4], "presets": ["tiny"], "budgets": [100, 200],
         "methods": ["single", "chunks:4", "joint"], "frames": "0:6", "holdout": 3}
# The default set: four real clips, two budgets. Estimated from measured rates (tiny trains about 5 steps/s on 2
# idle cores; a cell's scoring, router and eval take about 40 s): 9000 steps + 24 cells, about 45 minutes.
# docs/results.md adds stdo train's default budget, 2000 steps, which takes hours on such a machine.
DEFAULT_CLIPS = ["bigbuckbunny.mp4", "bikes.mp4", "cockatoo.mp4", "city.mpg"]
FIELDS = ["clip", "scale", "preset", "budget", "method", "models", "train_rgb", "train_y", "heldout_rgb",
          "heldout_y", "bicubic_train_rgb", "bicubic_train_y", "bicubic_heldout_rgb", "bicubic_heldout_y",
          "lanczos_train_rgb", "lanczos_train_y", "lanczos_heldout_rgb", "lanczos_heldout_y", "bytes",
          "train_seconds", "total_steps", "arch", "fps", "routed_fps", "preset_fps"]
EQUAL = "equal-fps"
FPS_FRAMES, FPS_RUNS = 8, 3   # frames timed per playback measurement, interleaved runs (medians)
PSNRS = ("train_rgb", "train_y", "heldout_rgb", "heldout_y")


@dataclass(frozen=True)
class Cell:
    clip: str
    scale: int
    preset: str
    budget: int
    method: str

    @property
    def name(self) -> str:
        safe = self.method.replace(":", "-").replace("=", "").replace(",", "_")
        return f"{Path(self.clip).stem}_x{self.scale}_{self.preset}_{self.budget}_{safe}"

    def train_args(self) -> list[str]:
        """The `stdo train` options of the method: --mode, --chunks and any key=value extras."""
        if self.method == EQUAL:
            return ["--mode", "single"]
        mode, _, rest = self.method.partition(":")
        chunks, _, extras = rest.partition(":")
        if "=" in chunks:  # joint:focus=0.5 - no chunk count, only extras
            chunks, extras = "", rest
        args = ["--mode", mode] + (["--chunks", chunks] if chunks else [])
        for pair in filter(None, extras.split(",")):
            key, _, value = pair.partition("=")
            args += [f"--{key}", value]
        return args


def playback_fps(bundles: dict[str, tuple[Path, str]], scale: int, source: Path, frames: str) -> dict[str, float]:
    """Frames per second through `Upscale` of each name's (bundle, route) on the clip's first LR frames of `frames`,
    each measurement in its own process (speed.py's worker), interleaved, medians of FPS_RUNS."""
    from scripts.bench.speed import run_worker

    start = int(frames.split(":")[0] or 0)
    spec = {"method": "stdo", "scale": scale, "frames": FPS_FRAMES, "source": str(source),
            "select": f"{start}:{start + 6}"}
    return medians(interleaved({name: lambda b=b, r=r: run_worker({**spec, "bundle": str(b), "args": {"route": r}})["fps"]
                                for name, (b, r) in bundles.items()}, FPS_RUNS))


def equal_fps(cell: Cell, source: Path, a: argparse.Namespace) -> dict[str, object]:
    """The EQUAL cell's architecture: the preset with the number of blocks whose one model plays as fast as the
    cell's routed bundle (that of the first chunks method at the same clip, scale, preset and budget). Playback
    time grows about linearly with the blocks: two architectures timed beside the routed bundle give the guess,
    then it and its neighbours are timed again and the nearest in time per frame is taken (the three move on, up
    to twice, while the nearest is at their end). Each candidate is a bundle trained for one step (its speed does
    not depend on its weights). Returns the row's fields arch, fps, routed_fps and preset_fps (one model of the
    preset itself)."""
    chunks = next(m for m in a.methods if m.startswith("chunks"))
    routed = (a.out / "bundles" / f"{Cell(cell.clip, cell.scale, cell.preset, cell.budget, chunks).name}.stdo", "auto")
    base = preset(cell.preset, cell.scale)

    def arch(blocks: int) -> str:
        return f"{blocks}x{base.channels}x{base.expansion}"

    def candidate(blocks: int) -> tuple[Path, str]:
        bundle = a.out / "bundles" / "fps" / f"{Path(cell.clip).stem}_x{cell.scale}_{arch(blocks)}.stdo"
        train_bundle(source, bundle, "--scale", cell.scale, "--mode", "single", "--preset", arch(blocks), "--steps", 1,
                     "--frames", a.frames, "--device", "cpu", reuse=True, log=bundle.with_suffix(".log"))
        return bundle, "chunk:0"

    lo, hi = base.blocks, 3 * base.blocks
    fps = playback_fps({"routed": routed, lo: candidate(lo), hi: candidate(hi)}, cell.scale, source, a.frames)
    per_block = (1 / fps[hi] - 1 / fps[lo]) / (hi - lo)
    guess = max(lo, round(lo + (1 / fps["routed"] - 1 / fps[lo]) / per_block))
    for _ in range(3):             # the guess and its neighbours, moved on while the nearest is at an end
        near = sorted({max(lo, guess - 1), guess, guess + 1})
        fps = playback_fps({"routed": routed, **{b: candidate(b) for b in {lo, *near}}}, cell.scale, source, a.frames)
        best = min(near, key=lambda b: abs(1 / fps[b] - 1 / fps["routed"]))
        slower = 1 / fps["routed"] > 1 / fps[best]      # the routed bundle takes longer than the nearest
        if not (best == near[-1] and slower or best == near[0] and not slower and best > lo):
            break
        guess = best + 1 if slower else best - 1
    print(f"{cell.name}: routed {fps['routed']:.2f} fps; one model " +
          ", ".join(f"{arch(b)} {fps[b]:.2f}" for b in sorted(set(near) | {lo})) + f" fps: {arch(best)}", flush=True)
    return {"arch": arch(best), "fps": round(fps[best], 3), "routed_fps": round(fps["routed"], 3),
            "preset_fps": round(fps[lo], 3)}


def run_cell(cell: Cell, source: Path, a: argparse.Namespace, report: Path | None) -> dict[str, object]:
    """Train and evaluate one cell (their progress in the cell's .log files); returns its CSV row."""
    bundle = a.out / "bundles" / f"{cell.name}.stdo"
    Path(str(bundle) + ".ckpt").unlink(missing_ok=True)  # a killed earlier attempt; start it over
    threads = max(1, (os.cpu_count() or 1) // a.jobs) if a.jobs > 1 else 0
    timing = equal_fps(cell, source, a) if cell.method == EQUAL else {}
    arch = ["--preset", timing["arch"]] if timing else []
    seconds = train_bundle(source, bundle, "--scale", cell.scale, "--preset", cell.preset, "--steps", cell.budget,
                           "--frames", a.frames, "--holdout", a.holdout, "--device", "cpu", "--checkpoint-every",
                           100000, "--force", *cell.train_args(), *arch, threads=threads,
                           log=bundle.with_suffix(".log")).seconds
    result = json.loads(stdo("eval", bundle, source, "--json", "--device", "cpu",
                             *(["--report", report] if report else []), threads=threads,
                             log=bundle.with_suffix(".eval.log")).stdout)
    r = result["results"]
    row: dict[str, object] = {"clip": source.name, "scale": cell.scale, "preset": cell.preset,
                              "budget": cell.budget, "method": cell.method, "models": result["chunks"]}
    for method, prefix in (("stdo", ""), ("bicubic", "bicubic_"), ("lanczos", "lanczos_")):
        for split in ("train", "heldout"):
            for metric in ("rgb", "y"):
                value = r[method].get(split, {}).get(f"psnr_{metric}")
                row[f"{prefix}{split}_{metric}"] = "" if value is None else round(value, 3)
    row |= {"bytes": result["bundle_bytes"], "train_seconds": round(seconds, 1),
            "total_steps": bundle_io.load(bundle).training.total_steps} | timing
    return row


def fmt(value: object, base: object = None) -> str:
    """A PSNR cell: the value, and its difference from `base` when given."""
    if value in ("", None):
        return "-"
    text = f"{float(value):.2f}"
    return text if base in ("", None) else f"{text} ({float(value) - float(base):+.2f})"


def by_clip(rows: list[dict[str, str]]) -> dict[tuple[str, str, str], list[dict[str, str]]]:
    """The rows grouped by (clip, scale, preset), in order of first appearance."""
    groups: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for row in rows:
        groups.setdefault((row["clip"], str(row["scale"]), row["preset"]), []).append(row)
    return groups


def markdown(rows: list[dict[str, str]]) -> str:
    """One table per clip/scale/preset: bicubic and Lanczos once, then each budget's methods with their
    difference from `single` at the same budget (train and held-out, RGB / Y); where an EQUAL cell ran, a line
    per budget: STDO against that one model of equal playback time."""
    out = []
    for (clip, scale, preset), group in by_clip(rows).items():
        first = group[0]
        lines = [["-", name, "-", *(fmt(first[f"{name}_{k}"]) for k in PSNRS), "-", "-"]
                 for name in ("bicubic", "lanczos")]
        for row in sorted(group, key=lambda r: int(r["budget"])):
            single = next((s for s in group if s["budget"] == row["budget"] and s["method"] == "single"), None)
            lines.append([row["total_steps"], row["method"], row.get("arch") or row["models"],
                          *(fmt(row[k], None if single is None or single is row else single[k]) for k in PSNRS),
                          row["bytes"], row["train_seconds"]])
        out += [f"### {clip}, x{scale}, preset {preset}", "",
                "PSNR in dB, RGB / Y, whole frames; in brackets: difference from `single` at the same budget.", "",
                *table(["budget (steps)", "method", "models", "train RGB", "train Y", "held-out RGB", "held-out Y",
                        "bytes", "train s"], lines), "", *equal_lines(group)]
    return "\n".join(out)


def equal_lines(group: list[dict[str, str]]) -> list[str]:
    """For each EQUAL row: the first chunks method at its budget against it, and the playback times."""
    lines = []
    for equal in (r for r in group if r["method"] == EQUAL):
        chunks = next((r for r in group if r["budget"] == equal["budget"] and r["method"].startswith("chunks")), None)
        if chunks:
            lines += [f"- {equal['budget']} steps: {chunks['method']} against one model of equal playback time "
                      f"({equal['arch']}: {float(equal['fps']):.2f} fps against the routed bundle's "
                      f"{float(equal['routed_fps']):.2f}; one model of the preset {float(equal['preset_fps']):.2f}): "
                      f"train RGB {float(chunks['train_rgb']) - float(equal['train_rgb']):+.2f} dB, held-out RGB "
                      f"{fmt_diff(chunks['heldout_rgb'], equal['heldout_rgb'])}", ""]
    return lines


def fmt_diff(a: str, b: str) -> str:
    """a - b in dB, or "-" where either is missing."""
    return "-" if "" in (a, b) else f"{float(a) - float(b):+.2f} dB"


def plot_budgets(rows: list[dict[str, str]], path: Path) -> bool:
    """PSNR RGB against total steps, one line per method, one panel per clip/scale/preset with two or more
    budgets (solid: training frames, dashed: held-out); False (nothing written) when no group has two."""
    groups = {f"{clip}, x{scale}, preset {preset}": group for (clip, scale, preset), group in by_clip(rows).items()
              if len({r["budget"] for r in group}) > 1}
    if not groups:
        return False
    plt = pyplot()

    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.5), squeeze=False)
    for ax, (name, group) in zip(axes[0], groups.items()):
        for i, method in enumerate(dict.fromkeys(r["method"] for r in group)):
            cells = sorted((r for r in group if r["method"] == method), key=lambda r: int(r["total_steps"]))
            steps = [int(r["total_steps"]) for r in cells]
            for split, style in (("train_rgb", "o-"), ("heldout_rgb", "s--")):
                ax.plot(steps, [float(r[split]) for r in cells], style, color=f"C{i}",
                        label=f"{method}, {'training' if split == 'train_rgb' else 'held-out'} frames")
        ax.set_xlabel("total training steps")
        ax.set_ylabel("PSNR RGB (dB), whole frames through the filter")
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    save_png(fig, path)
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help=f"a small set in about 5 minutes on 2 CPU cores: {QUICK} (explicit options still win)")
    p.add_argument("--clips", nargs="+",
                   help=f"clip names (scripts/clips.py) or video paths (default: {' '.join(DEFAULT_CLIPS)})")
    p.add_argument("--scales", nargs="+", type=int, help="default: 4")
    p.add_argument("--presets", nargs="+", help="default: tiny")
    p.add_argument("--budgets", nargs="+", type=int, help="total training steps per cell (default: 150 600)")
    p.add_argument("--methods", nargs="+", help=f"single, chunks:K, joint[:key=value,...], {EQUAL} "
                                                "(default: single chunks:4 joint)")
    p.add_argument("--frames", help="START:END frames of each clip trained and evaluated (default 0:30)")
    p.add_argument("--holdout", type=int, help="every Nth frame is held out (default 10; --quick: 3)")
    p.add_argument("--jobs", type=int, default=1,
                   help="cells run at once, the CPU threads split among them (default 1)")
    p.add_argument("--out", type=Path, default=Path("out/bench_quality"), help="output folder")
    a = p.parse_args()
    defaults = {"clips": DEFAULT_CLIPS, "scales": [4], "presets": ["tiny"], "budgets": [150, 600],
                "methods": ["single", "chunks:4", "joint"], "frames": "0:20", "holdout": 10}
    for key, value in (QUICK if a.quick else defaults).items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    for folder in (a.out / "bundles", a.out / "reports"):   # stdo refuses an -o or --report in a missing folder
        folder.mkdir(parents=True, exist_ok=True)
    csv_path = a.out / "results.csv"
    rows = list(csv.DictReader(csv_path.open())) if csv_path.is_file() else []
    done = {(r["clip"], int(r["scale"]), r["preset"], int(r["budget"]), r["method"]) for r in rows}
    report_method = next((m for m in a.methods if m.startswith("chunks")), a.methods[-1])
    todo = []
    for clip in a.clips:
        source = clips.source(clip)
        for scale, preset, budget, method in itertools.product(a.scales, a.presets, a.budgets, a.methods):
            if (source.name, scale, preset, budget, method) not in done:
                cell = Cell(str(source), scale, preset, budget, method)
                report = (a.out / "reports" / f"{cell.name}.png"
                          if method == report_method and budget == max(a.budgets) else None)
                todo.append((cell, source, report))
    print(f"{len(todo)} cells to run ({len(done)} already done), {a.jobs} at a time", flush=True)
    for phase in ([t for t in todo if t[0].method != EQUAL], [t for t in todo if t[0].method == EQUAL]):
        with ThreadPoolExecutor(a.jobs) as pool:    # an EQUAL cell times the routed bundle of a chunks cell
            running = {pool.submit(run_cell, cell, source, a, report): cell for cell, source, report in phase}
            for future in as_completed(running):
                row = future.result()
                print(f"{running[future].name}: train {fmt(row['train_rgb'])} dB, held-out "
                      f"{fmt(row['heldout_rgb'])} dB, {row['train_seconds']} s", flush=True)
                append_csv(csv_path, FIELDS, row)
                rows.append({k: str(v) for k, v in row.items()})
                (a.out / "results.md").write_text(markdown(rows))
    curve = plot_budgets(rows, a.out / "budgets.png")
    print(f"\n{markdown(rows)}\nwrote {csv_path}, {a.out / 'results.md'}{' and budgets.png' if curve else ''}")


if __name__ == "__main__":
    main()
