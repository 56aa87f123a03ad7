"""Training: score patches, split them into chunks, overfit models, write the bundle.

Modes
  chunks  STDO: one model per chunk. By default one shared model is first trained on all patches
          (`pretrain` of the step budget), then copied into k models fine-tuned on their own chunk
          (the rest of the budget, split in proportion to chunk size). pretrain=0 trains each chunk
          model from scratch, as the paper does.
  joint   JSTDO: one model on all of chunk 0, none of chunk k-1, and a decreasing random fraction
          of the chunks between (`joint_schedule`).
  single  one model on all patches (the NAS-style baseline).

The loop is plain PyTorch (L1 loss, Adam, cosine decay). Progress is checkpointed to
`<bundle>.ckpt` (tensors and numbers only, loaded with weights_only=True) so a killed run resumes
where it stopped and ends with the same weights as an uninterrupted run.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import bundle as bundle_io
from .chunking import bicubic_psnr, split
from .engine import pick_device
from .dataset import CONTEXT_CAP, Frames, Patches, all_items
from .grid import Grid
from .metrics import mse_to_psnr
from .models import WDSR, Arch, add_weight_norm, plain_state, preset

MODES = ("chunks", "joint", "single")


@dataclass
class Settings:
    scale: int = 4
    chunks: int = 4
    mode: str = "chunks"
    preset: str = "tiny"
    steps: int = 2000              # total optimiser steps, shared by all models of the run
    batch: int = 16
    lr: float = 1e-3
    seed: int = 0
    patch_width: int = 48
    patch_height: int = 54
    pretrain: float = 0.5          # chunks mode: share of steps for the shared model
    joint_schedule: list[float] = field(default_factory=list)  # joint: fraction kept per chunk
    device: str = "cpu"
    checkpoint_every: int = 200

    def check(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        preset(self.preset, self.scale)  # raises on a bad preset or scale
        if self.chunks < 1:
            raise ValueError(f"--chunks must be at least 1, got {self.chunks}")
        if self.steps < 1 or self.batch < 1:
            raise ValueError("--steps and --batch must be positive")
        if not 0 <= self.pretrain < 1:
            raise ValueError(f"--pretrain must be in [0, 1), got {self.pretrain}")

    def schedule(self) -> list[float]:
        """Joint mode: the fraction of each chunk's patches used, chunk 0 first (all) to k-1 (none)."""
        if self.joint_schedule:
            if len(self.joint_schedule) != self.chunks:
                raise ValueError(f"--joint-schedule needs {self.chunks} fractions, one per chunk")
            return list(self.joint_schedule)
        k = self.chunks
        return [1.0] if k == 1 else [1 - i / (k - 1) for i in range(k)]


@dataclass(frozen=True)
class Stage:
    """One model trained for a number of steps on some patches, optionally starting from another."""

    name: str
    items: torch.Tensor
    steps: int
    init: str | None = None


def plan_stages(s: Settings, labels: np.ndarray, gen: torch.Generator) -> tuple[list[Stage], list[str]]:
    """The stages of a run and the names of the stages whose models go into the bundle, in chunk order."""
    items = all_items(*labels.shape)
    flat = torch.from_numpy(labels.reshape(-1).astype(np.int64))
    if s.mode == "single":
        return [Stage("single", items, s.steps)], ["single"]
    if s.mode == "joint":
        keep = torch.zeros(len(flat), dtype=torch.bool)
        for k, fraction in enumerate(s.schedule()):
            idx = torch.nonzero(flat == k).flatten()
            chosen = idx[torch.randperm(len(idx), generator=gen)[:round(fraction * len(idx))]]
            keep[chosen] = True
        return [Stage("joint", items[keep], s.steps)], ["joint"]
    stages = []
    shared = round(s.steps * s.pretrain)
    if shared:
        stages.append(Stage("shared", items, shared))
    rest = s.steps - shared
    for k in range(s.chunks):
        chunk_items = items[flat == k]
        steps = max(1, round(rest * len(chunk_items) / len(items)))
        stages.append(Stage(f"chunk{k}", chunk_items, steps, "shared" if shared else None))
    return stages, [f"chunk{k}" for k in range(s.chunks)]


def fingerprint_of(s: Settings, frames: Frames) -> str:
    """Identifies a run so a checkpoint is only resumed by the same settings and data."""
    h = hashlib.sha256(json.dumps(asdict(s) | {"device": None}, sort_keys=True).encode())
    h.update(frames.lr[:, :, ::7, ::7].numpy().tobytes())
    return h.hexdigest()[:16]


