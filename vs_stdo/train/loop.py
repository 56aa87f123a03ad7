"""The training loop: one readable loop that trains a stage's models in lockstep (L1 or MSE loss, Adam, one
cosine learning-rate schedule, fp16 autocast on CUDA) until the stage's progress reaches 1 (its steps or its
time budget), resumable from the checkpoint at any step."""
from __future__ import annotations

import copy
import itertools
import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..core.metrics import mse_to_psnr
from ..core.models import WDSR, add_weight_norm
from .checkpoint import Checkpoint, StopRequest, out_of_memory_is_an_error
from .data import Patches
from .settings import Settings
from .stages import Stage, stage_seed
from .world import World


def fit(stage: Stage, init: dict | None, patches: Patches, s: Settings, ckpt: Checkpoint,
        world: World, clock: Callable[[], float] = time.monotonic) -> dict[str, list]:
    """Train a stage's models: L1 or MSE loss (s.train_loss(), each drawn patch's scaled as the stage says), Adam,
    resumable. `init`: the finished stage of one model of the main preset (the shared model, or a generic start
    without Adam state) that models of that preset start from, with its Adam state where it has one. `patches`
    cuts this rank's frames (world.py). The stage stops when its progress (stages.Stage.progress) reaches 1, or
    would within a step as long as its last: its steps done, or its time budget spent on `clock` (the main rank's,
    under torchrun), counted from this call. A non-finite loss stops the run at once (the checkpoint on disk keeps
    the last good state). Returns {"models": [...], "opts": [...], "steps": n}: their (weight-normed) states and
    Adam states, on the CPU, and the steps the stage ran; with a time budget also "budget" (its seconds) and
    "spent" (the share of them it used)."""
    began = clock()  # the stage's time counts from here, its models' set-up included
    device = world.device
    seed = stage_seed(s.seed, stage.name)
    torch.manual_seed(seed)
    models, opts = [], []
    for arch in stage.archs:
        model = add_weight_norm(WDSR(arch))
        start_from = init is not None and arch == s.arch()
        if start_from:
            model.load_state_dict(init["models"][0])
        model.to(device).train()
        opt = torch.optim.Adam(model.parameters(), lr=s.learning_rate)
        if start_from and "opts" in init:  # a copy: loading does not copy CPU tensors; models must not share state
            opt.load_state_dict(copy.deepcopy(init["opts"][0]))
        models.append(model)
        opts.append(opt)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    scaler.scale(torch.zeros((), device=device))  # sets its scale up now: a rank may step before its first loss
    gen = torch.Generator().manual_seed(seed)  # the same on every rank: all ranks draw the same batch
    start, since = 0, 0.0   # a resumed stage's step and the share of its time it had used
    cur = ckpt.state["current"]
    if cur is not None and cur["stage"] == stage.name:
        for model, opt, model_state, opt_state in zip(models, opts, cur["models"], cur["opts"]):
            model.load_state_dict(model_state)
            opt.load_state_dict(opt_state)
        scaler.load_state_dict(cur["scaler"])
        gen.set_state(cur["rng"])
        start, since = cur["step"], cur.get("spent", 0.0)

    def elapsed() -> float:
        """Seconds since the stage began, the same on every rank (0 without a time budget: no clock is read)."""
        return world.first(clock() - began) if math.isfinite(stage.budget) else 0.0

    def states() -> dict[str, list]:
        return {"models": [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in models],
                "opts": [opt.state_dict() for opt in opts]}

    def snapshot(done: int) -> None:
        if world.any(not finite(models)):  # the last step made the weights overflow: keep the checkpoint as it is
            raise diverged(stage, done, "nan", s, ckpt)
        ckpt.state["current"] = {"stage": stage.name, "step": done, "spent": stage.spent(elapsed(), since), **states(),
                                 "scaler": scaler.state_dict(), "rng": gen.get_state()}
        ckpt.save()

    squared = s.train_loss() == "mse"
    bar = tqdm(total=stage.steps, initial=start, desc=stage.name, unit="step", disable=not world.main)
    losses: list[torch.Tensor] = []  # since the bar was last updated (read back every 10 steps only)
    with StopRequest() as stop, out_of_memory_is_an_error(device, s.batch, stage.name):
        now, ahead = elapsed(), 0.0  # ahead: the last step's seconds (the stage ends before a step would pass 1)
        for step in itertools.count(start):
            used = stage.spent(now, since)
            if stage.progress(step, stage.spent(now + ahead, since)) >= 1:
                break
            pick = stage.draw(s.batch, gen)
            owner = stage.owner[pick]
            mine, items = world.local(stage.items[pick])
            scale = stage.loss_scale(pick)[mine].to(device)
            if len(items):  # under torchrun a rank may hold none of a step's patches; it still sums gradients
                x, y = patches.batch(items)
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                out = torch.empty_like(y)
            rate = stage.learning_rate(s, step, used)
            step_loss = torch.zeros((), device=device)
            for i, (model, opt) in enumerate(zip(models, opts)):
                everywhere = int((owner == i).sum())   # this model's patches in the whole batch, on all ranks
                if not everywhere:
                    continue
                rows = torch.nonzero(owner[mine] == i).flatten().to(device)
                opt.zero_grad(set_to_none=True)
                if len(rows):
                    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                        pred = patches.predict(model, x[rows], items[rows.cpu()])
                    # summed over this rank's patches, divided by the whole batch's: all ranks add up to the mean
                    err = pred.float() - y[rows]
                    per_patch = (err.square() if squared else err.abs()).flatten(1).sum(1)
                    loss = (per_patch * scale[rows]).sum() / (everywhere * y[0].numel())
                    scaler.scale(loss).backward()
                    out[rows] = pred.detach()
                    step_loss += loss.detach() * everywhere / s.batch
                world.sum_gradients(model)
                for group in opt.param_groups:
                    group["lr"] = rate
                scaler.step(opt)
            scaler.update()
            losses.append(step_loss)
            done = step + 1
            bad = not torch.isfinite(step_loss).item() and (not amp or not finite(models))  # AMP skips inf steps
            if world.any(stop.requested or bad):
                if world.any(bad):
                    bar.close()
                    raise diverged(stage, done, f"{step_loss.item():g}" if bad else "nan", s, ckpt)
                snapshot(done)
                bar.close()
                raise KeyboardInterrupt(f"interrupted; checkpoint saved to {ckpt.path}, rerun with --resume")
            bar.update()
            if world.main and len(items) and (done % 10 == 0 or done == stage.steps):
                mse = F.mse_loss(out.clamp(0, 1), y).item()
                bar.set_postfix(loss=f"{torch.stack(losses).mean().item():.4f}", psnr=f"{mse_to_psnr(mse):.2f}",
                                **({"time": f"{used:.0%}"} if math.isfinite(stage.budget) else {}))
                losses.clear()
            if done % s.checkpoint_every == 0 and done < stage.steps:
                snapshot(done)
            later = elapsed()
            ahead, now = later - now, later
    bar.close()
    if world.any(not finite(models)):
        raise diverged(stage, step, "nan", s, ckpt)
    timed = {"budget": round(stage.budget, 1), "spent": round(used, 3)} if math.isfinite(stage.budget) else {}
    return states() | {"steps": step} | timed


def finite(models: list[WDSR]) -> bool:
    """Whether every weight of the models is finite."""
    return all(bool(torch.isfinite(p).all()) for m in models for p in m.parameters())


def diverged(stage: Stage, step: int, loss: str, s: Settings, ckpt: Checkpoint) -> RuntimeError:
    """The error that stops a run whose loss or weights stopped being finite (the checkpoint keeps the state it
    last saved, taken while they were)."""
    kept = f"; {ckpt.path} keeps the last good state: delete it to start over" if ckpt.path.is_file() else ""
    return RuntimeError(f"training diverged at step {step} of stage {stage.name} (loss {loss}); lower "
                        f"--learning-rate (now {s.learning_rate:g}){kept}")
