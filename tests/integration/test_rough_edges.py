"""Rough edges a new or hostile user meets: a run is never lost to its own settings, a bundle never plays as black
or NaN frames, and every user error is caught before the work, in one line.

Commands run through the real CLI (main(), as the console script calls it) on real files: tiny .vpy clips, a
256x144 cut of a real clip for the runs that train, hand-built bundles with known weights."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

from tests.support.bundles import offset_model, write_bundle
from vs_stdo.cli import main
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.models import WDSR, preset
from vs_stdo.train.generic import shipped
from vs_stdo.train.settings import Settings

STDO = [sys.executable, "-m", "vs_stdo"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "vs_stdo"]
BLANK = """\
import vapoursynth as vs
c = vs.core.std.BlankClip(format=vs.{fmt}, width={w}, height={h}, length={n}, color={color})
c{props}.set_output()
"""
REAL = """\
import vapoursynth as vs
c = vs.core.bs.VideoSource({path!r})[:9]
c.resize.Bicubic(256, 144, format=vs.RGB24, matrix_in_s="709").set_output()
"""


def blank(path: Path, w: int = 64, h: int = 48, n: int = 4, fmt: str = "RGB24", props: str = "") -> Path:
    color = "[30, 90, 200]" if fmt.startswith("RGB") else "[90, 120, 140]"
    path.write_text(BLANK.format(fmt=fmt, w=w, h=h, n=n, color=color, props=props))
    return path


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """main(argv) as the console script runs it: (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def stdo(*argv: object, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*STDO, *map(str, argv)], capture_output=True, text=True, timeout=timeout)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1] if text.strip() else ""


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory) -> Path:
    """A one-model x2 bundle for a 32x24 LR (hand-built, float32 weights)."""
    path = tmp_path_factory.mktemp("small") / "small.stdo"
    return write_bundle(path, [offset_model(2, 0.0)], np.zeros((1, 2, 2)), [torch.full((3, 24, 32), 0.5)])


@pytest.fixture
def base(tmp_path: Path, bikes: Path) -> Path:
    """A 256x144 cut (9 frames) of a real clip, as a .vpy."""
    path = tmp_path / "base.vpy"
    path.write_text(REAL.format(path=str(bikes)))
    return path


# --- a run's identity and its checkpoint ---------------------------------------------------------------

@pytest.mark.parametrize("change, named", [
    ({"time": 240.0}, None),
    ({"checkpoint_every": 7}, None),
    ({"device": "cpu"}, None),
    ({"weights": "int8"}, None),
    ({"chunks": 2}, "--chunks 4 -> 2"),
    ({"planes": "luma"}, "--planes rgb -> luma"),
    ({"lr": 1e-3}, "--learning-rate 0.002 -> 0.001"),
    ({"patch_width": 32}, "--patch 24x27 -> 32x27"),
    ({"steps": 48}, "--steps 2000 -> 48"),
])
def test_a_checkpoint_names_the_settings_that_decide_the_result(change, named, tmp_path):
    """Only what decides the result must match to resume; a mismatch names the option, its old and new value."""
    from vs_stdo.train.checkpoint import Checkpoint, check

    path = tmp_path / "x.stdo.ckpt"
    inputs = {"source": "a.mp4", "frames_selected": "0:4", "lr": "bicubic downscale", "kernel": "bicubic"}
    Checkpoint(path, "run", settings=Settings(), inputs=inputs).save()
    if named is None:
        assert check(path, replace(Settings(), **change), inputs, resume=True) is not None
    else:
        with pytest.raises(ValueError, match="was written with other settings") as e:
            check(path, replace(Settings(), **change), inputs, resume=True)
        assert named in str(e.value) and "delete it" in str(e.value)
    with pytest.raises(ValueError, match="--frames 0:4 -> 0:8"):
        check(path, Settings(), inputs | {"frames_selected": "0:8"}, resume=True)


