"""How long a run will take, measured on this machine before it starts.

One training step at the run's batch and patch size (one model on the whole batch, and, with k > 1 chunk
models, the k of them sharing it, as the chunks stage trains them: k smaller calls cost more than one),
and one model's pass over a whole LR frame, are timed on random data (a few seconds), so the run's time is
known before the long work: the steps of each stage x their step time, plus the passes over the decoded
frames (scoring with a trained scorer, and with k > 1 models the best-model labels: k passes), plus the
blind router's fit (timed on random frames). `--time` is a deadline counted from the process's start: the
same numbers turn what is left of it after decoding and step timing into steps, and the training loop
re-plans every REPLAN steps from the rate it measures (`Deadline`), so a busy machine shortens the run
instead of overrunning it.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ..core.grid import Grid
from ..core.models import WDSR, Arch, add_weight_norm
from ..core.router_state import FEATURES
from ..filter.blind import frame_features
from . import router_fit
from .checkpoint import out_of_memory_is_an_error
from .phases import Phases
from .settings import Settings
from .stages import budget, shared_steps
from .world import World

WARMUP, TIMED = 2, 3   # steps before timing, steps timed (the --time loop corrects the rates as it goes)
ROUTER_FRAMES = 64     # training frames (evenly spaced) the blind router is fitted on
REPLAN = 50            # --time: training steps between re-plans (fewer in a short run: a 20th of its steps)
MARGIN = 2.0           # --time: seconds kept for what no rate counts (writing the bundle, exiting)


@dataclass(frozen=True)
class Rates:
    step_s: float     # one optimiser step of --batch patches, one model
    frame_s: float    # one model over one LR frame
    chunks_s: float   # one step of the chunks stage: its models sharing --batch patches (step_s with one model)
    router_s: float = 0.0  # fitting the blind router (k > 1 models), its passes over the router's frames included

    def passes(self, s: Settings) -> int:
        """Model passes over every decoded frame: the scorer's (unless bicubic) and, with k > 1 models and
        best-model labels or --chunks auto, one per model."""
        k = s.k()
        return (s.scorer() != "bicubic") + (k if k > 1 and (s.labels == "best" or s.auto()) else 0)

    def last_s(self, s: Settings) -> float:
        """A step of the run's last stage (the chunks stage's models share a step's batch)."""
        return self.chunks_s if s.mode == "chunks" else self.step_s

    def rest(self, s: Settings, steps: int, done: int, frames: int, scored: bool) -> float:
        """Seconds from step `done` of a run of `steps` steps to its end: the steps left (in the shared stage
        while not yet `scored`), the passes over the `frames` still to come, the router fit."""
        shared = 0 if scored else shared_steps(s, steps) if s.mode != "single" else 0
        training = max(shared - done, 0) * self.step_s + max(steps - max(shared, done), 0) * self.last_s(s)
        passes = self.passes(s) - (scored and s.scorer() != "bicubic")
        return training + passes * frames * self.frame_s + self.router_s

    def seconds(self, s: Settings, steps: int, frames: int) -> float:
        """The run's time after decoding: its steps (and the self scorer's), its passes over the frames and the
        router fit."""
        extra = s.score_steps * self.step_s if s.scorer() == "self" else 0
        return extra + self.rest(s, steps, 0, frames, scored=False)

    def steps_within(self, s: Settings, spent: float, frames: int) -> int:
        """The most steps whose run (see `seconds`) fits what is left of `s.time` after `spent` seconds;
        raises when not even a few do."""
        steps = most_steps(lambda n: self.seconds(s, n, frames), 0, s.time - spent, min(self.step_s, self.chunks_s))
        if steps < 10:
            raise ValueError(f"--time {s.time:.0f}s leaves time for {steps} training steps after "
                             f"{spent:.0f} s of start-up, decoding and step timing, with "
                             f"{self.seconds(s, 0, frames):.0f} s for {self.passes(s)} model passes over {frames} "
                             f"frames and the router; give more time, fewer --train-frames, or --steps instead")
        return steps


