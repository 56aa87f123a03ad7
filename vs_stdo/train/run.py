"""A whole training job: score the patches, split them into chunks, train the stages, route, write the bundle."""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from ..core import bundle as bundle_io
from ..core.clip_record import ClipRecord
from ..core.colour import Colour
from ..core.device import pick_device
from ..core.metrics import psnr_to_mse
from ..core.models import WDSR, add_weight_norm, from_plain, plain_state
from ..core.training_record import AutoRecord, HeldoutRecord, TrainingRecord
from . import generic, preflight, router_fit
from .checkpoint import Checkpoint, input_of, run_id
from .combing import left_out, zigzag
from .chunks import auto_summary, fewest_models, floor_for, floor_note, label, split
from .data import Frames, Patches, all_items
from .deadline import Deadline
from .loop import fit
from .phases import Phases
from .router_fit import ROUTER_FRAMES
from .scoring import bicubic_upscaler, bundle_upscaler, model_upscaler, models_psnr, score
from .settings import Settings
from .stages import Stage, check_data, heldout_frames, plan_stages, shared_stage, total_steps
from .target import Target, target_for
from .validation import settle
from .world import World


def train(frames: Frames, s: Settings, out: Path, clip: ClipRecord, resume: bool = False,
          world: World | None = None, count: int | None = None, phases: Phases | None = None,
          colour: Colour | None = None, deadline: Deadline | None = None,
          unseen: tuple[Frames, list[tuple[int, int]]] | None = None, checked: bool = False) -> bundle_io.Bundle:
    """Run a whole training job on decoded frames and write the bundle to `out` (which records `colour`,
    how the frames' HR/LR pair was read).

    Alone, `frames` are all the training frames. Under torchrun (`world`), they are this rank's share of
    the `count` training frames (positions rank, rank + size, ...; see world.py). `phases` records where
    the time and memory went (the caller may have recorded decoding in it). `deadline`: when the run must be
    done (default: --time's, from the process's start; deadline.py gives each stage and the router its time).
    `unseen`: frames of scenes never trained on and their stretches of HR frames (a remaster run, main process):
    played as unseen frames play, they scale the models' residuals and measure the bundle (validation.py).
    `checked`: the caller (job.run_job) has checked the settings and their files; else they are checked here."""
    if not checked:
        s.check()
        s.check_files()
    deadline = deadline or Deadline.of(s)
    world = world or World(device=pick_device(s.device))
    phases = phases or Phases()
    count = len(frames) if count is None else count
    if frames.mapping.scale() > s.scale:
        raise ValueError(f"the frames' LR-to-HR ratios ({frames.mapping.describe()}) need models at "
                         f"x{frames.mapping.scale()} or more; settings say x{s.scale}")
    h, w = frames.lr.shape[-2:]
    grid, s = check_data(s, w, h, count)
    target = target_for(frames.mapping, s.scale, grid, s.train_context())
    device = world.device
    started = time.time()
    heldout = heldout_frames(count, s.holdout)
    shares = world.gather(np.stack([zigzag(frames.lr), zigzag(frames.hr)], 1), count)
    combed, warnings = left_out(shares[:, 0], shares[:, 1], keep=s.combed_frames == "keep")
    for line in warnings if world.main else ():
        print(line, file=sys.stderr)
    train_frames = [f for f in range(count) if f not in set(heldout) | set(combed)]
    if not train_frames:
        raise ValueError("no frame is left to train on once the held-out and combed ones are left out")
    items = all_items(count, grid.count)
    items = items[torch.isin(items[:, 0], torch.tensor(train_frames))]
    patches = Patches(frames, grid, target)
    fingerprints = world.gather(frames.fingerprints, count)
    preflight.check_writable(out, {}, "-o")  # before its checkpoint is written next to it
    ckpt = Checkpoint(Path(str(out) + ".ckpt"), run_id(fingerprints), writer=world.main, settings=s,
                      inputs=input_of(clip))
    ckpt.open(resume)
    finished: dict[str, dict] = ckpt.state["finished"]
    plain, started_from = generic.start(s.init, s.arch())
    warm = None if plain is None else {"models": [add_weight_norm(from_plain(s.arch(), plain)).state_dict()]}
    if world.main:
        print(f"first model starts from: {started_from}", file=sys.stderr)

    def trained(stage: Stage, kept: float = 0.0) -> list[WDSR]:
        if stage.name not in finished:
            init = finished.get(stage.init) if stage.init else warm
            budget = world.first(deadline.budget(stage, total_steps(s, len(items)), kept))
            finished[stage.name] = fit(replace(stage, budget=budget), init, patches, s, ckpt, world, deadline.clock)
            ckpt.state["current"] = None
            ckpt.save()
            phases.done(f"train {stage.name}")
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
        upscale = model_upscaler(trained(Stage.one("scorer", items, s.arch(), s.score_steps))[0], device)
    else:
        upscale, scorer = bundle_upscaler(bundle_io.load(s.score), w, h, s.device), f"bundle:{Path(s.score).name}"
    began = deadline.clock()
    psnr = world.gather(score(frames, target, upscale), count)
    phases.done("score")
    pass_s = deadline.clock() - began if scorer in ("shared", "self") else None  # one pass of a model of the run
    floor = floor_for(psnr[train_frames], s.k(), s.split, s.min_chunk)
    train_labels, thresholds = split(psnr[train_frames], s.k(), s.split, floor)
    if world.main and s.k() > 1:
        sizes = ", ".join(map(str, np.bincount(train_labels.ravel(), minlength=s.k())))
        floored = floor_note(floor)
        if floor and s.min_chunk == "auto":
            floored += " (--min-chunk auto: a chunk of the plain split held one frame's patches only)"
        print(f"split by {s.split}: chunks of {sizes} training patches, hardest first{floored}", file=sys.stderr)
    labels = label(psnr, thresholds)
    labels[train_frames] = train_labels
    at = items[:, 0].numpy(), items[:, 1].numpy()  # each training item's (frame, patch)
    chunk = torch.from_numpy(labels.reshape(count, -1)[at].astype(np.int64))
    mse = torch.from_numpy(psnr_to_mse(psnr.reshape(count, -1)[at]))
    stages = plan_stages(s, items, chunk, mse)
    kept = deadline.after_training(s, pass_s, frames.lr, device)
    if world.main and (late := deadline.late(s, kept)):
        print(late, file=sys.stderr)
    models = [trained(stage, kept if stage is stages[-1] else 0.0) for stage in stages][-1]
    k = len(models)
    b = bundle_io.Bundle(
        scale=s.scale, patch_width=s.patch_width, patch_height=s.patch_height, archs=stages[-1].archs,
        weights=[plain_state(model) for model in models],
        labels=labels if k > 1 else np.zeros_like(labels), psnr=psnr, fingerprints=fingerprints,
        thresholds=thresholds if k > 1 else [], clip=clip,
        training=TrainingRecord.of(asdict(s) | {
            "device": str(device),
            "processes": world.size, "seconds": round(time.time() - started, 1), "phases": phases.rows,
            "scorer": scorer, "started_from": started_from, "loss": s.train_loss(),
            "thresholds": thresholds, "floor": floor,
            "stages": {st.name: {"steps": finished[st.name].get("steps", st.steps),
                                 **{k: finished[st.name][k] for k in ("budget", "spent") if k in finished[st.name]},
                                 "patches": torch.bincount(st.owner, minlength=len(st.archs)).tolist()}
                       for st in stages},
            "total_steps": sum(finished[st.name].get("steps", st.steps) for st in stages), "heldout": heldout,
            "combed": combed,
            "train_patches": len(items)}),
        colour=colour, weight_storage=s.weights, mapping=frames.mapping)
    b.weights = bundle_io.from_bytes(bundle_io.to_bytes(b)).weights  # as stored: labels and router see what plays
    if k > 1:
        route(b, frames, target, train_frames, s, world, count, phases, deadline)
    if unseen is not None:
        shared = plain_state(trained(shared_stage(s, items))[0]) if "shared" in finished else None
        b, h = settle(b, shared, unseen[0], target, device, unseen[1])
        b.training.heldout_scenes = HeldoutRecord(**h.record())
        phases.done("held-out scenes")
        print(h.line() if h.gain_db >= 0 else f"warning: {h.line()}; the bundle does worse than bicubic on scenes "
              f"it never saw: train on more of the show (a wider --frames range, more --frame-memory)", file=sys.stderr)
    if world.main:
        bundle_io.save(b, out)
        ckpt.remove()
        phases.done("write")
        phases.print()
    world.barrier()
    return b


