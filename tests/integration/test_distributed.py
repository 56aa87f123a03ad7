"""Training on two processes under torchrun (gloo on CPU): the one-process run's bundle, resumable after a kill."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vs_stdo.core import bundle as bundle_io

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "vs_stdo"]
ARGS = ["--frames", "0:6", "--chunks", "2", "--steps", "40", "--checkpoint-every", "4", "--seed", "3", "--scale", "4",
        "--patch", "32x34", "--batch", "8", "--device", "cpu"]


def train(cmd: list, bikes: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    r = subprocess.run([*cmd, "train", str(bikes), "-o", str(out), *ARGS, *extra], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (torchrun starts its workers in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def eval_psnr(bundle: Path, bikes: Path) -> float:
    r = subprocess.run([sys.executable, "-m", "vs_stdo", "eval", str(bundle), str(bikes), "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)["results"]["stdo"]["train"]["psnr_rgb"]


@pytest.mark.train
@pytest.mark.slow
def test_two_processes_resume_after_a_kill_and_match_one_process(bikes, tmp_path):
    one, two = tmp_path / "one.stdo", tmp_path / "two.stdo"
    train([sys.executable, "-m", "vs_stdo"], bikes, one)

    ckpt = Path(str(two) + ".ckpt")
    killed = subprocess.Popen([*TORCHRUN, "train", str(bikes), "-o", str(two), *ARGS], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not ckpt.exists():
        assert killed.poll() is None, killed.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.05)
    for pid in [killed.pid, *descendants(killed.pid)]:   # torchrun and both workers at once
        os.kill(pid, signal.SIGKILL)
    killed.communicate()
    assert not two.exists()

    r = train(TORCHRUN, bikes, two, "--resume")
    assert "resuming from" in r.stderr and not ckpt.exists()
    a, b = bundle_io.load(one), bundle_io.load(two)
    assert (a.training.processes, b.training.processes) == (1, 2)
    assert (a.labels == b.labels).mean() >= 0.95
    for wa, wb in zip(a.weights, b.weights, strict=True):   # the same steps, up to float summation order
        assert all(torch.allclose(wa[k], wb[k], atol=1e-2) for k in wa)
    assert np.isclose(eval_psnr(one, bikes), eval_psnr(two, bikes), atol=0.1)
