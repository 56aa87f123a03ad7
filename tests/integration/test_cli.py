"""The `stdo` command as a user meets it: refuse what would destroy a file or fail late, one clear line for
every error a user can cause, no traceback without --debug, and the usual exit codes: 1 for an error at run time,
2 for a usage error (what argparse refuses, and a command-line value found wrong after parsing).

Each CASES row is one command line run through the real CLI (in this process: main() is what the console
script calls) on real files; the rows that train or spawn a process are marked slow."""
from __future__ import annotations

import errno
import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.bundles import offset_model, write_bundle
from tests.support.cli import STDO, blank, run
from vs_stdo.cli import main
from vs_stdo.core import bundle as bundle_io

SMALL = """\
import vapoursynth as vs
vs.core.std.BlankClip(format=vs.RGB24, width=200, height=224, length=2, color=[30, 90, 200]).set_output()
"""
BIG = """\
import vapoursynth as vs
vs.core.std.BlankClip(format=vs.RGB24, width=4000, height=4000, length=8).set_output()
"""
LONG = """\
import vapoursynth as vs
vs.core.std.BlankClip(format=vs.RGB24, width=1920, height=1080, length=100000).set_output()
"""
VARIABLE = """\
import vapoursynth as vs
a = vs.core.std.BlankClip(format=vs.RGBS, width=64, height=64, length=2)
b = vs.core.std.BlankClip(format=vs.{fmt}, width={w}, height=64, length=2)
vs.core.std.Splice([a, b], mismatch=True).set_output()
"""
SCRIPT_ERRORS = {
    "name.vpy": "import vapoursynth as vs\nx = 1\nclip = undefined_name\n",
    "runtime.vpy": "import vapoursynth as vs\n\n\nraise RuntimeError('my own check failed')\n",
    "syntax.vpy": "import vapoursynth as vs\nclip = (\n",
    "plugin.vpy": "import vapoursynth as vs\nvs.core.std.BlankClip(width=-5).set_output()\n",
}
TRAIN = ["--steps", "1", "--chunks", "1", "--mode", "single", "--device", "cpu"]


@pytest.fixture
def files(tmp_path: Path, bikes: Path) -> Path:
    """A folder of things a user has lying around: a video, scripts, a folder, a bundle."""
    shutil.copyfile(bikes, tmp_path / "video.mp4")
    (tmp_path / "small.vpy").write_text(SMALL)
    (tmp_path / "big.vpy").write_text(BIG)
    (tmp_path / "long.vpy").write_text(LONG)
    (tmp_path / "varformat.vpy").write_text(VARIABLE.format(fmt="RGBH", w=64))
    (tmp_path / "varsize.vpy").write_text(VARIABLE.format(fmt="RGBS", w=96))
    for name, text in SCRIPT_ERRORS.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "folder").mkdir()
    blank(tmp_path / "hr.vpy", 64, 48, n=6)
    blank(tmp_path / "lr9.vpy", 16, 12, n=9)
    blank(tmp_path / "lr_il.vpy", 16, 12, n=6, props=".std.SetFrameProps(_FieldBased=1)")
    blank(tmp_path / "il.vpy", props=".std.SetFrameProps(_FieldBased=2)")
    blank(tmp_path / "one.vpy", 1, 1)
    blank(tmp_path / "three.vpy", 3, 200)
    os.link(tmp_path / "video.mp4", tmp_path / "link.mp4")
    write_bundle(tmp_path / "b.stdo", [offset_model(2, 0.0)], np.zeros((1, 2, 2), np.uint8),
                 [torch.full((3, 24, 32), 0.5)])
    return tmp_path


def unchanged(*names: str):
    """A check that the named files still hold what they held before the command."""
    def check(tmp: Path, before: dict[str, bytes]) -> None:
        for name in names:
            assert (tmp / name).read_bytes() == before[name], f"{name} was changed"
    return check


def replaced(name: str):
    """A check that the named file now holds a new bundle."""
    def check(tmp: Path, before: dict[str, bytes]) -> None:
        assert (tmp / name).read_bytes() != before[name] and bundle_io.load(tmp / name)
    return check


def nothing_new(tmp: Path, before: dict[str, bytes]) -> None:
    assert sorted(p.name for p in tmp.rglob("*")) == sorted(before), "the command left files behind"


