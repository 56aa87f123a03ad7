"""The `stdo` command: train bundles, inspect them."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import bundle as bundle_io
from .models import PRESETS, SCALES
from .train import MODES, Settings


def parse_patch(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"patch size must look like WIDTHxHEIGHT (e.g. 48x54), got {text!r}")


def cmd_train(a: argparse.Namespace) -> None:
    from .dataset import load_frames
    from .train import train
    from .video import hr_lr_pair, open_clip, select_frames

    settings = Settings(scale=a.scale, chunks=a.chunks, mode=a.mode, preset=a.preset, steps=a.steps,
                        batch=a.batch, lr=a.learning_rate, seed=a.seed, patch_width=a.patch[0], patch_height=a.patch[1],
                        pretrain=a.pretrain, device=a.device)
    settings.check()
    src = select_frames(open_clip(a.input), a.frames)
    lr_src = select_frames(open_clip(a.lr), a.frames) if a.lr else None
    hr, lr = hr_lr_pair(src, a.scale, lr_src, a.kernel)
    frames = load_frames(hr, lr)
    clip = {"width": lr.width, "height": lr.height, "frames": lr.num_frames, "fps_num": src.fps.numerator,
            "fps_den": src.fps.denominator, "source": Path(a.input).name, "frames_selected": a.frames or ":",
            "lr": Path(a.lr).name if a.lr else f"{a.kernel} downscale"}
    b = train(frames, settings, Path(a.output), clip, resume=a.resume)
    print(f"wrote {a.output}: {b.chunks} model(s), x{b.scale}, {len(b.labels)} frames, "
          f"{Path(a.output).stat().st_size} bytes")


def cmd_info(a: argparse.Namespace) -> None:
    data = Path(a.bundle).read_bytes()
    b = bundle_io.from_bytes(data)
    m = b.manifest()
    if a.json:
        print(json.dumps(m, indent=2))
        return
    c = m["clip"]
    print(f"{a.bundle}: STDO bundle v{m['version']}, {len(data)} bytes")
    print(f"  scale x{m['scale']}, LR {c['width']}x{c['height']}, {c['frames']} frames from {c.get('source')}")
    print(f"  patches {m['patch']['width']}x{m['patch']['height']}, grid {m['grid']['cols']}x{m['grid']['rows']}")
    print(f"  {m['chunks']} chunk model(s): " + ", ".join(
        f"wdsr {a_['blocks']}x{a_['channels']}x{a_['expansion']}" for a_ in m["models"]))
    if m["thresholds"]:
        print("  chunk PSNR thresholds (dB): " + ", ".join(f"{t:.2f}" for t in m["thresholds"]))
    t = m["training"]
    if t:
        print(f"  trained: mode {t.get('mode')}, preset {t.get('preset')}, {t.get('steps')} steps, "
              f"{t.get('seconds')} s, scorer {t.get('scorer')}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stdo", description="Content-overfitted video super-resolution (STDO).")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a bundle on a video")
    t.add_argument("input", help="HR video file (any format BestSource reads) or .vpy script")
    t.add_argument("-o", "--output", required=True, help="bundle file to write (.stdo)")
    t.add_argument("--scale", type=int, default=4, choices=SCALES)
    t.add_argument("--chunks", type=int, default=4, help="k, the number of difficulty chunks (default 4)")
    t.add_argument("--mode", choices=MODES, default="chunks")
    t.add_argument("--preset", choices=list(PRESETS), default="tiny")
    t.add_argument("--steps", type=int, default=Settings.steps, help="total training steps of the run")
    t.add_argument("--batch", type=int, default=Settings.batch)
    t.add_argument("--learning-rate", type=float, default=Settings.lr, help="Adam learning rate (default 1e-3)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--patch", type=parse_patch, default=(48, 54), help="LR patch WIDTHxHEIGHT (default 48x54)")
    t.add_argument("--pretrain", type=float, default=Settings.pretrain,
                   help="chunks mode: share of the steps spent on a shared model first (default 0.5)")
    t.add_argument("--frames", help="START:END frame range of the input (END exclusive)")
    t.add_argument("--lr", help="your real LR encode of the input (else LR = downscale by --kernel)")
    t.add_argument("--kernel", default="bicubic", help="downscale kernel for LR (default bicubic)")
    t.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    t.add_argument("--resume", action="store_true", help="continue from <output>.ckpt after a crash or Ctrl-C")
    t.set_defaults(func=cmd_train)

    i = sub.add_parser("info", help="show a bundle's manifest")
    i.add_argument("bundle")
    i.add_argument("--json", action="store_true", help="print the raw manifest as JSON")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        a.func(a)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"stdo {a.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"stdo {a.command}: {e or 'interrupted'}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
