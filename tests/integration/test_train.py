"""The trainer end to end on a real clip: modes, scorers, held-out frames, --lr, resume, bad input."""
from __future__ import annotations

import itertools
import math
import random
import re
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

from scripts.encode import ffmpeg_exe
from tests.support.cli import STDO, last_line, wait_for
from tests.support.cli import stdo as stdo_process
from vs_stdo.cli import main
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.clip_record import ClipRecord
from vs_stdo.core.training_record import StageRecord
from vs_stdo.core.video import frame_array, open_pair
from vs_stdo.train.checkpoint import Checkpoint
from vs_stdo.train.chunks import AUTO_TOLERANCE
from vs_stdo.train.data import Patches, all_items, load_frames
from vs_stdo.train.deadline import MARGIN, ROUTER_SHARE, Deadline
from vs_stdo.train.loop import fit
from vs_stdo.train.run import train as run_train
from vs_stdo.train.scoring import bicubic_psnr
from vs_stdo.train.target import WholeScale, patch_psnr
from vs_stdo.train.settings import Settings
from vs_stdo.train.stages import check_data, plan_stages
from vs_stdo.train.world import World

# bikes.mp4 is 640x272: at x4 the LR is 160x68, a 5x2 grid of 32x34 patches.
TINY = ["--scale", "4", "--patch", "32x34", "--batch", "8", "--device", "cpu"]


def stdo(*args: object) -> int:
    return main([str(a) for a in args])


def moved(state: dict[str, torch.Tensor]) -> bool:
    """Whether a model differs from a fresh one (which is plain bicubic: zero tail and skip)."""
    return bool(state["tail.weight"].abs().sum() > 0)


@pytest.fixture(scope="module")
def lr_encode(bikes, tmp_path_factory) -> Path:
    """A real LR encode of the whole clip (an LR of other length is refused): ffmpeg's bicubic scaler, then x264
    4:2:0."""
    out = tmp_path_factory.mktemp("lr") / "bikes_lr.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(bikes), "-vf",
                    "scale=160:68:flags=bicubic", "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", str(out)],
                   check=True)
    return out


@pytest.fixture(scope="module")
def chunks_bundle(bikes, tmp_path_factory) -> Path:
    """STDO (k=2) with the self scorer, frames 0:6, every 3rd frame held out, labels of the split (the chunks)."""
    out = tmp_path_factory.mktemp("chunks") / "chunks.stdo"
    assert stdo("train", bikes, "-o", out, "--frames", "0:6", "--chunks", "2", "--steps", "24", "--score", "self",
                "--score-steps", "20", "--holdout", "3", "--labels", "split", *TINY) == 0
    return out


@pytest.mark.slow
@pytest.mark.train
def test_chunks_mode_with_self_scorer_and_held_out_frames(chunks_bundle, bikes):
    b = bundle_io.load(chunks_bundle)
    t = b.training
    assert b.chunks == 2 and t.mode == "chunks" and t.scorer == "self" and t.labels == "split"
    assert t.heldout == [2, 5] and t.train_patches == 4 * 10
    train = b.labels[[0, 1, 3, 4]]
    sizes = np.bincount(train.ravel(), minlength=2).tolist()
    error = 10 ** (-b.psnr[[0, 1, 3, 4]].astype(np.float64) / 10)            # chunks of equal squared error
    assert abs(error[train == 0].sum() - error[train == 1].sum()) <= error.max() and sizes[0] < sizes[1]
    assert b.psnr[b.labels == 0].max() <= b.psnr[b.labels == 1].min()     # chunk 0 is the hardest, held-out too
    # a shared model on all training patches for a quarter of the steps, then both chunk models on their chunks
    assert t.stages == {"shared": StageRecord(6, [40]), "chunks": StageRecord(18, sizes)}
    assert t.total_steps == 24
    assert all(moved(w) for w in b.weights)
    assert not torch.equal(b.weights[0]["tail.weight"], b.weights[1]["tail.weight"])
    # the self scorer is a (briefly) trained model: not bicubic, but it ranks difficulty much like it
    pair = open_pair(bikes, None, "0:6", 4)
    hr, lr = pair.hr, pair.lr
    bic = np.stack([bicubic_psnr(torch.from_numpy(frame_array(lr.get_frame(n))).clamp(0, 1),
                                 torch.from_numpy(frame_array(hr.get_frame(n))).clamp(0, 1), b.grid, 4).numpy()
                    for n in range(6)]).reshape(b.psnr.shape)
    assert np.abs(b.psnr - bic).max() > 0.05
    ranks = [np.argsort(np.argsort(x.ravel())) for x in (b.psnr, bic)]
    assert np.corrcoef(*ranks)[0, 1] > 0.9