def route(b: bundle_io.Bundle, frames: Frames, target: Target, train_frames: list[int], s: Settings, world: World,
          count: int, phases: Phases, deadline: Deadline) -> None:
    """With k > 1 models: keep the fewest that pay (--chunks auto), set the routing labels and fit the
    blind router.

    labels "best" relabels every patch of every frame (held-out ones too: labels come from the HR) with the
    model that reconstructs it best, the assignment step of hard EM; "split" keeps each patch's chunk. The
    blind router learns, on (at most ROUTER_FRAMES of) the training frames, which model does best where;
    under torchrun, on those of the main rank's frames; its fit stops at the `deadline`.
    """
    mine = [p for p in world.share(count) if p in set(train_frames)]
    picked = mine[::math.ceil(len(mine) / ROUTER_FRAMES)] if mine else []
    local = [p // world.size for p in picked]
    if s.labels == "best" or s.auto():
        each = models_psnr(b, frames, target, world.device)  # (k, this rank's frames, ...)
        if s.auto():
            kept = keep_fewest(b, world.gather(each.swapaxes(0, 1), count).swapaxes(0, 1))
            each = each[kept]
            if world.main:
                print(auto_summary(b.training.auto))
        if s.labels == "best":
            b.labels = world.gather(each.argmax(0).astype(np.uint8), count)
        each = each[:, local]
        phases.done("label")
    elif world.main:  # only the router's frames (a copy of them, not of the clip)
        each = models_psnr(b, frames.subset(local), target, world.device)
    if world.main and b.chunks > 1:
        b.router = router_fit.fit(frames.lr[local], b.grid, b.scale, each, b.labels[picked], seed=s.seed,
                                  budget=deadline.left(), clock=deadline.clock)
        b.training.router_steps = b.router.info.steps
        phases.done("router")


def keep_fewest(b: bundle_io.Bundle, each: np.ndarray) -> list[int]:
    """--chunks auto: keep the fewest of the bundle's models that pay, judged by every patch's PSNR under each
    model, `each` (k, frames, rows, cols); returns the kept ones. A dropped chunk joins the nearest harder kept
    chunk (the hardest kept one where none is harder), so split labels and thresholds stay a split."""
    kept, curve = fewest_models(each)
    b.archs, b.weights = [b.archs[i] for i in kept], [b.weights[i] for i in kept]
    group = np.maximum(np.searchsorted(kept, np.arange(len(each)), side="right") - 1, 0).astype(np.uint8)
    b.labels = group[b.labels]
    b.thresholds = [b.thresholds[i - 1] for i in kept[1:]]
    b.training.auto = AutoRecord(kept, curve)
    return kept
