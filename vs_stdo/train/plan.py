"""How long a run will take, measured on this machine before it starts.

One training step at the run's batch and patch size, and one model's pass over a whole LR frame, are
timed on random data (a second or two), so the run's time is known before the long work: steps x the
step time, plus the passes over the decoded frames (scoring with a trained scorer, and with k > 1
models the best-model labels: k passes). `--time` turns a budget into steps with the same numbers.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models import WDSR, add_weight_norm
from .checkpoint import out_of_memory_is_an_error
from .settings import Settings
from .stages import budget
from .world import World

WARMUP, TIMED = 3, 5   # steps before timing, steps timed


@dataclass(frozen=True)
class Rates:
    step_s: float     # one optimiser step of --batch patches
    frame_s: float    # one model over one LR frame

    def passes(self, s: Settings) -> int:
        """Model passes over every decoded frame: the scorer's (unless bicubic) and, with k > 1 models and
        best-model labels or --chunks auto, one per model."""
        k = s.k()
        return (s.scorer() != "bicubic") + (k if k > 1 and (s.labels == "best" or s.auto()) else 0)

    def seconds(self, s: Settings, steps: int, frames: int) -> float:
        """The run's time after decoding: its steps (and the self scorer's) and its passes over the frames."""
        extra = s.score_steps if s.scorer() == "self" else 0
        return (steps + extra) * self.step_s + self.passes(s) * frames * self.frame_s

    def steps_within(self, s: Settings, spent: float, frames: int) -> int:
        """The most steps whose run (see `seconds`) fits what is left of `s.time` after `spent` seconds;
        raises when not even a few do."""
        steps = int((s.time - spent - self.seconds(s, 0, frames)) / self.step_s)
        if steps < 10:
            raise ValueError(f"--time {s.time:.0f}s leaves time for {max(steps, 0)} training steps after {spent:.0f} s "
                             f"of decoding and {self.seconds(s, 0, frames):.0f} s for {self.passes(s)} model passes "
                             f"over {frames} frames; give more time, fewer --train-frames, or --steps instead")
        return steps


def measure(s: Settings, lr_width: int, lr_height: int, device: torch.device) -> Rates:
    """Time a training step and a whole-frame pass of the run's main model on random data (running out of
    device memory here is the error training would give)."""
    with out_of_memory_is_an_error(device, s.batch, "shared" if s.has_shared() else s.mode):
        return timed(s, lr_width, lr_height, device)


def timed(s: Settings, lr_width: int, lr_height: int, device: torch.device) -> Rates:
    from ..chunking import model_upscaler  # the scorer's own whole-frame path

    arch = s.arch()
    c = s.train_context()
    model = add_weight_norm(WDSR(arch)).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=s.lr)
    x = torch.rand(s.batch, arch.planes, s.patch_height + 2 * c, s.patch_width + 2 * c, device=device)
    y = torch.rand(s.batch, arch.planes, s.patch_height * arch.scale, s.patch_width * arch.scale, device=device)
    m = c * arch.scale
    times = []
    for _ in range(WARMUP + TIMED):
        start = time.perf_counter()
        out = model(x)
        loss = F.l1_loss(out[..., m:out.shape[-2] - m, m:out.shape[-1] - m] if m else out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(device)
        times.append(time.perf_counter() - start)
    step_s = sorted(times[WARMUP:])[TIMED // 2]  # the median: first steps and a busy machine run slow
    upscale = model_upscaler(model, device)
    frame = torch.rand(arch.planes, lr_height, lr_width)
    upscale(0, frame)
    start = time.perf_counter()
    upscale(0, frame)
    sync(device)
    return Rates(step_s, time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plan_steps(s: Settings, rates: Rates, frames: int, patches: int, spent: float, world: World) -> None:
    """Print how long the run will take from here (`frames`: this process's, `patches`: the run's training
    patches); with --time, first set the steps that fit the budget."""
    if s.time:
        s.steps, s.epochs = world.first(rates.steps_within(s, spent, frames)), 0
    if world.main:
        steps = budget(s, patches)
        left = rates.seconds(s, steps, frames)
        print(f"plan: {steps} steps at {rates.step_s * 1000:.0f} ms and {rates.passes(s)} model passes over {frames} "
              f"frames at {rates.frame_s:.2f} s: about {left / 60:.1f} min more"
              + (f" (--time {s.time / 60:.1f} min, {spent:.0f} s spent decoding; to resume, use --steps {s.steps})"
                 if s.time else ""), file=sys.stderr)