# id: (arguments, exit status, what stderr must say (all of), check of the files afterwards)
CASES = {
    # the run would destroy its input or a finished result
    "-o is the input video": (["train", "video.mp4", "-o", "video.mp4", *TRAIN], 1,
                              ["-o", "is the input", "choose another"], unchanged("video.mp4")),
    "-o is the input .vpy": (["train", "small.vpy", "-o", "small.vpy", *TRAIN], 1,
                             ["is the input"], unchanged("small.vpy")),
    "-o is the input through another path": (["train", "video.mp4", "-o", "folder/../video.mp4", *TRAIN], 1,
                                             ["is the input"], unchanged("video.mp4")),
    "-o is a hard link to the input": (["train", "video.mp4", "-o", "link.mp4", *TRAIN], 1, ["is the input"],
                                       unchanged("video.mp4")),
    "-o is the --lr file": (["train", "small.vpy", "--lr", "video.mp4", "-o", "video.mp4", *TRAIN], 1,
                            ["is the --lr file"], unchanged("video.mp4")),
    "-o is a video (not a bundle)": (["train", "small.vpy", "-o", "video.mp4", "--force", *TRAIN], 1,
                                     ["is not an STDO bundle"], unchanged("video.mp4")),
    "-o is an earlier bundle": (["train", "small.vpy", "-o", "b.stdo", *TRAIN], 1, ["--force"], unchanged("b.stdo")),
    "-o is a directory": (["train", "small.vpy", "-o", "folder", *TRAIN], 1, ["is a directory"], nothing_new),
    "-o in a missing folder": (["train", "video.mp4", "-o", "missing/out.stdo", *TRAIN], 1,
                               ["does not exist", "mkdir"], nothing_new),
    # resources: refused before any frame is decoded
    "a step that cannot fit": (["train", "big.vpy", "-o", "x.stdo", "--preset", "paper", "--patch", "1000x1000",
                                "--batch", "8", *TRAIN], 1, ["--batch", "--patch", "GB"], nothing_new),
    "frames that cannot fit": (["train", "long.vpy", "-o", "x.stdo", "--scale", "2", "--train-frames", "100000",
                                *TRAIN], 1, ["100000 frames", "--train-frames"], nothing_new),
    "--batch above the patches is capped": (["train", "small.vpy", "-o", "x.stdo", "--batch", "100000",
                                             "--patch", "48x54", *TRAIN], 0,
                                            ["--batch 100000 is more than the 8 training patches; using --batch 8"],
                                            None),
    "--force replaces an earlier bundle": (["train", "small.vpy", "-o", "b.stdo", "--force", *TRAIN], 0, [],
                                           replaced("b.stdo")),
    # the user's own .vpy: type, file and line of their script
    "NameError in the user's .vpy": (["train", "name.vpy", "-o", "x.stdo", *TRAIN], 1,
                                     ["name.vpy, line 3", "NameError", "undefined_name"], nothing_new),
    "RuntimeError in the user's .vpy": (["train", "runtime.vpy", "-o", "x.stdo", *TRAIN], 1,
                                        ["runtime.vpy, line 4", "RuntimeError: my own check failed"], nothing_new),
    "SyntaxError in the user's .vpy": (["train", "syntax.vpy", "-o", "x.stdo", *TRAIN], 1,
                                       ["syntax.vpy, line 2", "SyntaxError"], nothing_new),
    "plugin error in the user's .vpy": (["eval", "b.stdo", "plugin.vpy"], 1, ["plugin.vpy, line 2", "Error"],
                                        nothing_new),
    "variable format to train": (["train", "varformat.vpy", "-o", "x.stdo", *TRAIN], 1,
                                 ["constant format and size"], nothing_new),
    "variable size to train": (["train", "varsize.vpy", "-o", "x.stdo", *TRAIN], 1,
                               ["constant format and size"], nothing_new),
    # the input and the LR file: refused before any frame is decoded
    "--lr with a blank HR": (["train", "hr.vpy", "-o", "x.stdo", "--lr", "lr9.vpy", "--frames", "0:4", *TRAIN],
                             1, ["the HR is blank: all 6 frames sampled over it are black"], nothing_new),
    "interlaced input": (["train", "il.vpy", "-o", "x.stdo", *TRAIN], 1,
                         ["the input is interlaced (_FieldBased=2, top field first); deinterlace (or IVTC) it first"],
                         nothing_new),
    "interlaced --lr file": (["train", "hr.vpy", "-o", "x.stdo", "--lr", "lr_il.vpy", *TRAIN], 1,
                             ["the LR file is interlaced (_FieldBased=1"], nothing_new),
    "1x1 input": (["train", "one.vpy", "-o", "x.stdo", *TRAIN], 1, ["the input (1x1) is too small for x4"],
                  nothing_new),
    "input smaller than x4": (["train", "three.vpy", "-o", "x.stdo", *TRAIN], 1,
                              ["the input (3x200) is too small for x4"], nothing_new),
    # a directory where a file is expected
    "info DIR": (["info", "folder"], 1, ["is a directory"], nothing_new),
    "eval with a bundle path that is a directory": (["eval", "folder", "small.vpy"], 1, ["is a directory"],
                                                    nothing_new),
    "train input that is a directory": (["train", "folder", "-o", "x.stdo", *TRAIN], 1, ["is a directory"],
                                        nothing_new),
    "export-onnx to an existing file": (["export-onnx", "b.stdo", "video.mp4"], 1, ["is a file, not a folder"],
                                        unchanged("video.mp4")),
    "eval --report over the input": (["eval", "b.stdo", "video.mp4", "--report", "video.mp4"], 1,
                                     ["is the input"], unchanged("video.mp4")),
    "eval with a wrong-size --lr": (["eval", "b.stdo", "small.vpy", "--lr", "video.mp4"], 1,
                                    ["640x272", "100x112", "give an LR encode of that size"], nothing_new),
    # exit status 1 for runtime errors, 2 for a command-line value that parses but cannot work
    "a missing bundle is a runtime error": (["info", "missing.stdo"], 1, ["does not exist"], nothing_new),
    "--chunks out of range": (["train", "small.vpy", "-o", "x.stdo", "--chunks", "300"], 2, ["--chunks"], nothing_new),
    "--time nan": (["train", "small.vpy", "-o", "x.stdo", "--time", "nan"], 2,
                   ["--time must be a number from 0 to 604800, got nan"], nothing_new),
    "--learning-rate 0": (["train", "small.vpy", "-o", "x.stdo", "--learning-rate", "0"], 2,
                          ["--learning-rate must be positive"], nothing_new),
    "--score shared without a shared model": (["train", "small.vpy", "-o", "x.stdo", "--score", "shared", "--mode",
                                               "single"], 2, ["--score shared"], nothing_new),
    "--align-only without --lr": (["train", "small.vpy", "-o", "x.stdo", "--align-only"], 2,
                                  ["--align-only needs --lr"], nothing_new),
    "train --frames malformed": (["train", "small.vpy", "-o", "x.stdo", "--frames", "a:b", *TRAIN], 2,
                                 ["--frames must look like START:END"], nothing_new),
    "eval --frames malformed": (["eval", "b.stdo", "small.vpy", "--frames", "1-2"], 2,
                                ["--frames must look like START:END"], nothing_new),
    "--device malformed": (["train", "small.vpy", "-o", "x.stdo", "--device", "gpu"], 2, ["unknown device 'gpu'"],
                           nothing_new),
    "--frames selecting nothing is a runtime error": (["train", "small.vpy", "-o", "x.stdo", "--frames", "5:9", *TRAIN],
                                                      1, ["selects no frames of a 2-frame clip"], nothing_new),
}


