"""What a run trains: its stages (models trained in lockstep), their steps and their data.

A stage's items are (frame position, patch index) pairs of the training frames; its `owner` names the
model each item trains. Chunks and joint modes have a shared stage (one model on all patches alike, the
first `pretrain` of the steps), then a chunks stage (k copies of it, each on its chunk) or a joint stage
(the shared model going on, hard patches drawn more often); single mode has one stage of one model.

A stage ends when its progress reaches 1: the larger of its share of its steps done and its share of its
time budget spent (infinite without --time, so the steps alone decide); its learning rate follows the same
progress along the run's cosine schedule.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch

from ..core.grid import Grid
from ..core.models import Arch
from . import preflight
from .settings import Settings


@dataclass(frozen=True)
class Stage:
    """Models trained in lockstep for at most `steps` steps and `budget` seconds: each step draws `batch` of
    `items` and every patch trains the model that `owner` names. The learning rate follows one cosine schedule
    of `horizon` steps, of which the stage covers steps `first` to `first + steps`; `init` names the stage whose
    models and Adam state the models start from (where their architectures match)."""

    name: str
    items: torch.Tensor            # (N, 2) of (frame position, patch index)
    owner: torch.Tensor            # (N,) the model each item trains
    archs: list[Arch]
    steps: int
    first: int = 0
    horizon: int = 0               # 0: steps
    init: str | None = None
    weight: torch.Tensor | None = None  # (N,) how likely each item is drawn (None: all alike)
    scale: torch.Tensor | None = None   # (N,) what each drawn item's loss is multiplied by (None: 1)
    budget: float = math.inf            # seconds from the stage's start (or resumption) to its end

    @staticmethod
    def one(name: str, items: torch.Tensor, arch: Arch, steps: int, horizon: int = 0) -> "Stage":
        """A stage of one model on all of `items`."""
        return Stage(name, items, torch.zeros(len(items), dtype=torch.long), [arch], steps, 0, horizon)

    def spent(self, elapsed: float, since: float = 0.0) -> float:
        """The share of the stage's time used after `elapsed` seconds of its budget, at most 1. `since`: the
        share a resumed stage had used before (the budget then pays for the rest)."""
        if self.budget <= 0:
            return 1.0
        return min(1.0, since + (1 - since) * elapsed / self.budget)

    def progress(self, step: int, spent: float = 0.0) -> float:
        """How far the stage is after `step` steps with `spent` of its time used; it ends at 1."""
        return max(step / self.steps, spent)

    def learning_rate(self, s: Settings, step: int, spent: float = 0.0) -> float:
        """The learning rate at a point of this stage: cosine decay from s.learning_rate to 0 over the schedule, at the stage's
        progress counted in its steps (`step`, or as many as the share of its time `spent` stands for)."""
        at = self.first + max(step, self.steps * spent)
        return s.learning_rate * 0.5 * (1 + math.cos(math.pi * at / (self.horizon or self.steps)))

    def loss_scale(self, pick: torch.Tensor) -> torch.Tensor:
        """What the loss of each drawn item (indices into items) is multiplied by."""
        return torch.ones(len(pick)) if self.scale is None else self.scale[pick]

    def draw(self, batch: int, gen: torch.Generator) -> torch.Tensor:
        """The indices (into items) of one step's batch."""
        if self.weight is None:
            return torch.randint(len(self.items), (batch,), generator=gen)
        return torch.multinomial(self.weight, batch, replacement=True, generator=gen)


def heldout_frames(count: int, holdout: int) -> list[int]:
    """The frames kept out of training: every `holdout`-th (indices holdout-1, 2*holdout-1, ...)."""
    return [i for i in range(count) if holdout and i % holdout == holdout - 1]


