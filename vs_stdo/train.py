"""Training: score patches, split them into chunks, overfit models, write the bundle.

Modes
  chunks  STDO: one model per chunk. By default one shared model is first trained on all patches
          (`pretrain` of the step budget), then copied into k models that go on training together
          for the rest: each step draws one batch, every chunk equally likely (so each chunk model
          gets about batch/k patches a step, whatever its chunk's size), and every patch trains the
          model of its chunk. The copies keep the shared model's Adam state and the run keeps one
          learning-rate schedule, so the chunk phase continues the shared training instead of
          restarting it. pretrain=0 trains the chunk models from scratch, as the paper does.
  joint   JSTDO: one model on all of chunk 0, none of chunk k-1, and a decreasing random fraction
          of the chunks between (`joint_schedule`, default linear: 1, (k-2)/(k-1), ..., 0); its k
          chunks are always of equal size, whatever `split`.
  single  one model on all patches (the NAS-style baseline).

Budget: `steps` (or `epochs`, passes over the run's training patches) is the total for the run,
whatever the mode; every step trains on `batch` patches, so modes compare at equal compute (a chunk
model gets about batch/k patches a step). The `self` scorer's steps come on top.

Held-out frames (`holdout` N: every Nth frame, indices N-1, 2N-1, ...) are decoded, scored and
labelled like the others (labels come from the HR; the method is non-blind), so the filter routes
them by labels, but no model, the scorers included, trains on them. Chunks split the training
patches by scorer PSNR (`split`: "error", the default, gives each chunk an equal share of their
squared error, so the hardest chunk is a small set of patches with a model of its own; "count" makes
equal-sized chunks, as the paper does); held-out patches get the chunk their PSNR falls in. The
scorer (`score`) is by default ("auto") the shared model at the end of pretraining, so the chunks
split what is still hard after it; without a shared model, bicubic.

Routing (k > 1 models): with `labels` "best" (the default) every model runs over every frame once
and each patch's stored label becomes the model that reconstructs it best (the assignment step of
hard EM); "split" keeps its chunk. The bundle's blind router is fitted on (at most ROUTER_FRAMES of)
the training frames to each patch's best model (router.py).

The loop is plain PyTorch (L1 loss, Adam, one cosine decay over the run, fp16 autocast on CUDA). Progress is
checkpointed to `<bundle>.ckpt` (tensors and numbers only, loaded with weights_only=True) every
`checkpoint_every` steps and at the end of every stage; a killed run resumes where the checkpoint
stopped and ends with the same weights as an uninterrupted run. Ctrl-C (or SIGTERM) finishes the
current step, saves a checkpoint and stops; a second Ctrl-C stops at once.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import pickle
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import bundle as bundle_io
from . import preflight, router
from .chunking import SPLITS, bicubic_upscaler, bundle_upscaler, label, model_upscaler, models_psnr, score, split
from .dataset import CONTEXT_CAP, Frames, Patches, all_items
from .engine import pick_device
from .files import atomic_write
from .grid import Grid
from .metrics import mse_to_psnr
from .models import WDSR, Arch, add_weight_norm, plain_state, preset

MODES = ("chunks", "joint", "single")
ROUTER_FRAMES = 64  # training frames (evenly spaced) the blind router is fitted on
SCORERS = ("auto", "shared", "bicubic", "self")  # or the path of a bundle
LABELS = ("best", "split")


@dataclass
class Settings:
    scale: int = 4
    chunks: int = 4
    mode: str = "chunks"
    preset: str = "tiny"
    steps: int = 2000              # total optimiser steps of the run, shared by its models
    epochs: float = 0              # > 0: the budget in passes over the run's training patches instead
    batch: int = 16
    lr: float = 2e-3               # Adam learning rate at the start of the cosine schedule (docs/results.md)
    seed: int = 0
    patch_width: int = 48
    patch_height: int = 54
    pretrain: float = 0.25         # chunks mode: share of the budget for the shared model (docs/results.md)
    split: str = "error"           # chunks mode: chunks of equal squared error, or of equal "count" (docs/results.md)
    joint_schedule: list[float] = field(default_factory=list)  # joint: fraction kept per chunk
    score: str = "auto"            # reference scorer f0: auto, shared, bicubic, self, or a bundle path
    labels: str = "best"           # chunks mode: route each patch to its "best" model, or to its "split" chunk
    score_steps: int = 300         # score=self: steps of the scorer model
    holdout: int = 0               # keep every Nth frame out of training (0: none)
    device: str = "cpu"
    checkpoint_every: int = 200
    easy_preset: str = ""          # chunks mode: the easiest `easy_chunks` chunks use this smaller preset
    easy_chunks: int = 1

    def check(self) -> None:
        """Raise a clear error for settings that cannot work (before any data is read)."""
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        preset(self.preset, self.scale)  # raises on a bad preset or scale
        if not 1 <= self.chunks <= 255:
            raise ValueError(f"--chunks must be between 1 and 255, got {self.chunks}")
        if self.steps < 1 or self.batch < 1 or self.epochs < 0:
            raise ValueError("--steps and --batch must be positive, --epochs not negative")
        if not 0 <= self.pretrain < 1:
            raise ValueError(f"--pretrain must be in [0, 1), got {self.pretrain}")
        if self.holdout == 1 or self.holdout < 0:
            raise ValueError(f"--holdout {self.holdout} would hold out every frame; use 0 (none) or N >= 2")
        if self.checkpoint_every < 1 or self.score_steps < 1:
            raise ValueError("--checkpoint-every and --score-steps must be positive")
        self.schedule()
        if self.split not in SPLITS:
            raise ValueError(f"unknown --split {self.split!r}; choose one of {', '.join(SPLITS)}")
        if self.easy_preset:
            preset(self.easy_preset, self.scale)
            if self.mode != "chunks" or not 1 <= self.easy_chunks < self.chunks:
                raise ValueError(f"--easy-preset needs --mode chunks and 1 <= --easy-chunks < --chunks "
                                 f"(got mode {self.mode}, {self.easy_chunks} easy of {self.chunks} chunks)")
        if self.labels not in LABELS:
            raise ValueError(f"unknown --labels {self.labels!r}; choose one of {', '.join(LABELS)}")
        if self.score == "shared" and not self.has_shared():
            raise ValueError("--score shared scores with the shared model of --mode chunks with --pretrain > 0; "
                             "give both, or another --score")
        if self.score not in SCORERS:
            b = bundle_io.load(self.score)  # FileNotFoundError / BundleError name the problem
            if b.scale != self.scale:
                raise ValueError(f"--score bundle {self.score} is x{b.scale} but training is x{self.scale}; "
                                 f"give a x{self.scale} bundle, 'bicubic' or 'self'")

    def has_shared(self) -> bool:
        """Whether the run trains a shared model first (chunks mode with pretraining)."""
        return self.mode == "chunks" and self.pretrain > 0

    def scorer(self) -> str:
        """The scorer `score` names: "auto" is the shared model where the run has one, else bicubic."""
        if self.score == "auto":
            return "shared" if self.has_shared() else "bicubic"
        return self.score

    def arch(self, chunk: int | None = None) -> Arch:
        """The architecture of a chunk's model (None: the main preset, also that of shared and scorer models)."""
        easy = self.easy_preset and chunk is not None and chunk >= self.chunks - self.easy_chunks
        return preset(self.easy_preset if easy else self.preset, self.scale)

    def schedule(self) -> list[float]:
        """Joint mode: the fraction of each chunk's patches used, chunk 0 first (all) to k-1 (none)."""
        k = self.chunks
        if not self.joint_schedule:
            return [1.0] if k == 1 else [1 - i / (k - 1) for i in range(k)]
        if len(self.joint_schedule) != k or not all(0 <= f <= 1 for f in self.joint_schedule):
            raise ValueError(f"--joint-schedule needs {k} fractions in [0, 1], one per chunk (hardest first), "
                             f"got {self.joint_schedule}")
        if not any(self.joint_schedule):
            raise ValueError("--joint-schedule keeps no patches; give at least one fraction above 0")
        return list(self.joint_schedule)


