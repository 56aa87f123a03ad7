"""What the benchmarks share: running the real `stdo` command (a bundle made by `stdo train`), timing by
interleaved runs and medians, Markdown and CSV tables, and matplotlib for their PNGs.

Benchmarks run from the repository root as modules: `.venv/bin/python -m scripts.bench.NAME`.
"""
from __future__ import annotations

import contextlib
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence, TypeVar

import numpy as np
import vapoursynth as vs

from vs_stdo.core.video import frame_array

T = TypeVar("T")
STDO = (sys.executable, "-m", "vs_stdo")
TORCHRUN = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node")


@dataclass
class Run:
    """A finished `stdo` process: what it printed on stdout, wall seconds, its own peak RSS in MiB."""
    stdout: str
    seconds: float
    peak_rss_mib: float


def stdo(*args: object, threads: int = 0, processes: int = 1, log: Path | None = None) -> Run:
    """The real `stdo ARGS` in its own process (`python -m vs_stdo`, under torchrun when `processes` > 1) on
    `threads` CPU threads (0: torch's default). Its progress (stderr) shows on the terminal, or goes to `log`
    when given; a failure ends the benchmark (with the end of the log)."""
    cmd = [*(STDO if processes == 1 else (*TORCHRUN, str(processes), "-m", "vs_stdo")), *map(str, args)]
    env = os.environ | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    with tempfile.TemporaryFile("w+") as out, log.open("w+") if log else contextlib.nullcontext() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if code := os.waitstatus_to_exitcode(status):
            tail = ""
            if err:
                err.seek(0)
                tail = f"; the end of {log}:\n{err.read()[-2000:]}"
            raise SystemExit(f"stdo {' '.join(map(str, args))} failed ({code}){tail}")
        out.seek(0)
        return Run(out.read(), seconds, usage.ru_maxrss / 1024)


def train_bundle(source: object, out: Path, *options: object, reuse: bool = False, **how) -> Run | None:
    """A bundle made the way a user makes one: `stdo train SOURCE -o OUT OPTIONS` (see `stdo` for `how`).
    With `reuse`, an existing OUT is kept and nothing runs (None)."""
    if reuse and out.is_file():
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return stdo("train", source, "-o", out, *options, **how)


def seconds(fn: Callable[[], object], clock: Callable[[], float] = time.perf_counter) -> float:
    """How long one call of `fn` takes on `clock` (time.thread_time: CPU seconds of this thread)."""
    start = clock()
    fn()
    return clock() - start


def interleaved(cases: Mapping[str, Callable[[], T]], runs: int, warmup: int = 0) -> dict[str, list[T]]:
    """Each case's measurements over `runs` rounds that run every case once (after `warmup` rounds whose
    measurements are dropped), so load from other processes hits all cases alike."""
    samples: dict[str, list[T]] = {name: [] for name in cases}
    for round_ in range(warmup + runs):
        for name, measure in cases.items():
            got = measure()
            if round_ >= warmup:
                samples[name].append(got)
    return samples


def medians(samples: Mapping[str, Sequence[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A Markdown table's lines; cells are written as given (format numbers before)."""
    return ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(map(str, row)) + " |" for row in rows]


def append_csv(path: Path, fields: Sequence[str], row: Mapping[str, object]) -> None:
    """Add one row to a CSV file, writing its header first when the file is new."""
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (benchmarks write PNGs and never open a window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path) -> None:
    """Write a benchmark's figure as a PNG (tight layout, 110 dpi) and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


def from_memory(clip: vs.VideoNode, length: int) -> vs.VideoNode:
    """`length` frames cycling through the frames of an RGBS clip, decoded once and then served from
    memory, so that a benchmark times the filter and not the decoder."""
    arrays = [frame_array(clip.get_frame(i)) for i in range(clip.num_frames)]
    blank = vs.core.std.BlankClip(clip, length=length)

    def serve(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), arrays[n % len(arrays)][p])
        return out

    return blank.std.ModifyFrame(blank, serve)
