"""--time: the run's deadline, and the time each part of the run gets from it.

The deadline counts from the process's start, so start-up, imports and decoding count. Nothing is timed ahead:
a training stage gets, when it starts, its share of the time left (its steps' share of the steps from it to the
run's end) and stops when its progress reaches 1 (stages.Stage.progress), so a busy machine trains fewer steps
instead of overrunning. The last stage keeps back what follows it: with k > 1 models, their k passes over the
decoded frames, each as long as the scoring pass took, and the router's share of --time; the router fit then
gets what is left (router_fit.fit stops its features and its steps by it). MARGIN is kept for writing the bundle
and exiting.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..core.models import WDSR
from .router_fit import ROUTER_FRAMES
from .scoring import model_upscaler
from .settings import Settings
from .stages import Stage

MARGIN = 3.0          # seconds kept for what comes after the router fit: writing the bundle, exiting (torch's
                      # teardown alone took 1.5-2.3 s on a busy 2-core machine)
ROUTER_SHARE = 0.02   # of --time, kept back for the blind router (its features and fit, k > 1 models)


@dataclass(frozen=True)
class Deadline:
    """When the run must be done, on `clock` (infinitely far without --time)."""

    end: float = math.inf
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def of(cls, s: Settings) -> "Deadline":
        """--time counted from this process's start; none without it."""
        return cls(time.monotonic() - process_age() + s.time if s.time else math.inf)

    def left(self) -> float:
        """Seconds left for the work still to come (MARGIN kept back)."""
        return self.end - MARGIN - self.clock()

    def budget(self, stage: Stage, total: int, kept: float = 0.0) -> float:
        """The seconds `stage` gets when it starts or resumes: its steps' share of the steps from it to the run's
        end (`total`: the run's steps, which come after the scorer's own) of what is left, less `kept` seconds
        for the work after it."""
        later = total if stage.name == "scorer" else (stage.horizon or stage.steps) - stage.first - stage.steps
        return stage.steps / (stage.steps + later) * max(self.left() - kept, 0.0)

    def after_training(self, s: Settings, pass_s: float | None, lr: torch.Tensor, device: torch.device) -> float:
        """Seconds the last stage keeps back for what follows it: with k > 1 models, their passes over the decoded
        frames `lr` (labels best or --chunks auto: all of them; split labels: the router's), each as long as one
        model's pass over all of them, `pass_s` (the scoring pass; None where that was no model of the run's
        preset: then one frame's pass is timed here), and the router's share of --time. Nothing without --time."""
        if self.end == math.inf or s.k() == 1:
            return 0.0
        if pass_s is None:
            pass_s = len(lr) * frame_pass(s, lr[0], device, self.clock)
        passed = 1.0 if s.labels == "best" or s.auto() else min(len(lr), ROUTER_FRAMES) / len(lr)
        return s.k() * pass_s * passed + ROUTER_SHARE * s.time


    def late(self, s: Settings, kept: float) -> str | None:
        """What to say where the work after training, `kept` seconds, is already more than is left."""
        over = kept - self.left()
        if over <= 0:
            return None
        return (f"--time {s.time:g} s: the passes over the frames and the router fit after training need about "
                f"{kept:.0f} s, {over:.0f} s more than is left; the run will end late (give more --time, or fewer "
                f"--train-frames or --chunks)")


def frame_pass(s: Settings, frame: torch.Tensor, device: torch.device, clock: Callable[[], float]) -> float:
    """Seconds of one pass of a model of the run's preset over one decoded LR frame, as the label passes run it
    (the second of two: the first warms up)."""
    upscale = model_upscaler(WDSR(s.arch()), device)
    upscale(0, frame)
    began = clock()
    upscale(0, frame)
    return clock() - began


def process_age() -> float:
    """Seconds since this process started (its start-up and imports count against --time); 0 where unknown."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return 0.0