@pytest.mark.slow
@pytest.mark.train
def test_joint_mode_from_a_vpy_scored_by_a_bundle(chunks_bundle, bikes, tmp_path):
    vpy = tmp_path / "bikes.vpy"
    vpy.write_text(f"import vapoursynth as vs\nvs.core.bs.VideoSource({str(bikes)!r}).set_output()\n")
    out = tmp_path / "joint.stdo"
    assert stdo("train", vpy, "-o", out, "--frames", "0:6", "--mode", "joint", "--steps", "10",
                "--score", chunks_bundle, *TINY) == 0
    b = bundle_io.load(out)
    t = b.training
    assert b.chunks == 1 and t.scorer == "bundle:chunks.stdo" and t.focus == 0.5
    assert (t.loss, t.sampling) == ("mse", "unbiased")  # the joint defaults, "auto" loss resolved
    assert len(b.labels) == 0 and b.clip.frames == 6 and moved(b.weights[0])  # one model: no labels stored
    # the shared model on all 60 training patches for a quarter of the steps, then the same model on all
    # of them, drawn by the scorer's error
    assert t.stages == {"shared": StageRecord(2, [60]), "joint": StageRecord(8, [60])}
    # the scores are the scorer bundle's per-patch PSNR, upscaled by the real filter (against the HR
    # as training keeps it, 8-bit RGB); a one-model bundle stores none, so a two-model run shows them
    assert stdo("train", vpy, "-o", out, "--force", "--frames", "0:6", "--chunks", "2", "--steps", "4",
                "--score", chunks_bundle, *TINY) == 0
    b = bundle_io.load(out)
    assert b.chunks == 2 and b.training.scorer == "bundle:chunks.stdo"
    pair = open_pair(bikes, None, "0:6", 4)
    hr, lr = pair.hr, pair.lr
    sr = vs.core.stdo.Upscale(lr, str(chunks_bundle))
    for n in (0, 5):
        hr8 = np.clip(frame_array(hr.get_frame(n)) * 255 + 0.5, 0, 255).astype(np.uint8)
        want = patch_psnr(torch.from_numpy(frame_array(sr.get_frame(n))), torch.from_numpy(hr8 / 255), b.grid, 4)
        np.testing.assert_allclose(b.psnr[n].ravel(), want.numpy(), atol=0.01)


@pytest.mark.slow
@pytest.mark.train
def test_single_mode_on_a_real_lr_encode(bikes, lr_encode, tmp_path):
    out = tmp_path / "single.stdo"
    assert stdo("train", bikes, "-o", out, "--lr", lr_encode, "--frames", "0:4", "--mode", "single",
                "--epochs", "2", "--init", "none", *TINY) == 0   # 10 steps: learnt from bicubic, not the generic start
    b = bundle_io.load(out)
    assert b.chunks == 1 and b.training.scorer == "bicubic" and b.clip.lr == "bikes_lr.mp4"
    assert b.training.stages == {"single": StageRecord(steps=10, patches=[40])}    # 2 epochs of 40 patches, batch 8
    # it learnt the encode: on those frames it beats bicubic through the filter
    pair = open_pair(bikes, lr_encode, "0:4", 4)
    hr, lr = pair.hr, pair.lr
    frame = [torch.from_numpy(frame_array(c.get_frame(1))).clamp(0, 1)
             for c in (hr, vs.core.stdo.Upscale(lr, str(out)), lr.resize.Bicubic(640, 272))]
    assert torch.mean((frame[1] - frame[0]) ** 2) < torch.mean((frame[2] - frame[0]) ** 2)