@dataclass(frozen=True)
class Stage:
    """Models trained in lockstep for `steps` steps: each step draws `batch` of `items` and every patch trains
    the model that `owner` names. The learning rate follows one cosine schedule of `horizon` steps, of which
    the stage runs steps `first` to `first + steps`; `init` names the stage whose models and Adam state the
    models start from (where their architectures match)."""

    name: str
    items: torch.Tensor            # (N, 2) of (frame, patch index)
    owner: torch.Tensor            # (N,) the model each item trains
    archs: list[Arch]
    steps: int
    first: int = 0
    horizon: int = 0               # 0: steps
    init: str | None = None
    weight: torch.Tensor | None = None  # (N,) how likely each item is drawn (None: all alike)

    @staticmethod
    def one(name: str, items: torch.Tensor, arch: Arch, steps: int, horizon: int = 0) -> "Stage":
        """A stage of one model on all of `items`."""
        return Stage(name, items, torch.zeros(len(items), dtype=torch.long), [arch], steps, 0, horizon)

    def lr(self, s: "Settings", step: int) -> float:
        """The learning rate of a step of this stage (cosine decay from s.lr to 0 over the schedule)."""
        return s.lr * 0.5 * (1 + math.cos(math.pi * (self.first + step) / (self.horizon or self.steps)))