TRAINS = {"--batch above the patches is capped", "--force replaces an earlier bundle"}  # these rows train: slow


@pytest.mark.parametrize("case", [
    pytest.param(row, id=name, marks=[pytest.mark.slow, pytest.mark.train] if name in TRAINS else [])
    for name, row in CASES.items()])
def test_cli_case(case, files, capsys, monkeypatch):
    args, status, says, check = case
    monkeypatch.chdir(files)
    before = {p.name: p.read_bytes() if p.is_file() else b"" for p in files.rglob("*")}
    code, out, err = run(args, capsys)
    assert code == status, err
    assert "Traceback" not in err and "Traceback" not in out
    for text in says:
        assert text in err, err
    if status:
        errors = [line for line in err.splitlines() if line.startswith("stdo ")]
        assert len(errors) == 1 and errors[0].startswith(f"stdo {args[0]}: error: "), err
        assert "plan:" not in err and "evaluating" not in err, "refused only after the work began"
        assert "--scale" not in err or args[0] == "train"
    if check:
        check(files, before)
    if args[0] == "train":   # a checkpoint is never left next to -o
        assert not list(files.glob("*.ckpt"))


def test_usage_errors_exit_2(capsys):
    assert run(["train"], capsys)[0] == 2
    assert run(["info", "b.stdo", "--no-such-option"], capsys)[0] == 2
    assert run(["train", "x.vpy", "-o", "y.stdo", "--time", "abc"], capsys)[0] == 2  # argparse's own


@pytest.mark.parametrize("value", ["0,0,60", "0,0,-1,60", "a,b,c,d", "0;0;60;60"])
def test_bars_options_must_be_four_pixel_counts(value, capsys):
    for option in ("--hr-bars", "--lr-bars"):
        code, _, err = run(["train", "in.vpy", "--lr", "lr.vpy", "-o", "x.stdo", option, value], capsys)
        assert code == 2 and "bars must look like LEFT,RIGHT,TOP,BOTTOM" in err and option in err