def check_data(s: Settings, width: int, height: int, frames: int, decoded: bool = True) -> tuple[Grid, Settings]:
    """The patch grid of an LR size and the settings resolved for its training patches (Settings.resolve); raises
    if the data cannot be trained with these settings (or does not fit in memory, preflight.check_training)."""
    grid = Grid(width, height, s.patch_width, s.patch_height)
    if not grid.covered:
        raise ValueError(f"the LR frame ({width}x{height}) is smaller than one patch ({s.patch_width}x"
                         f"{s.patch_height}); use a smaller --patch or a larger clip")
    train_frames = frames - len(heldout_frames(frames, s.holdout))
    if train_frames < 1:
        raise ValueError(f"--holdout {s.holdout} leaves no training frame out of {frames}; select more frames")
    patches = train_frames * grid.count
    if s.k() > patches:
        raise ValueError(f"--chunks {s.k()} is more than the {patches} training patches ({train_frames} frames "
                         f"x {grid.cols}x{grid.rows} grid of {s.patch_width}x{s.patch_height}); use fewer chunks, "
                         f"a smaller --patch or more frames")
    s = s.resolve(patches)
    preflight.check_training(s, width, height, frames, decoded)
    return grid, s


def plan_stages(s: Settings, items: torch.Tensor, chunk: torch.Tensor, mse: torch.Tensor) -> list[Stage]:
    """The stages of a run; the last one's models go into the bundle, in chunk order.

    items: the training (frame, patch) pairs; chunk: the chunk of each; mse: the scorer's squared error on each.
    """
    total = total_steps(s, len(items))
    if s.mode == "single":
        return [Stage.one(s.mode, items, s.arch(), total)]
    shared = shared_stage(s, items)
    first = shared.steps if shared else 0
    archs = s.chunk_archs()  # joint: one, every item in chunk 0
    weight, scale = draw_weights(chunk, mse, s.focus if s.mode == "joint" else 0.0), None
    if s.mode == "joint" and s.sampling == "unbiased":
        weight, scale = unbiased(weight)
    last = Stage(s.mode, items, chunk, archs, total - first, first, total, "shared" if shared else None,
                 weight, scale)
    return ([shared] if shared else []) + [last]


def plan_summary(s: Settings, patches: int) -> str:
    """The stages a run of `patches` training patches trains and their steps, in one line, as plan_stages will
    build them (after the scorer's own stage with --score self)."""
    total = total_steps(s, patches)
    shared = shared_steps(s, total)
    stages = ([("scorer", s.score_steps)] if s.scorer() == "self" else []) + ([("shared", shared)] if shared else [])
    models = f" ({s.k()} models)" if s.k() > 1 else ""
    return ", then ".join(f"{name} {n} steps" for name, n in [*stages, (s.mode, total - shared)]) + models


def unbiased(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Defensive importance sampling (Hesterberg 1995) of one group: half the draws uniform, half by `weight`, and
    each item's loss scaled by 1/(N p) (at most 2), so the expected loss is the plain mean over the items."""
    p = 0.5 / len(weight) + 0.5 * weight / weight.sum()
    return p, (1 / (len(weight) * p)).float()


def draw_weights(group: torch.Tensor, mse: torch.Tensor, focus: float) -> torch.Tensor:
    """How likely each item is drawn: every group alike whatever its size, and within a group in proportion
    to the item's squared error to the power `focus` (0: all alike). Unweighted (--sampling lean), drawing by
    squared error makes an L1 step's expected gradient follow the squared error that PSNR counts; `unbiased`
    reweights the draws so they only lower the gradient's variance."""
    w = mse.double() ** focus
    return w / torch.zeros(int(group.max()) + 1, dtype=torch.double).index_add_(0, group, w)[group]


def total_steps(s: Settings, patches: int) -> int:
    """The run's total optimiser steps (at most, under --time): `steps`, or `epochs` passes over the `patches` it
    trains on."""
    return math.ceil(s.epochs * patches / s.batch) if s.epochs else s.steps


def shared_stage(s: Settings, items: torch.Tensor) -> Stage | None:
    """The shared model's stage, the first `pretrain` of the steps (None without pretraining)."""
    if not s.has_shared():
        return None
    total = total_steps(s, len(items))
    return Stage.one("shared", items, s.arch(), shared_steps(s, total), total)


def shared_steps(s: Settings, total: int) -> int:
    """The shared model's steps of a run of `total` steps (0 without one); the rest train the last stage."""
    return max(1, round(total * s.pretrain)) if s.has_shared() else 0


def stage_seed(seed: int, name: str) -> int:
    """A seed per stage, independent of which other stages the run has."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:4], "little")