def most_steps(seconds: Callable[[int], float], least: int, budget: float, step_s: float) -> int:
    """The largest step count n >= `least` with seconds(n) <= budget (seconds grows with n, at least `step_s`
    a step); `least` when even that does not fit."""
    lo, hi = least, least + int(max(budget, 0) / max(step_s, 1e-9)) + 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if seconds(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def measure(s: Settings, lr_width: int, lr_height: int, device: torch.device, frames: int) -> Rates:
    """Time a training step and a whole-frame pass of the run's main model on random data, and the router fit on
    the run's `frames` (this process's decoded frames) (running out of device memory here is the error training
    would give)."""
    with out_of_memory_is_an_error(device, s.batch, "shared" if s.has_shared() else s.mode):
        return timed(s, lr_width, lr_height, device, frames)


def timed(s: Settings, lr_width: int, lr_height: int, device: torch.device, frames: int) -> Rates:
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
    frame_s = time.perf_counter() - start
    fit_s = router_seconds(s, lr_width, lr_height, frames) if s.k() > 1 else 0.0
    if s.k() > 1 and s.labels != "best" and not s.auto():  # the router's frames get their own model passes
        fit_s += s.k() * min(frames, ROUTER_FRAMES) * frame_s
    return Rates(step_s, frame_s, chunks_s, fit_s)


def router_seconds(s: Settings, lr_width: int, lr_height: int, frames: int) -> float:
    """The blind router's fit (run.route): the features of the patches of at most ROUTER_FRAMES frames (timed on
    one random frame), then router_fit.STEPS full-batch steps of its MLP on them (the median of a few timed steps of
    an MLP of its shape on random features)."""
    grid = Grid(lr_width, lr_height, s.patch_width, s.patch_height)
    n = min(frames, ROUTER_FRAMES)
    frame = torch.rand(1, s.arch().planes, lr_height, lr_width)
    start = time.perf_counter()
    frame_features(frame, grid, s.scale)
    features_s = (time.perf_counter() - start) * n
    feats = torch.rand(n * grid.count, len(FEATURES))
    want, stake = torch.randint(s.k(), (len(feats),)), torch.rand(len(feats))
    mlp = torch.nn.Sequential(torch.nn.Linear(feats.shape[1], router_fit.HIDDEN), torch.nn.ReLU(),
                              torch.nn.Linear(router_fit.HIDDEN, s.k()))
    opt = torch.optim.Adam(mlp.parameters(), lr=0.02, weight_decay=1e-4)
    times = []
    for _ in range(WARMUP + TIMED):
        start = time.perf_counter()
        loss = (F.cross_entropy(mlp(feats), want, reduction="none") * stake).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return features_s + sorted(times[WARMUP:])[TIMED // 2] * router_fit.STEPS


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


def plan_steps(s: Settings, rates: Rates, frames: int, patches: int, world: World, phases: Phases,
               resumed: bool = False) -> tuple[Settings, Deadline | None]:
    """Print how long the run will take from here (`frames`: this process's, `patches`: the run's training
    patches). With --time (unless `resumed`: a resumed run trains the steps its checkpoint planned), first plan the
    steps that fit the budget from the process's start. Returns the settings with those steps, and the deadline the
    training loop re-plans by."""
    deadline = None
    if s.time and not resumed:
        deadline = Deadline.of(s, rates, frames)
        s = replace(s, steps=world.first(rates.steps_within(s, s.time - deadline.left(), frames)), epochs=0)
    if world.main:
        steps = budget(s, patches)
        left = rates.seconds(s, steps, frames)
        chunks = f" (chunk models: {rates.chunks_s * 1000:.0f} ms)" if rates.chunks_s != rates.step_s else ""
        router_fit = f", router fit {rates.router_s:.1f} s" if rates.router_s else ""
        spent = ", ".join(f"{r['phase']} {r['seconds']:.1f} s" for r in phases.rows)
        print(f"plan: {steps} steps at {rates.step_s * 1000:.0f} ms{chunks}, {rates.passes(s)} model passes over "
              f"{frames} frames at {rates.frame_s:.2f} s{router_fit}: about {left / 60:.1f} min more"
              + (f" (--time {s.time / 60:.1f} min from the start; {spent}; re-planned as it goes)" if deadline else
                 " (the steps the checkpoint planned)" if s.time else ""), file=sys.stderr)
    return s, deadline


def process_age() -> float:
    """Seconds since this process started (its start-up and imports count against --time); 0 where unknown."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return 0.0


@dataclass
class Deadline:
    """--time as a deadline: when the run must be done, and the rates it was planned with. The training loop
    calls `steps` every REPLAN steps with the rate it measured, and the run's remaining steps shrink or grow so
    that everything after them (passes over the frames, router fit, writing) still ends by `end`."""

    end: float     # time.monotonic() by which the run must be done
    rates: Rates
    frames: int    # this process's decoded frames

    @classmethod
    def of(cls, s: Settings, rates: Rates, frames: int) -> "Deadline":
        return cls(time.monotonic() - process_age() + s.time - MARGIN, rates, frames)

    def left(self) -> float:
        return self.end - time.monotonic()

    def steps(self, s: Settings, done: int, scored: bool, slow: float) -> int:
        """The run's total steps that fit what is left, `done` of them done (before the scoring pass unless
        `scored`), the machine running at `slow` times the planned rates."""
        return most_steps(lambda n: slow * self.rates.rest(s, n, done, self.frames, scored), done, self.left(),
                          slow * min(self.rates.step_s, self.rates.chunks_s))
