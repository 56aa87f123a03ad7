"""How long a run will take, measured on this machine before it starts.

One training step at the run's batch and patch size (one model on the whole batch, and, with k > 1 chunk
models, the k of them sharing it, as the chunks stage trains them: k smaller calls cost more than one),
and one model's pass over a whole LR frame, are timed on random data (a few seconds), so the run's time is
known before the long work: the steps of each stage x their step time, plus the passes over the decoded
frames (scoring with a trained scorer, and with k > 1 models the best-model labels: k passes). `--time`
turns a budget into steps with the same numbers.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.models import WDSR, Arch, add_weight_norm
from .checkpoint import out_of_memory_is_an_error
from .settings import Settings
from .stages import budget, shared_steps
from .world import World

WARMUP, TIMED = 3, 5   # steps before timing, steps timed


@dataclass(frozen=True)
class Rates:
    step_s: float     # one optimiser step of --batch patches, one model
    frame_s: float    # one model over one LR frame
    chunks_s: float   # one step of the chunks stage: its models sharing --batch patches (step_s with one model)

    def passes(self, s: Settings) -> int:
        """Model passes over every decoded frame: the scorer's (unless bicubic) and, with k > 1 models and
        best-model labels or --chunks auto, one per model."""
        k = s.k()
        return (s.scorer() != "bicubic") + (k if k > 1 and (s.labels == "best" or s.auto()) else 0)

    def seconds(self, s: Settings, steps: int, frames: int) -> float:
        """The run's time after decoding: its steps (and the self scorer's) and its passes over the frames."""
        extra = s.score_steps if s.scorer() == "self" else 0
        one = shared_steps(s, steps) if s.mode == "chunks" and steps else steps  # all steps but the chunks stage's
        return ((one + extra) * self.step_s + (steps - one) * self.chunks_s
                + self.passes(s) * frames * self.frame_s)

    def steps_within(self, s: Settings, spent: float, frames: int) -> int:
        """The most steps whose run (see `seconds`) fits what is left of `s.time` after `spent` seconds;
        raises when not even a few do."""
        left = s.time - spent - self.seconds(s, 0, frames)
        steps = max(int(left / max(self.step_s, self.chunks_s)), 0)  # fits; then as many more as still fit
        while self.seconds(s, steps + 1, frames) <= s.time - spent:
            steps += 1
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
    from .scoring import model_upscaler  # the scorer's own whole-frame path

    arch = s.arch()
    c = s.train_context()
    x = torch.rand(s.batch, arch.planes, s.patch_height + 2 * c, s.patch_width + 2 * c, device=device)
    y = torch.rand(s.batch, arch.planes * arch.scale ** 2, s.patch_height, s.patch_width, device=device)
    step_s = step_seconds([arch], x, y, c, s.lr)
    chunks_s = step_seconds(s.chunk_archs(), x, y, c, s.lr) if s.mode == "chunks" and s.k() > 1 else step_s
    upscale = model_upscaler(WDSR(arch), device)
    frame = torch.rand(arch.planes, lr_height, lr_width)
    upscale(0, frame)
    start = time.perf_counter()
    upscale(0, frame)
    sync(device)
    return Rates(step_s, time.perf_counter() - start, chunks_s)


def step_seconds(archs: list[Arch], x: torch.Tensor, y: torch.Tensor, c: int, lr: float) -> float:
    """The median time of one training step of models of `archs` sharing the batch (x, y) in equal parts, as a
    stage trains its models in lockstep (train/loop.py); x carries c pixels of context."""
    models = [add_weight_norm(WDSR(a)).to(x.device).train() for a in archs]
    opts = [torch.optim.Adam(m.parameters(), lr=lr) for m in models]
    parts = torch.arange(len(x), device=x.device).tensor_split(len(models))
    times = []
    for _ in range(WARMUP + TIMED):
        start = time.perf_counter()
        for model, opt, rows in zip(models, opts, parts):
            if len(rows):
                loss = F.l1_loss(model.unshuffled(x[rows], crop=c), y[rows])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        sync(x.device)
        times.append(time.perf_counter() - start)
    return sorted(times[WARMUP:])[TIMED // 2]  # the median: first steps and a busy machine run slow


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
        chunks = f" (chunk models: {rates.chunks_s * 1000:.0f} ms)" if rates.chunks_s != rates.step_s else ""
        print(f"plan: {steps} steps at {rates.step_s * 1000:.0f} ms{chunks} and {rates.passes(s)} model passes over "
              f"{frames} frames at {rates.frame_s:.2f} s: about {left / 60:.1f} min more"
              + (f" (--time {s.time / 60:.1f} min, {spent:.0f} s spent decoding; to resume, use --steps {s.steps})"
                 if s.time else ""), file=sys.stderr)