def heldout_frames(count: int, holdout: int) -> list[int]:
    """The frames kept out of training: every `holdout`-th (indices holdout-1, 2*holdout-1, ...)."""
    return [i for i in range(count) if holdout and i % holdout == holdout - 1]


def check_data(s: Settings, width: int, height: int, frames: int, decoded: bool = True) -> Grid:
    """The patch grid of an LR size; raises if the data cannot be trained with these settings (or does not
    fit in memory, preflight.check_training, which also caps s.batch)."""
    grid = Grid(width, height, s.patch_width, s.patch_height)
    train_frames = frames - len(heldout_frames(frames, s.holdout))
    if train_frames < 1:
        raise ValueError(f"--holdout {s.holdout} leaves no training frame out of {frames}; select more frames")
    patches = train_frames * grid.count
    if s.chunks > patches:
        raise ValueError(f"--chunks {s.chunks} is more than the {patches} training patches ({train_frames} frames "
                         f"x {grid.cols}x{grid.rows} grid of {s.patch_width}x{s.patch_height}); use fewer chunks, "
                         f"a smaller --patch or more frames")
    preflight.check_training(s, patches, width, height, frames, decoded)
    return grid


def plan_stages(s: Settings, items: torch.Tensor, chunk: torch.Tensor,
                gen: torch.Generator) -> list[Stage]:
    """The stages of a run; the last one's models go into the bundle, in chunk order.

    items: the training (frame, patch) pairs; chunk: the chunk of each.
    """
    if s.mode == "joint":
        keep = torch.zeros(len(items), dtype=torch.bool)
        for k, fraction in enumerate(s.schedule()):
            idx = torch.nonzero(chunk == k).flatten()
            keep[idx[torch.randperm(len(idx), generator=gen)[:round(fraction * len(idx))]]] = True
        items = items[keep]
        if not len(items):
            raise ValueError(f"--joint-schedule {s.schedule()} keeps none of the training patches; "
                             f"raise its fractions")
    total = budget(s, items)
    if s.mode != "chunks":
        return [Stage.one(s.mode, items, s.arch(), total)]
    shared = shared_stage(s, items)
    first = shared.steps if shared else 0
    archs = [s.arch(k) for k in range(s.chunks)]
    equal_shares = 1 / torch.bincount(chunk, minlength=s.chunks).double()[chunk]
    return ([shared] if shared else []) + [Stage("chunks", items, chunk, archs, total - first, first, total,
                                                 "shared" if shared else None, equal_shares)]


def budget(s: Settings, items: torch.Tensor) -> int:
    """The run's total optimiser steps: `steps`, or `epochs` passes over `items` (the patches it trains on)."""
    return math.ceil(s.epochs * len(items) / s.batch) if s.epochs else s.steps


def shared_stage(s: Settings, items: torch.Tensor) -> Stage | None:
    """Chunks mode: the shared model's stage, the first `pretrain` of the budget (None without pretraining)."""
    if not s.has_shared():
        return None
    total = budget(s, items)
    return Stage.one("shared", items, s.arch(), max(1, round(total * s.pretrain)), total)


def stage_seed(seed: int, name: str) -> int:
    """A seed per stage, independent of which other stages the run has."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:4], "little")


def fingerprint_of(s: Settings, frames: Frames) -> str:
    """Identifies a run so a checkpoint is only resumed by the same settings and data."""
    h = hashlib.sha256(json.dumps(asdict(s) | {"device": None, "checkpoint_every": None}, sort_keys=True).encode())
    h.update(frames.lr[:, :, ::7, ::7].numpy().tobytes())
    return h.hexdigest()[:16]


class Checkpoint:
    """Training state on disk: finished stage models and the running stage's full state."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path, self.run_id = path, run_id
        self.state: dict = {"run": run_id, "finished": {}, "current": None}

    def open(self, resume: bool) -> None:
        """Load the checkpoint when resuming; refuse to overwrite one otherwise."""
        if not self.path.is_file():
            if resume:
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
        print(f"resuming from {self.path}", file=sys.stderr)

    def save(self) -> None:
        with atomic_write(self.path) as f:
            torch.save(self.state, f)


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


