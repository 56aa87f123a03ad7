"""The `stdo` command: train bundles, evaluate them, inspect them."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import vapoursynth as vs

from . import bundle as bundle_io
from .chunking import SPLITS
from .models import PRESETS, SCALES
from .train import LABELS, MODES, Settings
from .video import KERNELS


def parse_patch(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"patch size must look like WIDTHxHEIGHT (e.g. 48x54), got {text!r}")


def parse_fractions(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions (e.g. 1,0.5,0), got {text!r}")


def cmd_train(a: argparse.Namespace) -> None:
    from .dataset import load_frames
    from .train import check_data, train
    from .video import open_pair

    settings = Settings(scale=a.scale, chunks=a.chunks, mode=a.mode, preset=a.preset, steps=a.steps or Settings.steps,
                        epochs=a.epochs or 0, batch=a.batch, lr=a.learning_rate, seed=a.seed, patch_width=a.patch[0],
                        patch_height=a.patch[1], pretrain=a.pretrain, split=a.split, labels=a.labels,
                        joint_schedule=a.joint_schedule or [], score=a.score, score_steps=a.score_steps,
                        holdout=a.holdout, device=a.device, checkpoint_every=a.checkpoint_every,
                        easy_preset=a.easy_preset or "", easy_chunks=a.easy_chunks)
    settings.check()
    src, hr, lr = open_pair(a.input, a.lr, a.frames, a.scale, a.kernel)
    check_data(settings, lr.width, lr.height, lr.num_frames)
    frames = load_frames(hr, lr)
    clip = {"width": lr.width, "height": lr.height, "frames": lr.num_frames, "fps_num": src.fps.numerator,
            "fps_den": src.fps.denominator, "source": Path(a.input).name, "frames_selected": a.frames or ":",
            "lr": Path(a.lr).name if a.lr else f"{a.kernel} downscale", "kernel": None if a.lr else a.kernel}
    b = train(frames, settings, Path(a.output), clip, resume=a.resume)
    if a.weights != b.weight_storage:  # quantised from the trained float32 weights, not from a stored copy
        b.weight_storage = a.weights
        bundle_io.save(b, a.output)
    print(f"wrote {a.output}: {b.chunks} model(s), x{b.scale}, {len(b.labels)} frames "
          f"({len(b.training['heldout'])} held out), {Path(a.output).stat().st_size} bytes")


def cmd_eval(a: argparse.Namespace) -> None:
    from .evaluate import bundle_frames, evaluate, table
    from .video import open_pair

    b = bundle_io.load(a.bundle)
    frames = a.frames or b.clip.get("frames_selected")
    kernel = a.kernel or b.clip.get("kernel") or "bicubic"
    src, hr, lr = open_pair(a.input, a.lr, frames, b.scale, kernel)
    places = bundle_frames(b, Path(a.input).name, src.num_frames, frames, lr)
    result = evaluate(Path(a.bundle), b, hr, lr, places, device=a.device, report=a.report,
                      report_frame=a.report_frame)
    result |= {"input": Path(a.input).name, "frames": frames or ":",
               "lr": Path(a.lr).name if a.lr else f"{kernel} downscale"}
    print(json.dumps(result, indent=2) if a.json else table(result))


def cmd_export_onnx(a: argparse.Namespace) -> None:
    from .onnx_export import export

    b = bundle_io.load(a.bundle)
    for path, arch in zip(export(a.bundle, a.outdir), b.archs):
        print(f"wrote {path}: chunk model wdsr {arch.blocks}x{arch.channels}x{arch.expansion}, x{arch.scale}")


def cmd_info(a: argparse.Namespace) -> None:
    data = Path(a.bundle).read_bytes()
    b = bundle_io.from_bytes(data)
    m = b.manifest() | {"version": bundle_io.read_manifest(data)["version"]}  # the file's, not this code's
    if a.json:
        print(json.dumps(m, indent=2))
        return
    c = m["clip"]
    print(f"{a.bundle}: STDO bundle v{m['version']}, {len(data)} bytes, weights {b.weight_storage}")
    print("  bytes: " + ", ".join(f"{part} {n}" for part, n in bundle_io.part_bytes(data).items()))
    print(f"  scale x{m['scale']}, LR {c['width']}x{c['height']}, {c['frames']} frames from {c.get('source')}")
    print(f"  patches {m['patch']['width']}x{m['patch']['height']}, grid {m['grid']['cols']}x{m['grid']['rows']}")
    print(f"  {m['chunks']} chunk model(s): " + ", ".join(
        f"wdsr {a_['blocks']}x{a_['channels']}x{a_['expansion']}" for a_ in m["models"]))
    if m["thresholds"]:
        print("  chunk PSNR thresholds (dB): " + ", ".join(f"{t:.2f}" for t in m["thresholds"]))
    t = m["training"]
    if t:
        print(f"  trained: mode {t.get('mode')}, preset {t.get('preset')}, {t.get('total_steps')} steps, "
              f"{t.get('seconds')} s, scorer {t.get('scorer')}"
              + (f", labels {t.get('labels', 'split')}" if m["chunks"] > 1 else ""))
        print(f"  held-out frames (not trained on): {', '.join(map(str, t.get('heldout', []))) or 'none'}")
    r = m["router"]
    if r:
        fit = {k: r["fit"][k] for k in ("accuracy_vs_labels", "accuracy_vs_best", "psnr") if k in r["fit"]}
        print(f"  blind router: MLP on {', '.join(r['features'])} ({r['hidden']} hidden); on the training "
              f"patches: {json.dumps(fit)}")
    elif m["chunks"] > 1:
        print("  blind router: none (route='blind' needs one; 'auto' sends frames it cannot find to chunk 0)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stdo", description="Content-overfitted video super-resolution (STDO).")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a bundle on a video")
    t.add_argument("input", help="HR video file (any format BestSource reads) or .vpy script")
    t.add_argument("-o", "--output", required=True, help="bundle file to write (.stdo)")
    t.add_argument("--scale", type=int, default=4, choices=SCALES, help="upscaling factor (default 4)")
    t.add_argument("--chunks", type=int, default=4, help="k, the number of difficulty chunks (default 4)")
    t.add_argument("--mode", choices=MODES, default="chunks",
                   help="chunks: one model per chunk (STDO, default); joint: one model on hard-weighted data "
                        "(JSTDO); single: one model on all patches")
    t.add_argument("--preset", choices=list(PRESETS), default="tiny", help="model size (default tiny)")
    t.add_argument("--easy-preset", choices=list(PRESETS),
                   help="chunks mode: a smaller preset for the easiest chunks, so cost follows content")
    t.add_argument("--easy-chunks", type=int, default=1,
                   help="with --easy-preset: how many of the easiest chunks use it (default 1)")
    budget = t.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int,
                        help=f"total training steps of the run, shared by its models (default {Settings.steps})")
    budget.add_argument("--epochs", type=float, help="budget in passes over the run's training patches instead")
    t.add_argument("--batch", type=int, default=Settings.batch, help=f"patches per step (default {Settings.batch})")
    t.add_argument("--learning-rate", type=float, default=Settings.lr, help=f"Adam learning rate (default {Settings.lr:g})")
    t.add_argument("--seed", type=int, default=0, help="seed of initialisation and sampling (default 0)")
    t.add_argument("--patch", type=parse_patch, default=(48, 54), help="LR patch WIDTHxHEIGHT (default 48x54)")
    t.add_argument("--pretrain", type=float, default=Settings.pretrain,
                   help=f"chunks mode: share of the steps spent on a shared model first (default {Settings.pretrain})")
    t.add_argument("--split", choices=SPLITS, default=Settings.split,
                   help="chunks mode: how patches are split into chunks, hardest first: error (default), each chunk "
                        "an equal share of the squared error, so the hardest chunk is small; count, equal-sized "
                        "chunks (the paper's)")
    t.add_argument("--joint-schedule", type=parse_fractions,
                   help="joint mode: fraction of each chunk's patches used, hardest first (default 1 ... 0)")
    t.add_argument("--labels", choices=LABELS, default=Settings.labels,
                   help="chunks mode: what the stored labels route each patch to: best (default), the model that "
                        "reconstructs it best; split, the model of its chunk (the paper's)")
    t.add_argument("--score", default=Settings.score,
                   help="reference scorer f0 that ranks patches for the split: auto (default: shared where the run "
                        "has a shared model, else bicubic), shared, bicubic, self, or the path of a .stdo bundle")
    t.add_argument("--score-steps", type=int, default=Settings.score_steps,
                   help=f"--score self: training steps of the scorer model (default {Settings.score_steps})")
    t.add_argument("--holdout", type=int, default=0, help="keep every Nth frame out of training (default 0: none)")
    t.add_argument("--frames", help="START:END frame range of the input (END exclusive)")
    t.add_argument("--lr", help="your real LR encode of the input (else LR = downscale by --kernel)")
    t.add_argument("--kernel", default="bicubic", choices=list(KERNELS),
                   help="downscale kernel for LR (default bicubic: Catmull-Rom, as MATLAB's imresize)")
    t.add_argument("--weights", choices=bundle_io.WEIGHTS, default=bundle_io.WEIGHTS[0],
                   help="how the bundle stores the weights: float16 (default; costs under 0.01 dB, see "
                        "docs/delivery.md), float32, or int8 with one scale per output channel (smallest, "
                        "costs more)")
    t.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    t.add_argument("--checkpoint-every", type=int, default=Settings.checkpoint_every,
                   help=f"steps between checkpoints (default {Settings.checkpoint_every})")
    t.add_argument("--resume", action="store_true", help="continue from <output>.ckpt after a crash or Ctrl-C")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="PSNR of a bundle against bicubic and Lanczos on whole frames")
    e.add_argument("bundle", help="a .stdo bundle")
    e.add_argument("input", help="the HR video (or .vpy) the bundle was trained on, or another")
    e.add_argument("--lr", help="your real LR encode (else LR = downscale by the bundle's kernel)")
    e.add_argument("--frames", help="START:END frame range (default: the bundle's training range)")
    e.add_argument("--kernel", choices=list(KERNELS), help="downscale kernel for LR (default: the bundle's)")
    e.add_argument("--report", help="write a PNG report (PSNR heatmap, chunk map, crops) to this file")
    e.add_argument("--report-frame", type=int,
                   help="frame of the range shown in the report (default: the first frame found in the bundle)")
    e.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    e.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    e.set_defaults(func=cmd_eval)

    i = sub.add_parser("info", help="show a bundle's manifest")
    i.add_argument("bundle")
    i.add_argument("--json", action="store_true", help="print the raw manifest as JSON")
    i.set_defaults(func=cmd_info)

    x = sub.add_parser("export-onnx", help="write each chunk model as an ONNX file (for vs-mlrt's core.ort.Model)")
    x.add_argument("bundle")
    x.add_argument("outdir", help="folder for chunk0.onnx, chunk1.onnx, ... (created if missing)")
    x.set_defaults(func=cmd_export_onnx)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        a.func(a)
    except (ValueError, FileNotFoundError, RuntimeError, vs.Error) as e:
        print(f"stdo {a.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"stdo {a.command}: {e or 'interrupted'}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
