"""Surviving interruptions: the checkpoint on disk, Ctrl-C/SIGTERM as a request to stop, and running
out of device memory as an error that names the fix."""
from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..core.files import atomic_write
from .settings import Settings


def run_id(s: Settings, lr_frames: torch.Tensor | np.ndarray) -> str:
    """Identifies a run so a checkpoint is only resumed by the same settings and data."""
    h = hashlib.sha256(json.dumps(asdict(s) | {"device": None, "checkpoint_every": None}, sort_keys=True).encode())
    h.update(np.asarray(lr_frames).tobytes())
    return h.hexdigest()[:16]


class Checkpoint:
    """Training state on disk: finished stage models and the running stage's full state.
    Only the main process writes it (`writer`); every process reads it on resume."""

    def __init__(self, path: Path, run_id: str, writer: bool = True) -> None:
        self.path, self.run_id, self.writer = path, run_id, writer
        self.state: dict = {"run": run_id, "finished": {}, "current": None}

    def open(self, resume: bool) -> None:
        """Load the checkpoint when resuming; refuse to overwrite one otherwise."""
        if not self.path.is_file():
            if resume and self.writer:
                print(f"no checkpoint at {self.path}; starting from the beginning", file=sys.stderr)
            return
        if not resume:
            raise ValueError(f"{self.path} holds the checkpoint of an unfinished run; add --resume to continue it, "
                             f"or delete the file to start over")
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, pickle.UnpicklingError) as e:
            raise ValueError(f"cannot read checkpoint {self.path} ({e}); delete it and start over") from None
        if not isinstance(state, dict) or state.get("run") != self.run_id:
            raise ValueError(f"checkpoint {self.path} belongs to a different run (other settings or input); "
                             f"delete it or drop --resume")
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