def fit(stage: Stage, init: dict | None, patches: Patches, s: Settings, ckpt: Checkpoint,
        device: torch.device) -> dict[str, list]:
    """Train a stage's models: L1 loss, Adam, resumable. `init`: the finished stage of one model of the main
    preset (the shared model) that models of that preset start from, Adam state included. Returns
    {"models": [...], "opts": [...]}: their (weight-normed) states and Adam states, on the CPU."""
    seed = stage_seed(s.seed, stage.name)
    torch.manual_seed(seed)
    models, opts = [], []
    for arch in stage.archs:
        model = add_weight_norm(WDSR(arch))
        start_from = init is not None and arch == s.arch()
        if start_from:
            model.load_state_dict(init["models"][0])
        model.to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=s.lr)
        if start_from:  # a copy: loading does not copy CPU tensors, and the models must not share their state
            opt.load_state_dict(copy.deepcopy(init["opts"][0]))
        models.append(model)
        opts.append(opt)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    gen = torch.Generator().manual_seed(seed)
    start = 0
    cur = ckpt.state["current"]
    if cur is not None and cur["stage"] == stage.name:
        for model, opt, model_state, opt_state in zip(models, opts, cur["models"], cur["opts"]):
            model.load_state_dict(model_state)
            opt.load_state_dict(opt_state)
        scaler.load_state_dict(cur["scaler"])
        gen.set_state(cur["rng"])
        start = cur["step"]

    def states() -> dict[str, list]:
        return {"models": [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in models],
                "opts": [opt.state_dict() for opt in opts]}

    def snapshot(done: int) -> None:
        ckpt.state["current"] = {"stage": stage.name, "step": done, **states(), "scaler": scaler.state_dict(),
                                 "rng": gen.get_state()}
        ckpt.save()

    bar = tqdm(total=stage.steps, initial=start, desc=stage.name, unit="step")
    losses: list[torch.Tensor] = []  # since the bar was last updated (read back every 10 steps only)
    with StopRequest() as stop, out_of_memory_is_an_error(device, s.batch, stage.name):
        for step in range(start, stage.steps):
            pick = (torch.randint(len(stage.items), (s.batch,), generator=gen) if stage.weight is None
                    else torch.multinomial(stage.weight, s.batch, replacement=True, generator=gen))
            x, y = patches.batch(stage.items[pick])
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            owner = stage.owner[pick]
            lr = stage.lr(s, step)
            out = torch.empty_like(y)
            step_loss = torch.zeros((), device=device)
            for i, (model, opt) in enumerate(zip(models, opts)):
                rows = torch.nonzero(owner == i).flatten().to(device)
                if not len(rows):
                    continue          # none of this step's patches belongs to this model
                for group in opt.param_groups:
                    group["lr"] = lr
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    pred = patches.crop_output(model(x[rows])).float()
                loss = F.l1_loss(pred, y[rows])
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                out[rows] = pred.detach()
                step_loss += loss.detach() * len(rows) / s.batch
            scaler.update()
            losses.append(step_loss)
            done = step + 1
            bar.update()
            if done % 10 == 0 or done == stage.steps:
                mse = F.mse_loss(out.clamp(0, 1), y).item()
                bar.set_postfix(loss=f"{torch.stack(losses).mean().item():.4f}", psnr=f"{mse_to_psnr(mse):.2f}")
                losses.clear()
            if stop.requested:
                snapshot(done)
                bar.close()
                raise KeyboardInterrupt(f"interrupted; checkpoint saved to {ckpt.path}, rerun with --resume")
            if done % s.checkpoint_every == 0 and done < stage.steps:
                snapshot(done)
    bar.close()
    return states()