def test_a_time_runs_checkpoint_keeps_the_settings_it_started_with(tmp_path):
    """--time never rewrites the settings a checkpoint records: a resumed run may take another --time (it counts
    from the resumed process's start), not other --steps."""
    from vs_stdo.train.checkpoint import Checkpoint, check

    path = tmp_path / "x.stdo.ckpt"
    Checkpoint(path, "run", settings=replace(Settings(), time=240.0), inputs={}).save()
    assert check(path, replace(Settings(), time=60.0), {}, resume=True)["settings"]["steps"] == Settings.steps
    with pytest.raises(ValueError, match="--steps 2000 -> 48"):
        check(path, replace(Settings(), time=240.0, steps=48), {}, resume=True)


@pytest.mark.slow
@pytest.mark.train
def test_ctrl_c_of_a_time_run_then_resume_finishes_and_mismatches_are_named_before_decoding(base, tmp_path):
    """Ctrl-C of a --time run, then: a plain rerun and a changed --chunks are refused before any frame is decoded
    (no plan line), naming the fix; the same command line with --resume (and another --weights and
    --checkpoint-every, which only change how files are written) finishes."""
    out = tmp_path / "t.stdo"
    ckpt = Path(f"{out}.ckpt")
    cmd = ["train", base, "-o", out, "--frames", "0:4", "--chunks", "2", "--device", "cpu", "--time", "40s"]
    p = subprocess.Popen([*STDO, *map(str, cmd), "--checkpoint-every", "1"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not ckpt.exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "rerun with --resume" in err, err[-2000:]
    cut = torch.load(ckpt, weights_only=True)
    assert cut["settings"]["steps"] == Settings.steps and (cut["current"] is None or cut["current"]["spent"] > 0)
    plain = stdo(*cmd)
    assert plain.returncode == 1 and "add --resume to continue it" in plain.stderr
    other = stdo(*cmd, "--resume", "--chunks", "3")
    assert other.returncode == 1 and "--chunks 2 -> 3" in last_line(other.stderr)
    assert "plan:" not in plain.stderr + other.stderr           # refused before decoding
    done = stdo(*cmd, "--resume", "--weights", "int8", "--checkpoint-every", "7")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming from" in done.stderr and not ckpt.exists()
    b = bundle_io.load(out)
    assert b.weight_storage == "int8" and all("spent" in stage for stage in b.training["stages"].values())


# --- weights are checked by what they do ------------------------------------------------------------------

def huge_model(scale: int = 2) -> WDSR:
    m = offset_model(scale, 0.0)
    with torch.no_grad():
        m.head.weight.fill_(3e38)     # every value finite, their sums are not
        m.tail.weight.fill_(1.0)
    return m


@pytest.fixture(scope="module")
def huge_bundle(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "huge.stdo"
    return write_bundle(path, [huge_model()], np.zeros((1, 2, 2)), [torch.full((3, 24, 32), 0.5)])


def test_huge_finite_weights_are_refused_on_load(huge_bundle):
    with pytest.raises(bundle_io.BundleError, match="model 0 outputs non-finite values"):
        bundle_io.load(huge_bundle)


@pytest.mark.parametrize("consumer", ["info", "eval", "Upscale YUV420P8", "Upscale RGBS"])
def test_huge_finite_weights_are_refused_by_every_consumer(consumer, huge_bundle, tmp_path, capsys):
    """`stdo info`, `stdo eval` and the filter refuse the bundle in one line naming the model."""
    if consumer.startswith("Upscale"):
        fmt = getattr(vs, consumer.split()[1])
        clip = vs.core.std.BlankClip(format=fmt, width=32, height=24, length=1)
        with pytest.raises(vs.Error, match="model 0 outputs non-finite values"):
            vs.core.stdo.Upscale(clip, str(huge_bundle))
        return
    argv = ["info", huge_bundle] if consumer == "info" else ["eval", huge_bundle, blank(tmp_path / "c.vpy", 64, 48)]
    code, out, err = run(argv, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "model 0 outputs non-finite values" in err


def test_the_probe_costs_little_on_load():
    """Loading the generic tiny x4 bundle (the probe included) stays in milliseconds."""
    data = (shipped(preset("tiny", 4))).read_bytes()
    bundle_io.from_bytes(data)
    start = time.perf_counter()
    for _ in range(5):
        bundle_io.from_bytes(data)
    assert (time.perf_counter() - start) / 5 < 0.1


# --- input and option errors, before any work --------------------------------------------------

@pytest.mark.parametrize("option, value", [
    ("--time", "nan"), ("--time", "inf"), ("--frame-memory", "nan"), ("--focus", "nan"), ("--focus", "1e9"),
    ("--learning-rate", "nan"), ("--learning-rate", "inf"), ("--pretrain", "nan"), ("--epochs", "inf"),
    ("--context", "-1"),
])
def test_every_numeric_option_is_range_checked_at_settings_time(option, value, tmp_path, capsys):
    code, _, err = run(["train", tmp_path / "missing.vpy", "-o", tmp_path / "x.stdo", option, value], capsys)
    assert code == 1 and f"{option} must be a number from" in err and "internal error" not in err


@pytest.mark.parametrize("case", ["--lr with 9 frames, HR 6, --frames 0:4", "interlaced input",
                                  "interlaced --lr file", "1x1 input", "input smaller than x4"])
def test_bad_inputs_are_refused_before_the_work(case, tmp_path, capsys):
    hr = blank(tmp_path / "hr.vpy", 64, 48, n=6)
    argv = ["train", hr, "-o", tmp_path / "x.stdo", "--frames", "0:4", "--steps", "1", "--device", "cpu"]
    if case.startswith("--lr"):
        argv += ["--lr", blank(tmp_path / "lr.vpy", 16, 12, n=9)]
        says = "the HR is blank: all 6 frames sampled over it are black"  # counts differ: aligned, and blank
    elif case == "interlaced input":
        argv[1] = blank(tmp_path / "il.vpy", props=".std.SetFrameProps(_FieldBased=2)")
        says = "the input is interlaced (_FieldBased=2, top field first); deinterlace (or IVTC) it first"
    elif case == "interlaced --lr file":
        argv += ["--lr", blank(tmp_path / "lr.vpy", 16, 12, n=6, props=".std.SetFrameProps(_FieldBased=1)")]
        says = "the LR file is interlaced (_FieldBased=1"
    elif case == "1x1 input":
        argv[1] = blank(tmp_path / "one.vpy", 1, 1)
        says = "the input (1x1) is too small for x4"
    else:
        argv[1] = blank(tmp_path / "three.vpy", 3, 200)
        says = "the input (3x200) is too small for x4"
    code, _, err = run(argv, capsys)
    assert code == 1 and says in err, err
    assert sum(line.startswith("stdo train: error: ") for line in err.splitlines()) == 1  # one error line
    assert not (tmp_path / "x.stdo").exists()


def test_the_filter_refuses_interlaced_clips(small_bundle):
    clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=32, height=24, length=2).std.SetFrameProps(_FieldBased=2)
    with pytest.raises(vs.Error, match=r"interlaced \(_FieldBased=2\).*deinterlace \(or IVTC\) first"):
        vs.core.stdo.Upscale(clip, str(small_bundle))


# --- stdo eval -----------------------------------------------------------------------------------------

def test_eval_feeds_a_luma_bundle_the_luma_of_the_clip_it_builds(tmp_path, capsys):
    """With no --lr, eval downscales the RGB HR itself; a luma bundle gets that LR as YUV and is measured."""
    arch = replace(preset("tiny", 2), planes=1)
    model = WDSR(arch)
    path = write_bundle(tmp_path / "luma.stdo", [model], np.zeros((1, 2, 2)), [torch.full((3, 24, 32), 0.5)])
    code, out, err = run(["eval", path, blank(tmp_path / "c.vpy", 64, 48, n=2), "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)["results"]
    assert result["stdo"]["unseen"]["psnr_rgb"] > 20 and result["stdo"]["unseen"]["frames"] == 2


def test_eval_refuses_a_report_that_is_the_frames_out_folder_before_the_work(small_bundle, tmp_path, capsys):
    folder = tmp_path / "D"
    code, _, err = run(["eval", small_bundle, blank(tmp_path / "c.vpy", 64, 48, n=2), "--frames-out", folder,
                        "--report", folder], capsys)
    assert code == 1 and f"--report {folder} is the --frames-out folder" in err and "evaluating" not in err
    assert ".tmp" not in err


# --- bundle paths, export-onnx --------------------------------------------------------------------------

@pytest.mark.parametrize("path, says", [("", "no bundle path given"), ("/dev/zero", "is not a regular file"),
                                        ("fifo", "is not a regular file")])
def test_bundle_paths_that_are_not_files_are_named_as_such(path, says, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    for command in ("info", "export-onnx"):
        code, _, err = run([command, path] + ([tmp_path / "onnx"] if command == "export-onnx" else []), capsys)
        assert code == 1 and says in err, err


@pytest.mark.slow
def test_export_onnx_is_quiet_on_success(tmp_path):
    r = stdo("export-onnx", shipped(preset("tiny", 4)), tmp_path / "onnx")
    assert r.returncode == 0 and r.stderr == "" and (tmp_path / "onnx" / "chunk0.onnx").is_file()


# --- divergence and --time -----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.train
@pytest.mark.parametrize("every", [200, 2])
def test_a_diverging_run_stops_at_once_and_keeps_only_a_good_checkpoint(every, base, tmp_path):
    out = tmp_path / "d.stdo"
    start = time.monotonic()
    r = stdo("train", base, "-o", out, "--frames", "0:4", "--chunks", "2", "--steps", "400", "--device", "cpu",
             "--learning-rate", "1e6", "--checkpoint-every", every)
    line = last_line(r.stderr)
    assert r.returncode == 1 and "training diverged at step" in line and "lower --learning-rate (now 1e+06)" in line
    assert "of stage shared (loss nan)" in line and time.monotonic() - start < 60
    ckpt = Path(f"{out}.ckpt")
    if every == 200:   # nothing good was saved: nothing is left
        assert not ckpt.exists()
    else:
        state = torch.load(ckpt, weights_only=True)
        weights = state["current"]["models"][0].values()
        assert all(torch.isfinite(w).all() for w in weights) and "keeps the last good state" in line


@pytest.mark.slow
@pytest.mark.train
def test_a_time_run_stops_its_stages_by_their_time_within_its_steps(base, tmp_path):
    """--time 30s with at most 400 steps, from the process's start to the written bundle (start-up, decoding,
    training, passes, router fit and writing all count): each stage stops by its time or its steps, whichever comes
    first, and the bundle records how far it got."""
    out = tmp_path / "t.stdo"
    r = stdo("train", base, "-o", out, "--frames", "0:4", "--chunks", "2", "--device", "cpu", "--time", "30s",
             "--steps", "400")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "plan: shared 100 steps, then chunks 300 steps (2 models)" in r.stderr
    t = bundle_io.load(out).training
    assert t["time"] == 30 and t["steps"] == 400 and 1 <= t["router_steps"] <= 1000
    for name, most in (("shared", 100), ("chunks", 300)):
        stage = t["stages"][name]
        assert 0 < stage["budget"] < 30 and (stage["steps"] == most or stage["steps"] < most and stage["spent"] > 0.5)


# --- torchrun -----------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("argv, says, worker_exit", [
    (["train", "missing.vpy", "-o", "x.stdo", "--device", "cpu"], "input 'missing.vpy' does not exist", 1),
    (["train", "missing.vpy", "-o", "x.stdo", "--bogus"], "unrecognized arguments: --bogus", 2),
])
def test_a_user_error_under_torchrun_is_said_once(argv, says, worker_exit, tmp_path):
    """One line, once (rank 0), whatever torchrun adds; a usage error exits its worker with 2."""
    r = subprocess.run([*TORCHRUN, *argv], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode != 0
    assert r.stderr.count(says) == 1, r.stderr[-3000:]
    assert f"exitcode  : {worker_exit}" in r.stderr
