"""The `stdo` command: train bundles, evaluate them, inspect them."""
from __future__ import annotations

import argparse
import errno
import importlib.metadata
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, NoReturn

import vapoursynth as vs

from .core import bundle as bundle_io
from .core.usage import UsageError
from .core.video import KERNELS
from .train.settings import Settings, default_of, flag_of, options
from .train.world import main_process

SPEAKER_GRACE = 10.0  # seconds a silent torchrun process waits before failing (let_the_speaker_speak)


def parse_patch(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        return w, h
    except ValueError:
        raise ValueError(f"patch size must look like WIDTHxHEIGHT (e.g. 24x27), got {text!r}") from None


def parse_bars(text: str) -> tuple[int, int, int, int]:
    try:
        bars = tuple(int(v) for v in text.split(","))
    except ValueError:
        bars = ()
    if len(bars) != 4 or min(bars) < 0:
        raise ValueError(f"bars must look like LEFT,RIGHT,TOP,BOTTOM in pixels (e.g. 0,0,60,60; 0,0,0,0 for "
                         f"none), got {text!r}")
    return bars


def arg_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises ValueError with a message (argparse then shows it)."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e) if parse not in (int, float) else
                                             f"expected a number, got {text!r}") from None
    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def cmd_train(a: argparse.Namespace) -> None:
    from .train.job import Job, run_job

    settings = Settings(**{f.name: getattr(a, f.name) for f in options()}, patch_width=a.patch[0],
                        patch_height=a.patch[1])
    run_job(Job(a.input, a.output, settings, lr_file=a.lr_file, frames=a.frames, kernel=a.kernel, resume=a.resume,
                force=a.force, scale_given="scale" in a.given, align_only=a.align_only,
                hr_bars=a.hr_bars, lr_bars=a.lr_bars))


def cmd_eval(a: argparse.Namespace) -> None:
    from .tools.evaluate import run, table

    result = run(a.bundle, a.input, a.lr, a.frames, a.kernel, a.report, a.report_frame,
                 Path(a.frames_out) if a.frames_out else None, a.device)
    print(json.dumps(result, indent=2) if a.json else table(result))


def cmd_export_onnx(a: argparse.Namespace) -> None:
    from .tools.onnx_export import GEOMETRY, export

    b = bundle_io.load(a.bundle)
    for path, arch in zip(export(a.bundle, a.outdir), b.archs):
        print(f"wrote {path}: chunk model wdsr {arch.blocks}x{arch.channels}x{arch.expansion}, x{arch.scale}")
    where = ("already on the HR grid (whole scale)" if b.mapping.whole() else
             "to be put on the HR grid by the resize it gives (a remaster bundle)")
    print(f"wrote {Path(a.outdir) / GEOMETRY}: the mapping; the models' output is {where}. Not exported: the "
          f"routing (labels, blind router){' between the chunk models' if b.chunks > 1 else ''} and the colour "
          f"conversions (core.stdo.Upscale does both)")


def cmd_info(a: argparse.Namespace) -> None:
    from .tools.info import describe

    print(describe(a.bundle, as_json=a.json))


class Parser(argparse.ArgumentParser):
    """argparse, silent on every process but the first under torchrun (each would print the same usage error)."""

    def _print_message(self, message: str, file: Any = None) -> None:
        if main_process():
            super()._print_message(message, file)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if status:
            let_the_speaker_speak()
        super().exit(status, message)