def route(b: bundle_io.Bundle, frames: Frames, train_frames: list[int], s: Settings, device: torch.device) -> None:
    """With k > 1 models: set the routing labels and fit the blind router.

    labels "best" relabels every patch of every frame (held-out ones too: labels come from the HR) with the
    model that reconstructs it best, the assignment step of hard EM; "split" keeps each patch's chunk. The
    blind router learns, on (at most ROUTER_FRAMES of) the training frames, which model does best where.
    """
    picked = train_frames[::math.ceil(len(train_frames) / ROUTER_FRAMES)]
    if s.labels == "best":
        each = models_psnr(b, frames, device)
        b.labels = each.argmax(0).astype(np.uint8)
        each = each[:, picked]
    else:  # only the router's frames (a copy of them, not of the clip)
        each = models_psnr(b, Frames(frames.lr[picked], frames.hr[picked], frames.fingerprints[picked]), device)
    b.router = router.fit(frames.lr[picked], b.grid, b.scale, each, b.labels[picked], seed=s.seed)


def train(frames: Frames, s: Settings, out: Path, clip_info: dict, resume: bool = False) -> bundle_io.Bundle:
    """Run a whole training job on decoded frames and write the bundle to `out`."""
    s.check()
    if frames.scale != s.scale:
        raise ValueError(f"frames are x{frames.scale}, settings say x{s.scale}")
    h, w = frames.lr.shape[-2:]
    grid = check_data(s, w, h, len(frames))
    device = pick_device(s.device)
    started = time.time()
    heldout = heldout_frames(len(frames), s.holdout)
    train_frames = [f for f in range(len(frames)) if f not in set(heldout)]
    items = all_items(len(frames), grid.count)
    items = items[torch.isin(items[:, 0], torch.tensor(train_frames))]
    radius = max(s.arch(k).radius for k in range(s.chunks))
    patches = Patches(frames, grid, min(radius, CONTEXT_CAP))
    preflight.check_writable(out, {}, "-o")  # before its checkpoint is written next to it
    ckpt = Checkpoint(Path(str(out) + ".ckpt"), fingerprint_of(s, frames))
    ckpt.open(resume)
    finished: dict[str, dict] = ckpt.state["finished"]

    def trained(stage: Stage) -> list[WDSR]:
        if stage.name not in finished:
            finished[stage.name] = fit(stage, finished.get(stage.init), patches, s, ckpt, device)
            ckpt.state["current"] = None
            ckpt.save()
        models = [add_weight_norm(WDSR(arch)) for arch in stage.archs]
        for model, state in zip(models, finished[stage.name]["models"]):
            model.load_state_dict(state)
        return models

    scorer = s.scorer()
    if scorer == "bicubic":
        upscale = bicubic_upscaler(s.scale)
    elif scorer == "shared":
        upscale = model_upscaler(trained(shared_stage(s, items))[0], device)
    elif scorer == "self":
        scorer_stage = Stage.one("scorer", items, s.arch(), s.score_steps)
        upscale = model_upscaler(trained(scorer_stage)[0], device)
    else:
        upscale, scorer = bundle_upscaler(bundle_io.load(s.score), w, h, s.device), f"bundle:{Path(s.score).name}"
    psnr = score(frames, grid, upscale)
    train_labels, thresholds = split(psnr[train_frames], s.chunks, s.split if s.mode == "chunks" else "count")
    labels = label(psnr, thresholds)
    labels[train_frames] = train_labels
    chunk = torch.from_numpy(labels.reshape(len(frames), -1).astype(np.int64))[items[:, 0], items[:, 1]]
    stages = plan_stages(s, items, chunk, torch.Generator().manual_seed(s.seed))
    models = [trained(stage) for stage in stages][-1]
    k = len(models)
    b = bundle_io.Bundle(
        scale=s.scale, patch_width=s.patch_width, patch_height=s.patch_height, archs=stages[-1].archs,
        weights=[plain_state(model) for model in models],
        labels=labels if k > 1 else np.zeros_like(labels), psnr=psnr, fingerprints=frames.fingerprints,
        thresholds=thresholds if k > 1 else [], clip=clip_info,
        training=asdict(s) | {
            "joint_schedule": s.schedule() if s.mode == "joint" else [], "device": str(device),
            "seconds": round(time.time() - started, 1), "scorer": scorer, "thresholds": thresholds,
            "stages": {st.name: {"steps": st.steps,
                                 "patches": torch.bincount(st.owner, minlength=len(st.archs)).tolist()}
                       for st in stages},
            "total_steps": sum(st.steps for st in stages), "heldout": heldout, "train_patches": len(items)})
    if k > 1:
        route(b, frames, train_frames, s, device)
    bundle_io.save(b, out)
    ckpt.path.unlink(missing_ok=True)
    return b
