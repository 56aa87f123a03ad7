"""Surviving interruptions: the checkpoint on disk, Ctrl-C/SIGTERM as a request to stop, and running
out of device memory as an error that names the fix."""
from __future__ import annotations

import contextlib
import hashlib
import pickle
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..core.clip_record import ClipRecord
from ..core.files import atomic_write
from .settings import AUTO, Settings, flag_of

# Settings a resumed run may change: its time (--time counts from each process's start), how often it saves, where
# it runs and how the bundle stores the weights. A checkpoint resumes whatever they are.
NOT_IDENTITY = ("time", "checkpoint_every", "device", "weights")
INPUT = {"source": "input", "frames_selected": "--frames", "lr": "--lr", "kernel": "--kernel"}  # clip info -> name


def run_id(lr_frames: torch.Tensor | np.ndarray) -> str:
    """Identifies a run's data (its LR frames' fingerprints), so a checkpoint only resumes on the same frames."""
    return hashlib.sha256(np.asarray(lr_frames).tobytes()).hexdigest()[:16]


def input_of(clip: ClipRecord) -> dict:
    """What a run reads, as its checkpoint records it: the input's name, the frames, the LR and the kernel."""
    return {k: getattr(clip, k) for k in INPUT}


def differences(stored: dict, s: Settings, inputs: dict) -> list[str]:
    """The settings and inputs in which a run differs from the one a checkpoint was written by (`stored`: its
    "settings" and "input"), as "--chunks 4 -> 2"."""
    now, was = asdict(s), stored["settings"]
    out = []
    if (was.get("patch_width"), was.get("patch_height")) != (s.patch_width, s.patch_height):
        out.append(f"--patch {was.get('patch_width')}x{was.get('patch_height')} -> {s.patch_width}x{s.patch_height}")
    for name, value in now.items():
        if name not in NOT_IDENTITY and not name.startswith("patch_") and was.get(name) != value:
            out.append(f"{flag_of(name)} {show(name, was.get(name))} -> {show(name, value)}")
    out += [f"{INPUT[k]} {show(k, stored['input'].get(k))} -> {show(k, v)}" for k, v in inputs.items()
            if stored["input"].get(k) != v]
    return out


def show(name: str, value: object) -> str:
    """A setting's value as the command line writes it."""
    if name == "chunks" and value == AUTO:
        return "auto"
    return f"{value:g}" if isinstance(value, float) else str(value)


def read(path: Path) -> dict:
    """A checkpoint's state; raises a clear error when the file is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise ValueError(f"cannot read checkpoint {path} ({e}); delete it and start over") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a checkpoint of vs-stdo; delete it and start over")
    return state


def check(path: Path, s: Settings, inputs: dict, resume: bool, say: bool = True) -> dict | None:
    """Before any frame is decoded: refuse to start over an unfinished run's checkpoint, and refuse to resume
    one written with other settings or inputs, naming them. Returns the checkpoint's state to resume (None: none)."""
    if not path.is_file():
        if resume and say:
            print(f"no checkpoint at {path}; starting from the beginning", file=sys.stderr)
        return None
    if not resume:
        raise ValueError(f"{path} holds the checkpoint of an unfinished run; add --resume to continue it, "
                         f"or delete the file to start over")
    state = read(path)
    if not isinstance(state.get("settings"), dict) or not isinstance(state.get("input"), dict):
        raise ValueError(f"checkpoint {path} belongs to a different run (it records no settings: an older "
                         f"vs-stdo wrote it); delete it or drop --resume")
    changed = differences(state, s, inputs)
    if changed:
        raise ValueError(f"checkpoint {path} was written with other settings: {', '.join(changed)}; rerun with "
                         f"the checkpoint's settings to resume, or delete it to start over")
    return state


class Checkpoint:
    """Training state on disk: the settings and input it was started with, finished stage models and the running
    stage's full state. Only the main process writes it (`writer`); every process reads it on resume."""

    def __init__(self, path: Path, run_id: str, writer: bool = True, settings: Settings | None = None,
                 inputs: dict | None = None) -> None:
        self.path, self.run_id, self.writer = path, run_id, writer
        self.settings, self.inputs = settings, inputs or {}
        self.state: dict = {"run": run_id, "settings": asdict(settings) if settings else {}, "input": self.inputs,
                            "finished": {}, "current": None}

    def open(self, resume: bool) -> None:
        """Load the checkpoint when resuming (refusing one of another run); refuse to overwrite one otherwise."""
        if self.settings is None:  # a checkpoint without settings to compare (the loop's tests): the run id only
            state = read(self.path) if resume and self.path.is_file() else None
        else:
            state = check(self.path, self.settings, self.inputs, resume, say=self.writer)
        if state is None:
            return
        if state.get("run") != self.run_id:
            raise ValueError(f"checkpoint {self.path} belongs to a different run: the decoded frames differ from "
                             f"those it was trained on (was the input changed?); delete it or drop --resume")
        self.state = state
        if self.writer:
            print(f"resuming from {self.path}", file=sys.stderr)

    def save(self) -> None:
        if not self.writer:
            return
        with atomic_write(self.path) as f:
            torch.save(self.state, f)

    def remove(self) -> None:
        if self.writer:
            self.path.unlink(missing_ok=True)


class StopRequest:
    """While active, the first SIGINT (Ctrl-C) or SIGTERM only sets `requested`; a second SIGINT
    interrupts at once. Inactive outside the main thread, where signals cannot be caught."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> "StopRequest":
        self.requested = False
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self.handle) for sig in self.SIGNALS}
        return self

    def handle(self, signum: int, frame: object) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt("interrupted twice; progress since the last checkpoint is lost")
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def out_of_memory_is_an_error(device: torch.device, batch: int, stage: str) -> Iterator[None]:
    """Turn running out of device memory into an error that says what to change (the checkpoint stays)."""
    try:
        yield
    except torch.OutOfMemoryError as e:
        raise RuntimeError(f"{device} ran out of memory training {stage} at --batch {batch}: rerun with a smaller "
                           f"--batch or --patch, or with --device cpu") from e