class Given(argparse.Action):
    """Stores an option's value and notes that the command line gave it (`namespace.given`)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given = getattr(namespace, "given", set()) | {self.dest}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="stdo", description="Content-overfitted video super-resolution (STDO).")
    p.add_argument("--version", action="version", version=f"stdo {version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a bundle on a video", parents=[common])
    t.add_argument("input", help="HR video file (any format BestSource reads) or .vpy script")
    t.add_argument("-o", "--output", required=True, help="bundle file to write (.stdo)")
    t.add_argument("--force", action="store_true", help="replace the bundle an earlier run wrote to -o")
    for f in options():  # every training setting, with its default from Settings
        default, m = default_of(f), f.metadata
        t.add_argument(flag_of(f.name), dest=f.name, default=default,
                       type=arg_type(m["parse"] or type(default)), choices=m["choices"], action=Given,
                       metavar=f.name.upper() if not m["choices"] else None,
                       help=m["help"].format(default=default))
    t.add_argument("--patch", type=arg_type(parse_patch), default=(Settings.patch_width, Settings.patch_height),
                   help=f"LR patch WIDTHxHEIGHT (default {Settings.patch_width}x{Settings.patch_height})")
    t.add_argument("--frames", help="START:END frame range of the input (END exclusive)")
    t.add_argument("--lr", dest="lr_file", help="your real LR encode of the input (else LR = downscale by --kernel)")
    t.add_argument("--kernel", default="bicubic", choices=list(KERNELS),
                   help="downscale kernel for LR (default bicubic: Catmull-Rom, as MATLAB's imresize)")
    t.add_argument("--resume", action="store_true", help="continue from <output>.ckpt after a crash or Ctrl-C")
    t.add_argument("--align-only", action="store_true",
                   help="with --lr: align the LR to the input, print the mapping, write <output>.align.png and "
                        "<output>.pairs.csv, stop (exit 1 where training would refuse)")
    for side, name in (("hr", "the input"), ("lr", "the --lr file")):
        t.add_argument(f"--{side}-bars", type=arg_type(parse_bars), metavar="L,R,T,B",
                       help=f"black bars of {name} of a remaster pair, pixels per side (0,0,0,0: none); by default "
                            f"found on frames sampled over it")
    t.set_defaults(func=cmd_train, given=set())

    e = sub.add_parser("eval", help="PSNR of a bundle against bicubic and Lanczos through the same geometry",
                       parents=[common])
    e.add_argument("bundle", help="a .stdo bundle")
    e.add_argument("input", help="the HR video (or .vpy) the bundle was trained on, or another")
    e.add_argument("--lr", help="your real LR encode, or a remaster pair's LR (aligned as training aligns it); "
                                "else LR = downscale by the bundle's kernel")
    e.add_argument("--frames", help="START:END frame range (default: the bundle's training range)")
    e.add_argument("--kernel", choices=list(KERNELS), help="downscale kernel for LR (default: the bundle's)")
    e.add_argument("--report", help="write a PNG report (PSNR heatmap, chunk map, crops) to this file")
    e.add_argument("--report-frame", type=int,
                   help="frame of the range shown in the report (default: the first frame found in the bundle)")
    e.add_argument("--frames-out", metavar="DIR",
                   help="write aligned full-frame PNGs per evaluated frame to DIR (NNNNNN_bicubic/_stdo/_source.png)")
    e.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    e.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    e.set_defaults(func=cmd_eval)

    i = sub.add_parser("info", help="show a bundle's manifest", parents=[common])
    i.add_argument("bundle")
    i.add_argument("--json", action="store_true", help="print the manifest as JSON (as read: defaults filled in)")
    i.set_defaults(func=cmd_info)

    x = sub.add_parser("export-onnx", help="write each chunk model as an ONNX file (for vs-mlrt's core.ort.Model)",
                       parents=[common])
    x.add_argument("bundle")
    x.add_argument("outdir", help="folder for chunk0.onnx, chunk1.onnx, ... (created if missing)")
    x.set_defaults(func=cmd_export_onnx)
    return p


def version() -> str:
    """The installed package's version."""
    try:
        return importlib.metadata.version("vs-stdo")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (vs-stdo is not installed)"


MEMORY_FIX = {"train": "lower --batch or --patch, or select fewer --frames", "eval": "select fewer --frames"}


def message(e: Exception, command: str) -> str:
    """One line for a user: what went wrong and what to do."""
    text = " ".join(str(e).split())
    if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and ("can't allocate memory" in text
                                                                       or "not enough memory" in text)):
        return f"out of memory ({text or type(e).__name__}); {MEMORY_FIX.get(command, 'close other programs')}"
    if isinstance(e, OSError) and e.errno is not None:
        where = f" {e.filename}" if e.filename else ""
        fixes = {errno.ENOSPC: "free some space or write to another disk",
                 errno.EDQUOT: "free some space or write to another disk",
                 errno.EACCES: "choose a path you may use, or change its permissions",
                 errno.EPERM: "choose a path you may use, or change its permissions",
                 errno.EROFS: "write to another disk",
                 errno.EISDIR: "give the path of a file, not a directory",
                 errno.ENOENT: "check the path"}
        return f"{e.strerror}:{where}; {fixes.get(e.errno, 'check the path and the disk')}"
    if isinstance(e, (ValueError, RuntimeError, OSError, vs.Error)):
        return text
    return f"internal error: {type(e).__name__}: {text}; rerun with --debug and report the traceback"


def main(argv: list[str] | None = None) -> int:
    """Run the `stdo` command; returns the exit status: 0 done, 1 error, 2 usage error (argparse's, or a UsageError:
    a command-line value found wrong after parsing), 130 interrupted."""
    a = build_parser().parse_args(argv)
    try:
        a.func(a)
        sys.stdout.flush()
    except KeyboardInterrupt as e:  # the training loop's says where it saved the run
        if main_process():
            print(f"stdo {a.command}: {str(e) or 'interrupted'}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Whoever read our output stopped (`stdo info B | head`): stop quietly, as tools killed by SIGPIPE do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:
        if a.debug:
            raise
        report(f"stdo {a.command}: error: {message(e, a.command)}")
        let_the_speaker_speak()
        return 2 if isinstance(e, UsageError) else 1
    return 0


def let_the_speaker_speak() -> None:
    """Under torchrun, a silent process that fails waits SPEAKER_GRACE seconds before it exits: torchrun stops every
    process as soon as one fails, so without the wait rank 0, failing the same way a moment later, could be stopped
    before it says why. Rank 0 fails within the wait (and torchrun then stops this process)."""
    if not main_process():
        time.sleep(SPEAKER_GRACE)


def report(line: str) -> None:
    """Print an error once. Under torchrun, rank 0's goes into torchrun's error file instead, so that torchrun's
    failure summary (which it prints with its own traceback whenever a process fails) shows this line, not a link
    to its docs; the other processes, which fail the same way, stay silent."""
    if not main_process():
        return
    error_file = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if error_file:
        try:
            extra = {"py_callstack": line, "timestamp": str(int(time.time()))}  # torchrun shows "py_callstack"
            Path(error_file).write_text(json.dumps({"message": {"message": line, "extraInfo": extra}}))
            return
        except OSError:
            pass
    print(line, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