def test_version(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"stdo {importlib.metadata.version('vs-stdo')}"


def test_debug_shows_the_traceback(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    with pytest.raises(ValueError, match="is a directory"):
        main(["info", "folder", "--debug"])


@pytest.mark.parametrize("error, command, says", [
    (MemoryError(), "train", ["out of memory", "--batch", "--patch", "--frames"]),
    (RuntimeError("[enforce fail] DefaultCPUAllocator: not enough memory: you tried to allocate 9 bytes."),
     "train", ["out of memory", "--batch"]),
    (OSError(errno.ENOSPC, "No space left on device", "out.stdo"), "train", ["out.stdo", "free some space"]),
    (PermissionError(errno.EACCES, "Permission denied", "out.stdo"), "train", ["out.stdo", "permissions"]),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "x"), "info", ["not a directory"]),
    (TypeError("unexpected"), "info", ["internal error: TypeError", "--debug"]),
])
def test_error_messages_name_the_fix(error, command, says):
    from vs_stdo.cli import message
    text = message(error, command)
    assert "\n" not in text and all(s in text for s in says), text


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output_folder(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    (files / "folder").chmod(0o500)
    try:
        code, _, err = run(["train", "small.vpy", "-o", "folder/x.stdo", *TRAIN], capsys)
    finally:
        (files / "folder").chmod(0o700)
    assert code == 1 and "cannot write in the folder" in err


@pytest.mark.parametrize("path, says", [("", "no bundle path given"), ("/dev/zero", "is not a regular file"),
                                        ("fifo", "is not a regular file")])
def test_bundle_paths_that_are_not_files_are_named_as_such(path, says, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    for command in ("info", "export-onnx"):
        code, _, err = run([command, path] + ([tmp_path / "onnx"] if command == "export-onnx" else []), capsys)
        assert code == 1 and says in err, err


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "vs_stdo"]


@pytest.mark.slow
@pytest.mark.parametrize("argv, says, worker_exit", [
    (["train", "missing.vpy", "-o", "x.stdo", "--device", "cpu"], "input 'missing.vpy' does not exist", 1),
    (["train", "missing.vpy", "-o", "x.stdo", "--bogus"], "unrecognized arguments: --bogus", 2),
    (["train", "missing.vpy", "-o", "x.stdo", "--time", "nan"], "--time must be a number from 0 to 604800", 2),
])
def test_a_user_error_under_torchrun_is_said_once(argv, says, worker_exit, tmp_path):
    """One line, once (rank 0), whatever torchrun adds; a usage error exits its worker with 2."""
    r = subprocess.run([*TORCHRUN, *argv], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode != 0
    assert r.stderr.count(says) == 1, r.stderr[-3000:]
    assert f"exitcode  : {worker_exit}" in r.stderr


@pytest.mark.parametrize("rank, waits", [("0", False), ("1", True)])
@pytest.mark.parametrize("argv", [["train", "missing.vpy", "-o", "x.stdo", "--bogus"],
                                  ["train", "missing.vpy", "-o", "x.stdo", "--time", "nan"]])
def test_only_the_silent_processes_wait_before_failing(monkeypatch, capsys, rank, waits, argv):
    """Under torchrun the first process to fail gets the others stopped: the silent ones wait so rank 0 has said
    why by then (a usage error found by argparse or after it alike)."""
    from vs_stdo import cli

    slept = []
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setattr(cli.time, "sleep", slept.append)
    try:
        status = main(argv)
    except SystemExit as e:
        status = e.code
    assert status == 2 and slept == ([cli.SPEAKER_GRACE] if waits else [])
    assert ("error" in capsys.readouterr().err) != waits


@pytest.mark.slow
def test_python_m_vs_stdo_is_stdo():
    r = subprocess.run([*STDO, "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("stdo "), r.stderr


@pytest.mark.slow
def test_closed_stdout_exits_quietly(files):
    """`stdo info B | head`: the reader is gone before stdo writes."""
    p = subprocess.Popen([*STDO, "info", str(files / "b.stdo")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141 and err == "", err


@pytest.mark.slow
def test_ctrl_c_exits_130(files):
    """Ctrl-C while the user's script runs (before training): status 130, one line."""
    started = files / "started"
    (files / "slow.vpy").write_text(f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(60)\n")
    # as from a terminal: a job started in the background by a non-interactive shell inherits SIGINT ignored
    p = subprocess.Popen([*STDO, "train", str(files / "slow.vpy"), "-o", str(files / "x.stdo")],
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 130 and "Traceback" not in err, err
