"""Blind routing: the bundle's router against its labels on the training frames, and on unseen content
(a later segment of the clip, a different clip, a preview at another size) blind STDO against chunk 0
(what bundles without a router fall back to), one model trained on all patches, and bicubic. Every
output comes from the real filter; PSNR (RGB / BT.709 Y) of whole frames, mean over frames.

    OMP_NUM_THREADS=1 .venv/bin/python -m scripts.bench.router [--clip bigbuckbunny.mp4] [--frames 0:80]
        [--later 80:132] [--other cockatoo.mp4] [--other-frames 0:60] [--preview 960x540] [--every 2]
        [--chunks 4] [--steps 400] [--out out/bench_router]

Bundles missing from --out are trained first (`stdo train`, tiny preset, x4): STDO with --chunks and
a single model, both with --steps in total, on --frames of --clip. Before the filter runs, every
chunk model scores every training patch once, which shows how cheap routers do at the patch level:
one feature with thresholds at the labels' quantiles, the MLP fitted to copy the labels, and the
bundle's router (fitted to each patch's best model); "est." is the mean frame PSNR that a routing
gives from those patch scores. The label-copying router also goes through the filter, as a copy of
the bundle (`labelfit.stdo`).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
import vapoursynth as vs

from scripts import clips
from scripts.bench.lib import table, train_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.metrics import psnr, psnr_y
from vs_stdo.core.router_state import FEATURES, RouterFit, RouterState
from vs_stdo.core.video import hr_lr_pair, open_clip, resize, select_frames
from vs_stdo.filter.blind import BlindRouter, frame_features
from vs_stdo.tools.evaluate import tensor
from vs_stdo.train import router_fit
from vs_stdo.train.data import load_frames
from vs_stdo.train.scoring import models_psnr
from vs_stdo.train.target import target_for

THRESHOLD_FEATURES = {"lap": -1, "self2": 1, "grad": -1}   # sign: +1 where a higher value means an easier patch


def patch_study(b: bundle_io.Bundle, clip: Path,
                frames: str) -> tuple[dict[str, float], list[tuple[str, dict]], RouterState]:
    """Each feature's correlation with the scorer's patch PSNR (what the labels rank), routers judged on
    the training patches by every chunk model's score there, and the label-copying router."""
    hr, lr = hr_lr_pair(select_frames(open_clip(clip), frames), b.scale)
    data = load_frames(hr, lr)
    cpu = torch.device("cpu")
    scores = models_psnr(b, data, target_for(b.mapping, b.scale, b.grid, 0), cpu)
    mse = router_fit.patch_mse(scores)
    labels = torch.from_numpy(b.labels.reshape(-1).astype(np.int64))
    feats = frame_features(data.lr, b.grid, b.scale)
    corr = {name: float(np.corrcoef(feats[:, i].numpy(), b.psnr.reshape(-1))[0, 1])
            for i, name in enumerate(FEATURES)}
    rows = []
    for name, sign in THRESHOLD_FEATURES.items():
        f = feats[:, FEATURES.index(name)] * sign
        cuts = torch.quantile(f, torch.tensor([i / b.chunks for i in range(1, b.chunks)]))
        rows.append((f"{name} with thresholds at the labels' quantiles", router_fit.report(mse, torch.bucketize(f, cuts),
                                                                                      labels, b.grid.count)))
    labelfit = router_fit.fit_mlp(feats, labels, torch.ones(len(labels)), b.chunks, b.scale)
    copied = BlindRouter(labelfit, b.scale).logits(feats).argmax(1)
    fit = router_fit.report(mse, copied, labels, b.grid.count)
    labelfit.info = RouterFit(target="labels", steps=labelfit.info.steps, **fit)
    rows.append(("MLP fitted to copy the labels", fit))
    blind = BlindRouter(b.router, b.scale)
    chosen = torch.cat([blind(b.grid.cut(f, 0)) for f in data.lr])
    rows.append(("MLP fitted to the best model (the bundle's router)",
                 router_fit.report(mse, chosen, labels, b.grid.count)))
    return corr, rows, labelfit


