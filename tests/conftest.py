"""Shared fixtures: a real clip and a tiny trained bundle (hand-built bundles: tests/support/bundles.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import vapoursynth as vs

from scripts import clips
from vs_stdo.core.video import hr_lr_pair, open_clip, select_frames
from vs_stdo.train.job import Job, run_job
from vs_stdo.train.settings import Settings

core = vs.core


@pytest.fixture(scope="session")
def clip_path() -> Path:
    return clips.fetch(clips.DEFAULT)


@pytest.fixture(scope="session")
def bikes() -> Path:
    """A second real clip, 640x272: at x4 a small LR (160x68) that trains fast."""
    return clips.fetch("bikes.mp4")


@pytest.fixture(scope="session")
def pair(clip_path):
    """HR and LR (x4, RGBS) of the first 6 frames of the real default clip."""
    return hr_lr_pair(select_frames(open_clip(clip_path), "0:6"), 4)


@pytest.fixture(scope="session")
def tiny_bundle(clip_path, tmp_path_factory) -> Path:
    """A real (very short) training job on the `pair` frames: k=2 chunk models, 40 steps, half of them on the
    chunk models so that the models differ enough for the routing tests to tell them apart."""
    out = tmp_path_factory.mktemp("bundle") / "tiny.stdo"
    settings = Settings(scale=4, chunks=2, steps=40, pretrain=0.5, checkpoint_every=1000, device="cpu")
    run_job(Job(str(clip_path), str(out), settings, frames="0:6"))
    return out