class Checkpoint:
    """Training state on disk: finished stage models and the running stage's full state."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path, self.run_id = path, run_id
        self.state: dict = {"run": run_id, "finished": {}, "current": None}

    def resume(self) -> bool:
        if not self.path.is_file():
            return False
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state.get("run") != self.run_id:
            raise ValueError(f"checkpoint {self.path} belongs to a different run (other settings or input); "
                             f"delete it or drop --resume")
        self.state = state
        return True

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save(self.state, tmp)
        os.replace(tmp, self.path)


def fit(stage: Stage, model: WDSR, patches: Patches, s: Settings, ckpt: Checkpoint, device: torch.device,
        seed: int) -> WDSR:
    """The training loop for one stage: L1 loss, Adam, cosine decay, resumable."""
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=s.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=stage.steps)
    gen = torch.Generator().manual_seed(seed)
    start = 0
    cur = ckpt.state["current"]
    if cur is not None and cur["stage"] == stage.name:
        model.load_state_dict(cur["model"])
        opt.load_state_dict(cur["opt"])
        sched.load_state_dict(cur["sched"])
        gen.set_state(cur["rng"])
        start = cur["step"]

    def snapshot(step: int) -> None:
        ckpt.state["current"] = {"stage": stage.name, "step": step, "model": model.state_dict(),
                                 "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": gen.get_state()}
        ckpt.save()

    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    bar = tqdm(range(start, stage.steps), desc=stage.name, unit="step", initial=start, total=stage.steps)
    loss_avg, step = None, start
    try:
        for step in bar:
            idx = stage.items[torch.randint(len(stage.items), (s.batch,), generator=gen)]
            x, y = patches.batch(idx)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                out = patches.crop_output(model(x))
                loss = F.l1_loss(out.float(), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            loss_avg = loss.item() if loss_avg is None else 0.95 * loss_avg + 0.05 * loss.item()
            if step % 10 == 0:
                mse = F.mse_loss(out.detach().float().clamp(0, 1), y).item()
                bar.set_postfix(loss=f"{loss_avg:.4f}", psnr=f"{mse_to_psnr(mse):.2f}")
            if (step + 1) % s.checkpoint_every == 0 and step + 1 < stage.steps:
                snapshot(step + 1)
    except KeyboardInterrupt:
        snapshot(step)
        bar.close()
        raise KeyboardInterrupt(f"interrupted; checkpoint saved to {ckpt.path}, rerun with --resume") from None
    bar.close()
    return model.eval()


def score(frames: Frames, grid: Grid, scale: int) -> np.ndarray:
    """Per-patch PSNR of the reference scorer, shape (frames, rows, cols)."""
    out = [bicubic_psnr(lr, hr.float() / 255, grid, scale) for lr, hr in
           tqdm(zip(frames.lr, frames.hr), total=len(frames), desc="scoring patches", unit="frame")]
    return torch.stack(out).numpy().reshape(len(frames), grid.rows, grid.cols).astype(np.float32)


def train(frames: Frames, s: Settings, out: Path, clip_info: dict, resume: bool = False) -> bundle_io.Bundle:
    """Run a whole training job on decoded frames and write the bundle to `out`."""
    s.check()
    if frames.scale != s.scale:
        raise ValueError(f"frames are x{frames.scale}, settings say x{s.scale}")
    device = pick_device(s.device)
    h, w = frames.lr.shape[-2:]
    grid = Grid(w, h, s.patch_width, s.patch_height)
    started = time.time()
    psnr = score(frames, grid, s.scale)
    k = 1 if s.mode in ("single", "joint") else s.chunks
    labels, thresholds = split(psnr, s.chunks)
    gen = torch.Generator().manual_seed(s.seed)
    stages, keep = plan_stages(s, labels.reshape(len(frames), -1), gen)

    arch = preset(s.preset, s.scale)
    patches = Patches(frames, grid, min(arch.radius, CONTEXT_CAP))
    ckpt = Checkpoint(Path(str(out) + ".ckpt"), fingerprint_of(s, frames))
    if resume and ckpt.resume():
        print(f"resuming from {ckpt.path}")
    finished: dict[str, dict] = ckpt.state["finished"]
    for i, stage in enumerate(stages):
        if stage.name in finished:
            continue
        torch.manual_seed(s.seed + i)
        model = add_weight_norm(WDSR(arch))
        if stage.init:
            model.load_state_dict(finished[stage.init])
        model = fit(stage, model, patches, s, ckpt, device, s.seed + 1000 + i)
        finished[stage.name] = {k_: v.detach().cpu() for k_, v in model.state_dict().items()}
        ckpt.state["current"] = None
        ckpt.save()

    weights = []
    for name in keep:
        model = add_weight_norm(WDSR(arch))
        model.load_state_dict(finished[name])
        weights.append(plain_state(model))
    b = bundle_io.Bundle(
        scale=s.scale, patch_width=s.patch_width, patch_height=s.patch_height, archs=[arch] * k, weights=weights,
        labels=labels if k > 1 else np.zeros_like(labels), psnr=psnr, fingerprints=frames.fingerprints,
        thresholds=thresholds if k > 1 else [], clip=clip_info,
        training=asdict(s) | {"seconds": round(time.time() - started, 1), "scorer": "bicubic",
                              "stages": {st.name: st.steps for st in stages}})
    bundle_io.save(b, out)
    ckpt.path.unlink(missing_ok=True)
    return b