def measure(hr: vs.VideoNode, outputs: dict[str, vs.VideoNode]) -> dict[str, tuple[float, float]]:
    """Mean per-frame (PSNR RGB, PSNR Y) of each output against the HR."""
    sums = {name: np.zeros(2) for name in outputs}
    for frames in zip(hr.frames(close=True), *(c.frames(close=True) for c in outputs.values())):
        truth, *outs = (tensor(f) for f in frames)
        for name, out in zip(outputs, outs):
            sums[name] += (psnr(out, truth), psnr_y(out, truth))
    return {name: tuple(v / hr.num_frames) for name, v in sums.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", default=clips.DEFAULT)
    p.add_argument("--frames", default="0:80", help="training frames")
    p.add_argument("--later", default="80:132", help="a later segment of the same clip (not trained on)")
    p.add_argument("--other", default="cockatoo.mp4", help="a different clip")
    p.add_argument("--other-frames", default="0:60")
    p.add_argument("--preview", default="960x540", help="HR size of the later segment shown as a preview")
    p.add_argument("--every", type=int, default=2, help="measure every Nth frame of each set")
    p.add_argument("--chunks", type=int, default=4)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--out", default="out/bench_router", help="folder of the bundles (trained there if missing)")
    a = p.parse_args()
    threads = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else ""
    print(f"$ {threads}.venv/bin/python {shlex.join(sys.argv)}\n")
    clip, other = clips.source(a.clip), clips.source(a.other)
    out = Path(a.out)
    stdo, single, labelfit = out / "stdo.stdo", out / "single.stdo", out / "labelfit.stdo"
    for bundle, mode in ((stdo, ["--chunks", a.chunks]), (single, ["--mode", "single"])):
        train_bundle(clip, bundle, "--frames", a.frames, "--scale", 4, "--steps", a.steps, "--device", "cpu", *mode,
                     reuse=True)
    b = bundle_io.load(stdo)
    if b.router is None:
        raise SystemExit(f"{stdo} has no blind router (one model); delete it to retrain")

    router_bytes = sum(t.nbytes for t in b.router.state().values())
    corr, rows, b.router = patch_study(b, clip, a.frames)
    bundle_io.save(b, labelfit)
    print(f"{clip.name} frames {a.frames}, x4, tiny preset, {a.steps} steps; STDO k={a.chunks}: "
          f"{stdo.stat().st_size} bytes (router: {router_bytes} bytes of tensors), single model: "
          f"{single.stat().st_size} bytes\n")
    print("Correlation of each feature with the scorer's patch PSNR: "
          + ", ".join(f"{name} {r:+.2f}" for name, r in corr.items()) + "\n")
    print("Routers on the training patches (every chunk model scored every patch; est. = mean frame PSNR):\n")
    ref = rows[-1][1]["psnr"]
    print("\n".join(table(["router", "accuracy vs labels", "accuracy vs best model", "est. PSNR (dB)"], [
        *([name, f"{r['accuracy_vs_labels']:.1%}", f"{r['accuracy_vs_best']:.1%}", f"{r['psnr']['router']:.3f}"]
          for name, r in rows),
        *([name, "", "", f"{ref[key]:.3f}"] for name, key in (
            ("labels (non-blind STDO)", "labels"), ("every patch to chunk 0", "chunk0"),
            ("best model per patch (oracle)", "best")))])))
    for name, r in rows[-2:]:
        print(f"\nconfusion of '{name}' (rows: label, columns: routed chunk): {r['confusion']}")

    sets = {f"training frames {a.frames}": hr_lr_pair(select_frames(open_clip(clip), a.frames), 4),
            f"later segment {a.later}": hr_lr_pair(select_frames(open_clip(clip), a.later), 4),
            f"{other.name} {a.other_frames}": hr_lr_pair(select_frames(open_clip(other), a.other_frames), 4)}
    w, h = (int(v) for v in a.preview.split("x"))
    sets[f"later segment at {a.preview}"] = hr_lr_pair(resize(select_frames(open_clip(clip), a.later), w, h,
                                                              "bicubic"), 4)
    methods = ["labels", "blind", "blind, label-fit router", "chunk:0", "single model", "bicubic"]
    print(f"\nThrough the filter, PSNR RGB / Y (dB), mean over one frame in {a.every}:\n")
    versus = ["labels", "chunk:0", "single model"]
    lines = []
    for name, (hr, lr) in sets.items():
        hr, lr = hr[::a.every], lr[::a.every]
        outputs = {"blind": vs.core.stdo.Upscale(lr, str(stdo), route="blind"),
                   "blind, label-fit router": vs.core.stdo.Upscale(lr, str(labelfit), route="blind"),
                   "chunk:0": vs.core.stdo.Upscale(lr, str(stdo), route="chunk:0"),
                   "single model": vs.core.stdo.Upscale(lr, str(single)),
                   "bicubic": resize(lr, hr.width, hr.height, "bicubic")}
        if name.startswith("training"):
            outputs["labels"] = vs.core.stdo.Upscale(lr, str(stdo), route="labels")
        r = measure(hr, outputs)
        cells = [f"{r[m][0]:.2f} / {r[m][1]:.2f}" if m in r else "–" for m in methods]
        gains = [f"{r['blind'][0] - r[m][0]:+.3f}" if m in r else "–" for m in versus]
        lines.append([f"{name} ({hr.num_frames})", f"{lr.width}x{lr.height}", *cells, *gains])
    print("\n".join(table(["frames", "LR", *methods, *(f"blind - {m}" for m in versus)], lines)))


if __name__ == "__main__":
    main()