@pytest.mark.slow
@pytest.mark.train
def test_scale_3_on_a_source_that_does_not_divide(bikes, tmp_path):
    out = tmp_path / "x3.stdo"
    assert stdo("train", bikes, "-o", out, "--frames", "0:2", "--steps", "4", "--chunks", "3", "--scale", "3",
                "--patch", "40x30", "--batch", "4", "--device", "cpu") == 0
    b = bundle_io.load(out)
    assert (b.scale, b.clip.width, b.clip.height, b.labels.shape) == (3, 213, 90, (2, 3, 6))
    lr = open_pair(bikes, None, "0:2", 3).lr
    up = vs.core.stdo.Upscale(lr, str(out))
    assert (up.width, up.height) == (639, 270)       # 640x272 cropped to a multiple of 3


def checkpoint_progress(path: Path) -> tuple[int, int] | None:
    """(finished stages, steps of the running stage) in a checkpoint file, or None if there is none."""
    try:
        state = torch.load(path, weights_only=True)
    except FileNotFoundError:
        return None
    return len(state["finished"]), state["current"]["step"] if state["current"] else 0


RESUMABLE = ["--frames", "0:4", "--chunks", "2", "--steps", "60", "--checkpoint-every", "3", "--seed", "7", *TINY]


@pytest.fixture(scope="module")
def uninterrupted(bikes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "whole.stdo"
    assert stdo("train", bikes, "-o", out, *RESUMABLE) == 0
    return out


def assert_same_bundle(a: Path, b: Path) -> None:
    """Same labels and (to float tolerance) the same weights."""
    x, y = bundle_io.load(a), bundle_io.load(b)
    assert np.array_equal(x.labels, y.labels)
    for wa, wb in zip(x.weights, y.weights, strict=True):
        assert wa.keys() == wb.keys()
        assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


@pytest.mark.slow
@pytest.mark.train
def test_resume_after_kill_and_ctrl_c_gives_the_uninterrupted_weights(bikes, uninterrupted, tmp_path, capsys):
    args = RESUMABLE
    out = tmp_path / "cut.stdo"
    ckpt = Path(str(out) + ".ckpt")
    cmd = [sys.executable, "-m", "vs_stdo.cli", "train", str(bikes), "-o", str(out), *args]

    killed = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(killed, lambda: checkpoint_progress(ckpt) is not None)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    at_kill = checkpoint_progress(ckpt)
    assert not out.exists() and at_kill is not None and at_kill < (2, 0)

    interrupted = subprocess.Popen([*cmd, "--resume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(interrupted, lambda: (checkpoint_progress(ckpt) or (0, 0)) >= (1, 3))   # shared model done
    interrupted.send_signal(signal.SIGINT)
    _, err = interrupted.communicate()
    assert interrupted.returncode == 130, err.decode()
    assert b"resuming from" in err and b"interrupted" in err
    assert not out.exists()
    state = torch.load(ckpt, weights_only=True)
    assert "shared" in state["finished"]

    capsys.readouterr()
    assert stdo("train", bikes, "-o", out, *args, "--resume") == 0
    err = capsys.readouterr().err
    assert "resuming from" in err and not ckpt.exists()
    # finished stages are not trained again; the running one restarts at its checkpointed step
    assert not any(f"{name}:" in err for name in state["finished"])
    if state["current"]:
        assert re.search(rf"{state['current']['stage']}:.*\| {state['current']['step']}/\d+ \[00:00<\?", err)
    assert_same_bundle(uninterrupted, out)


@pytest.mark.slow
@pytest.mark.train
def test_sigkill_at_random_points_then_resume_finishes_with_the_uninterrupted_weights(bikes, uninterrupted, tmp_path):
    """Killed at random moments (start-up, then random points of training: mid-step, mid-checkpoint, between
    stages), rerun with --resume each time. Points are drawn in training progress, not seconds, so they hit a
    running job on fast and slow machines alike."""
    out = tmp_path / "killed.stdo"
    ckpt = Path(str(out) + ".ckpt")
    cmd = [sys.executable, "-m", "vs_stdo.cli", "train", str(bikes), "-o", str(out), *RESUMABLE, "--resume"]
    rng = random.Random(11)
    points = sorted((rng.randint(0, 1), rng.randint(0, 7)) for _ in range(5))   # (finished stages, step)
    kills = 0
    for point in [None, *points]:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if point is None:
            time.sleep(rng.uniform(0.2, 1.0))                                      # during start-up
        else:
            while proc.poll() is None and (checkpoint_progress(ckpt) or (0, 0)) < point:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.2))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.communicate()
    final = subprocess.run(cmd, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr[-2000:]
    assert kills >= 4, f"only {kills} of {1 + len(points)} kills hit a running job"
    assert out.exists() and not ckpt.exists()
    assert not list(tmp_path.glob("*.tmp"))
    assert_same_bundle(uninterrupted, out)


@pytest.mark.slow
@pytest.mark.train
def test_easy_preset_gives_the_easiest_chunks_a_smaller_model(bikes, tmp_path):
    out = tmp_path / "adaptive.stdo"
    assert stdo("train", bikes, "-o", out, "--frames", "0:3", "--chunks", "3", "--steps", "12", "--easy-preset",
                "nano", "--easy-chunks", "2", *TINY) == 0
    b = bundle_io.load(out)
    assert [(a.blocks, a.channels) for a in b.archs] == [(4, 16), (1, 8), (1, 8)]
    assert b.training.easy_preset == "nano" and all(moved(w) for w in b.weights)
    clip = vs.core.std.BlankClip(format=vs.RGBS, width=b.grid.width, height=b.grid.height, length=1, color=[0.5] * 3)
    hr = frame_array(vs.core.stdo.Upscale(clip, str(out), route="chunk:2").get_frame(0))
    assert hr.shape == (3, 4 * b.grid.height, 4 * b.grid.width) and np.isfinite(hr).all()


@pytest.mark.slow
@pytest.mark.train
def test_chunks_auto_keeps_the_models_it_measured_and_the_bundle_plays(bikes, tmp_path, capsys):
    out = tmp_path / "auto.stdo"
    assert stdo("train", bikes, "-o", out, "--frames", "0:4", "--chunks", "auto", "--steps", "40",
                "--learning-rate", "0.01", *TINY) == 0
    b = bundle_io.load(out)
    auto = b.training.auto
    assert b.training.chunks == 0 and len(auto.psnr) == 4 and 1 <= len(auto.kept) == b.chunks <= 4
    assert auto.psnr == sorted(auto.psnr)                             # each added model can only help
    assert auto.psnr[b.chunks - 1] >= auto.psnr[-1] - AUTO_TOLERANCE
    assert len(b.thresholds) == b.chunks - 1 and len(b.labels) == (4 if b.chunks > 1 else 0)
    assert b.labels.size == 0 or int(b.labels.max()) < b.chunks
    assert (b.router is not None) == (b.chunks > 1)
    assert f"--chunks auto kept {b.chunks} of 4 chunk models" in capsys.readouterr().out
    assert stdo("info", out) == 0 and "--chunks auto kept" in capsys.readouterr().out
    lr = vs.core.std.BlankClip(format=vs.RGBS, width=b.grid.width, height=b.grid.height, length=1)
    assert vs.core.stdo.Upscale(lr, str(out), route="chunk:0").get_frame(0).width == 4 * b.grid.width


@pytest.fixture(scope="module")
def wrong_size_lr(bikes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bad") / "lr_150.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(bikes), "-frames:v", "2", "-vf", "scale=150:68",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


@pytest.mark.parametrize("args, status, message", [
    (["{missing}"], 1, "input '{missing}' does not exist"),
    (["{bikes}", "--lr", "{missing}"], 1, "LR file '{missing}' does not exist"),
    (["{bikes}", "--lr", "{wrong_lr}"], 1, "times smaller than the HR's (640x272): beyond x4, the largest scale"),
    (["{bikes}", "--chunks", "21"], 1, "--chunks 21 is more than the 20 training patches"),
    (["{bikes}", "--holdout", "2", "--chunks", "11"], 1, "--chunks 11 is more than the 10 training patches"),
    (["{bikes}", "--holdout", "1"], 2, "would hold out every frame"),
    (["{bikes}", "--score", "{missing}"], 1, "bundle '{missing}' does not exist"),
    (["{bikes}", "--mode", "single", "--score", "shared"], 2, "--score shared scores with the shared model of --mode"),
    (["{bikes}", "--mode", "joint", "--focus", "-1"], 2, "--focus must be a number from 0 to 4"),
    (["{bikes}", "--min-chunk", "2"], 2, "--min-chunk is auto or a share of an equal chunk in [0, 1], got 2.0"),
    (["{bikes}", "--frames", "300:400"], 1, "selects no frames of a 250-frame clip"),
    (["{bikes}", "--patch", "200x34"], 1, "smaller than one patch"),
    (["{bikes}", "--mode", "joint", "--easy-preset", "nano"], 2, "--easy-preset needs --mode chunks"),
    (["{bikes}", "--easy-preset", "nano", "--easy-chunks", "4"], 2, "1 <= --easy-chunks < --chunks"),
])
@pytest.mark.slow
@pytest.mark.train
def test_bad_input_is_a_clear_error(args, status, message, bikes, wrong_size_lr, tmp_path, capsys):
    """1 for what is wrong with the files, 2 for a command-line value that cannot work (a usage error)."""
    names = {"bikes": bikes, "missing": tmp_path / "none.mp4", "wrong_lr": wrong_size_lr}
    frames = [] if "--frames" in args else ["--frames", "0:2"]
    out = tmp_path / "x.stdo"
    assert main(["train", *TINY, *(a.format(**names) for a in args), *frames, "-o", str(out)]) == status
    err = capsys.readouterr().err
    assert message.format(**names) in err, err
    assert not out.exists()


def test_unsupported_scale_is_refused(bikes, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", str(bikes), "-o", "x.stdo", "--scale", "5"])
    assert e.value.code == 2 and "invalid choice: 5 (choose from 2, 3, 4)" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.train
def test_scorer_bundle_of_another_scale_and_stale_checkpoints_are_refused(chunks_bundle, bikes, tmp_path, capsys):
    base = ["train", str(bikes), "--frames", "0:2", *TINY]
    assert main([*base, "-o", str(tmp_path / "a.stdo"), "--scale", "2", "--score", str(chunks_bundle)]) == 1
    assert "is x4 but training is x2" in capsys.readouterr().err
    ckpt = tmp_path / "b.stdo.ckpt"
    torch.save({"run": "someone else", "finished": {}, "current": None}, ckpt)
    assert main([*base, "-o", str(tmp_path / "b.stdo")]) == 1
    assert "add --resume to continue it, or delete the file" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "b.stdo"), "--resume"]) == 1
    assert "belongs to a different run" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.train
def test_running_out_of_device_memory_in_training_names_the_fix(bikes, tmp_path, capsys, monkeypatch):
    def full(self, x, crop=0):               # what torch raises on a full GPU (none here to fill)
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")

    monkeypatch.setattr("vs_stdo.core.models.WDSR.unshuffled", full)
    assert stdo("train", bikes, "-o", tmp_path / "oom.stdo", "--frames", "0:2", "--mode", "single", "--steps", "5",
                *TINY) == 1
    err = capsys.readouterr().err
    assert "ran out of memory training single at --batch 8: rerun with a smaller --batch" in err
    assert not (tmp_path / "oom.stdo").exists()


@pytest.mark.slow
@pytest.mark.train
def test_chunk_models_continue_the_shared_training(pair, tmp_path):
    """The chunk phase continues the shared model's run: one cosine schedule over the whole budget, and each
    chunk model starts from the shared weights with the shared Adam state (its step count goes on)."""
    hr, lr = pair
    frames = load_frames(hr, lr)
    s = Settings(scale=4, chunks=2, steps=20, pretrain=0.5, batch=8, patch_width=32, patch_height=34)
    grid, s = check_data(s, lr.width, lr.height, len(frames))
    items = all_items(len(frames), grid.count)
    chunk = torch.arange(len(items)) % 2
    shared, chunks = plan_stages(s, items, chunk, torch.ones(len(items)))
    assert (shared.steps, chunks.steps, chunks.first, chunks.init) == (10, 10, 10, "shared")
    whole = [shared.learning_rate(s, t) for t in range(10)] + [chunks.learning_rate(s, t) for t in range(10)]
    assert whole == pytest.approx([s.learning_rate * 0.5 * (1 + math.cos(math.pi * t / 20)) for t in range(20)])
    patches = Patches(frames, grid, WholeScale(grid, s.scale, 4))
    ckpt = Checkpoint(tmp_path / "x.ckpt", "run")
    first = fit(shared, None, patches, s, ckpt, World())
    second = fit(chunks, first, patches, s, ckpt, World())
    steps = [int(next(iter(opt["state"].values()))["step"]) for opt in second["opts"]]
    assert all(10 < n <= 20 for n in steps) and sum(steps) >= 2 * 10 + 10   # each step trains one model or both
    start = first["models"][0]
    assert all(any(not torch.equal(m[k], start[k]) for k in m) for m in second["models"])




def ticks(start: float = 0.0, stop: float = math.inf):
    """A clock that moves one second each time it is read (a training step reads it once, a checkpoint once more),
    so that time runs the same however busy the machine is; read at `stop`, it interrupts, as a second Ctrl-C
    does."""
    count = itertools.count(start, 1.0)

    def clock() -> float:
        now = next(count)
        if now >= stop:
            raise KeyboardInterrupt("interrupted at once")
        return now

    return clock


@pytest.fixture(scope="module")
def single_stage(pair):
    """A one-model stage of at most 100 steps on the real `pair` frames, its settings and patches."""
    hr, lr = pair
    frames = load_frames(hr, lr)
    s = Settings(scale=4, mode="single", steps=100, batch=8, patch_width=32, patch_height=34, checkpoint_every=3)
    grid, s = check_data(s, lr.width, lr.height, len(frames))
    (stage,) = plan_stages(s, all_items(len(frames), grid.count), torch.zeros(1), torch.ones(1))
    return stage, s, Patches(frames, grid, WholeScale(grid, s.scale, s.train_context()))


@pytest.mark.slow
@pytest.mark.train
def test_a_time_budget_ends_a_stage_and_a_resumed_stage_goes_on_from_the_time_it_had_used(single_stage, tmp_path):
    """A stage of 100 steps with 20 s ends by its time, before a step would pass it. Interrupted and resumed, it goes
    on from its checkpointed step and the share of its time it had used; the time it is given anew pays for the
    rest."""
    stage, s, patches = single_stage
    timed = replace(stage, budget=20.0)
    whole = fit(timed, None, patches, s, Checkpoint(tmp_path / "whole.ckpt", "run"), World(), ticks())
    assert 10 <= whole["steps"] < 20 and whole["budget"] == 20.0
    assert whole["spent"] < 1 <= whole["spent"] + 1 / 20              # one more step would have passed its end
    path = tmp_path / "cut.ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit(timed, None, patches, s, Checkpoint(path, "run"), World(), ticks(stop=12))
    cut = torch.load(path, weights_only=True)["current"]
    assert cut["step"] in (6, 9) and 0.3 < cut["spent"] < 0.6         # checkpointed every 3 steps

    def resumed() -> Checkpoint:
        ckpt = Checkpoint(path, "run")
        ckpt.open(resume=True)
        return ckpt

    with pytest.raises(KeyboardInterrupt):
        fit(timed, None, patches, s, resumed(), World(), ticks(stop=8))
    later = torch.load(path, weights_only=True)["current"]
    assert later["step"] > cut["step"] and later["spent"] > cut["spent"]  # a few seconds more, not from 0
    rest = fit(timed, None, patches, s, resumed(), World(), ticks())
    assert rest["steps"] > later["step"] and rest["spent"] < 1 <= rest["spent"] + 1 / 20
    assert fit(stage, None, patches, s, Checkpoint(tmp_path / "s.ckpt", "run"), World(), ticks())["steps"] == 100


@pytest.mark.slow
@pytest.mark.train
def test_a_time_run_ends_its_stages_and_router_fit_by_their_shares(pair, tmp_path):
    """--time with at most 2000 steps: each stage and the router fit stop by the time they were given, and the
    training record says so (the clock moves one second a read; the run is given 100 s)."""
    hr, lr = pair
    frames = load_frames(hr, lr)
    s = Settings(scale=4, chunks=2, batch=8, patch_width=32, patch_height=34, device="cpu", time=100)
    clock = ticks()
    clip = ClipRecord(lr.width, lr.height, len(frames), 25, 1, "pair")
    b = run_train(frames, s, tmp_path / "t.stdo", clip, deadline=Deadline(clock() + 100, clock))
    stages = b.training.stages
    assert stages["shared"].steps < 500 and stages["chunks"].steps < 1500 and b.training.steps == 2000
    for record in stages.values():
        assert record.spent < 1 <= record.spent + 1.5 / record.budget
    # the shared stage had a quarter of what was left; the chunks stage what was left then, less the two label
    # passes (as long as the scoring pass: a second) and the router's share of --time
    shared, chunks = stages["shared"].budget, stages["chunks"].budget
    assert 18 < shared < 25 and chunks < 100 - MARGIN - shared - 2 - ROUTER_SHARE * 100
    assert 1 <= b.training.router_steps == b.router.info.steps < 1000
    assert bundle_io.load(tmp_path / "t.stdo").training.stages == stages


REAL = """\
import vapoursynth as vs
c = vs.core.bs.VideoSource({path!r})[:9]
c.resize.Bicubic(256, 144, format=vs.RGB24, matrix_in_s="709").set_output()
"""


@pytest.fixture
def base(tmp_path: Path, bikes: Path) -> Path:
    """A 256x144 cut (9 frames) of a real clip, as a .vpy."""
    path = tmp_path / "base.vpy"
    path.write_text(REAL.format(path=str(bikes)))
    return path


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
    wait_for(p, ckpt.exists)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "rerun with --resume" in err, err[-2000:]
    cut = torch.load(ckpt, weights_only=True)
    assert cut["settings"]["steps"] == Settings.steps and (cut["current"] is None or cut["current"]["spent"] > 0)
    plain = stdo_process(*cmd)
    assert plain.returncode == 1 and "add --resume to continue it" in plain.stderr
    other = stdo_process(*cmd, "--resume", "--chunks", "3")
    assert other.returncode == 1 and "--chunks 2 -> 3" in last_line(other.stderr)
    assert "plan:" not in plain.stderr + other.stderr           # refused before decoding
    done = stdo_process(*cmd, "--resume", "--weights", "int8", "--checkpoint-every", "7")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming from" in done.stderr and not ckpt.exists()
    b = bundle_io.load(out)
    assert b.weight_storage == "int8" and all(stage.spent is not None for stage in b.training.stages.values())


@pytest.mark.slow
@pytest.mark.train
@pytest.mark.parametrize("every", [200, 2])
def test_a_diverging_run_stops_at_once_and_keeps_only_a_good_checkpoint(every, base, tmp_path):
    out = tmp_path / "d.stdo"
    r = stdo_process("train", base, "-o", out, "--frames", "0:4", "--chunks", "2", "--steps", "400", "--device",
                     "cpu", "--learning-rate", "1e6", "--checkpoint-every", every)
    line = last_line(r.stderr)
    assert r.returncode == 1 and "training diverged at step" in line and "lower --learning-rate (now 1e+06)" in line
    assert "of stage shared (loss nan)" in line
    step = int(re.search(r"diverged at step (\d+)", line).group(1))
    assert step < 100 and "plan: shared 100 steps" in r.stderr  # at once, before the stage's 100 steps end
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
    r = stdo_process("train", base, "-o", out, "--frames", "0:4", "--chunks", "2", "--device", "cpu", "--time",
                     "30s", "--steps", "400")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "plan: shared 100 steps, then chunks 300 steps (2 models)" in r.stderr
    t = bundle_io.load(out).training
    assert t.time == 30 and t.steps == 400 and 1 <= t.router_steps <= 1000
    for name, most in (("shared", 100), ("chunks", 300)):
        stage = t.stages[name]
        assert 0 < stage.budget < 30 and (stage.steps == most or stage.steps < most and stage.spent > 0.5)
