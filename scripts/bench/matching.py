"""How well frames are found by content after a real lossy re-encode (tunes fingerprint.TOLERANCE).

    .venv/bin/python -m scripts.bench.matching [--clip bigbuckbunny.mp4] [--scale 4] [--crf 23 28]
                                               [--others cockatoo.mp4 bikes.mp4]

The LR of a clip (bicubic, as the trainer makes it) is encoded with x264 through `vspipe | ffmpeg`,
tagged BT.709 (and once untagged, so it is read as BT.601), read back, and every decoded frame is
matched against the training fingerprints. Reports the distance to the true frame, the nearest other
frame, how often the true frame wins, and how many patch labels the matched frame shares with the
true one (labels made the trainer's way, k=4). Other clips give the distance of unrelated content.
Last, the cost per frame: routing (fingerprint + search) against inference with tiny-preset models,
and the search alone among 100 000 training frames, of distinct content and all alike.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import vapoursynth as vs

from scripts import clips
from scripts.bench.lib import interleaved, seconds
from scripts.encode import encode
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core import colour
from vs_stdo.core.fingerprint import TOLERANCE, FrameMatcher, fingerprint
from vs_stdo.core.grid import Grid
from vs_stdo.core.models import WDSR, preset
from vs_stdo.core.video import arrays, hr_lr_pair, open_clip
from vs_stdo.filter.engine import Engine
from vs_stdo.train.chunks import split
from vs_stdo.train.scoring import bicubic_psnr

TAG_709 = ["-vf", "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"]
VPY = ("import vapoursynth as vs\nfrom vs_stdo.core.video import hr_lr_pair, open_clip\n"
       "hr, lr = hr_lr_pair(open_clip({clip!r}), {scale})\n"
       "lr.resize.Bicubic(format=vs.YUV420P8, matrix_s='709').set_output()\n")


def frames(clip: vs.VideoNode) -> list[torch.Tensor]:
    """The frames of an RGBS clip, clamped to [0, 1]."""
    return [torch.from_numpy(a).clamp_(0, 1) for a in arrays(clip)]


def per_call_ms(fn: Callable[[], object], repeat: int = 20) -> float:
    """Mean milliseconds per call after one warm-up call."""
    return statistics.fmean(interleaved({"call": lambda: seconds(fn)}, repeat, warmup=1)["call"]) * 1000


def costs(lrs: list[torch.Tensor], labels: np.ndarray, prints: np.ndarray, grid: Grid, scale: int) -> str:
    """Routing vs inference per frame on this machine (CPU, tiny models, k=4)."""
    models = [WDSR(preset("tiny", scale)) for _ in range(4)]
    b = bundle_io.Bundle(scale, grid.patch_width, grid.patch_height, [m.arch for m in models],
                         [m.state_dict() for m in models], labels.reshape(len(lrs), grid.rows, grid.cols),
                         np.zeros(labels.shape, np.float32).reshape(len(lrs), grid.rows, grid.cols), prints,
                         [0.0] * 3, {"width": grid.width, "height": grid.height, "frames": len(lrs)})
    engine = Engine(b, grid.width, grid.height, route="labels", device="cpu")
    frame = lrs[len(lrs) // 2]
    route_ms = per_call_ms(lambda: engine.routing(0, frame))
    infer_ms = per_call_ms(lambda: engine.upscale(frame, engine.routing(0, frame)), repeat=3)
    query = fingerprint(frame)
    rng = np.random.default_rng(0)
    distinct = FrameMatcher(np.vstack([prints, rng.random((100_000 - len(prints), prints.shape[1]), np.float32)]))
    alike = FrameMatcher(np.tile(query, (100_000, 1)) + rng.normal(0, 0.005, (100_000, len(query))).astype(np.float32))
    return (f"per frame: routing {route_ms:.2f} ms ({len(lrs)} training frames); search among 100 000 training "
            f"frames {per_call_ms(lambda: distinct.match(query)):.1f} ms (distinct content), "
            f"{per_call_ms(lambda: alike.match(query)):.1f} ms (all alike: the worst case); "
            f"inference with tiny models {infer_ms:.0f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=clips.DEFAULT)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--crf", type=int, nargs="+", default=[23, 28])
    p.add_argument("--others", nargs="*", default=["cockatoo.mp4", "bikes.mp4"])
    a = p.parse_args()
    path = clips.fetch(a.clip)
    hr, lr = hr_lr_pair(open_clip(path), a.scale)
    lrs, hrs = frames(lr), frames(hr)
    grid = Grid(lr.width, lr.height, 48, 54)
    labels, _ = split(np.stack([bicubic_psnr(x, y, grid, a.scale).numpy() for x, y in zip(lrs, hrs)]), 4)
    labels = labels.reshape(len(lrs), -1)
    prints = np.stack([fingerprint(f) for f in lrs])
    matcher = FrameMatcher(prints)
    print(f"{a.clip}: {len(lrs)} LR frames of {lr.width}x{lr.height}, tolerance {TOLERANCE}")
    with tempfile.TemporaryDirectory() as tmp:
        vpy = Path(tmp, "lr.vpy")
        vpy.write_text(VPY.format(clip=str(path), scale=a.scale))
        for crf, tags in [(c, TAG_709) for c in a.crf] + [(a.crf[0], [])]:
            out = Path(tmp, f"lr{crf}.mp4")
            encode(vpy, out, ["-c:v", "libx264", "-crf", str(crf), *tags])
            got = np.stack([fingerprint(f) for f in frames(colour.clip_to_rgbs(open_clip(out)))])
            dist = np.abs(got[:, None] - prints[None]).mean(-1)
            true = np.diag(dist).copy()
            np.fill_diagonal(dist, np.inf)
            found = [matcher.match(g)[0] for g in got]
            hits = [i for i, f in enumerate(found) if f is not None]
            agree = np.mean([np.mean(labels[found[i]] == labels[i]) for i in hits]) if hits else float("nan")
            print(f"x264 crf {crf} {'BT.709 tagged' if tags else 'untagged'} ({out.stat().st_size} bytes): "
                  f"true frame distance median {np.median(true):.4f} max {true.max():.4f}; nearest other frame "
                  f"min {dist.min():.4f} median {np.median(dist.min(1)):.4f}; matched {len(hits)}/{len(got)}, "
                  f"true frame {np.mean([found[i] == i for i in range(len(got))]):.1%}, labels agree {agree:.1%}")
    for name in a.others:
        _, other = hr_lr_pair(open_clip(clips.fetch(name)), a.scale)
        d = np.array([matcher.match(fingerprint(f))[1] for f in frames(other)])
        print(f"unrelated clip {name}: distance to nearest training frame at least {d.min():.4f} "
              f"(median {np.median(d):.4f})")
    print(costs(lrs, labels, prints, grid, a.scale))


if __name__ == "__main__":
    main()
