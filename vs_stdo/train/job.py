"""One training job, from what a command line names to a written bundle: the checks before the long work, the
pair and the frames it decodes, the plan, then the run (run.py). `stdo train`, the benchmarks and the tests
all start training here."""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from ..core import colour
from ..core.bundle import Bundle
from ..core.clip_record import ClipRecord
from ..core.device import pick_device
from ..core.mapping import Box
from ..core.usage import UsageError
from . import checkpoint, generic, preflight
from .data import load_frames
from .frames import choose
from .pairs import alignment_record, model_scale, open_training_pair, saved_alignment
from .phases import Phases
from .run import train
from .scenes import split_pairs
from .settings import SCORERS, Settings
from .stages import check_data, heldout_frames, plan_summary
from .world import World


HELDOUT_FRAMES = 32  # of a remaster run's held-out scenes, the frames played to measure and damp the bundle


@dataclass(frozen=True)
class Job:
    """What a training job reads and writes: the HR `input` (a video file or .vpy), the bundle `output`, the
    run's settings, and optionally the user's LR encode, a START:END range of the input, the downscale kernel
    (without an LR file), and whether to resume from the checkpoint or replace an earlier bundle. An LR file that is
    no whole-scale downscale of the input is a remaster pair (pairs.py): aligned first, trained on the HR grid."""
    input: str
    output: str
    settings: Settings
    lr_file: str | None = None
    frames: str | None = None
    kernel: str = "bicubic"
    resume: bool = False
    force: bool = False
    scale_given: bool = True   # False: an LR file's models take the scale its ratio needs
    align_only: bool = False   # with lr_file: print the alignment, write <output>.align.png and .pairs.csv, stop
    hr_bars: Box | None = None  # the input's black bars (left, right, top, bottom); None: found
    lr_bars: Box | None = None  # the LR file's, the same


def run_job(job: Job) -> Bundle | None:
    """Check everything that can be checked before decoding, decode the training frames, say the plan, train,
    and write the bundle (on the main process under torchrun). Returns the bundle (None with `align_only`).
    The settings are checked once (a UsageError names a bad value), the --init and --score bundles once, at
    the models' scale."""
    s = job.settings
    s.check()
    reads = {"the input": job.input, "the --lr file": job.lr_file,
             "the --score bundle": None if s.score in SCORERS else s.score,
             "the --init bundle": None if s.init in generic.INITS else s.init}
    if job.align_only:  # it writes the picture only: any -o will do, an existing bundle stays
        if not job.lr_file:
            raise UsageError("--align-only needs --lr: it aligns the LR file to the input")
        preflight.check_writable(job.output + ".align.png", reads, "--align-only's picture (-o + .align.png)")
    else:
        preflight.check_bundle_output(job.output, reads, job.force)
    opened = open_training_pair(job.input, job.lr_file, job.frames, s.scale, job.scale_given, job.kernel,
                                job.output, job.align_only, job.hr_bars, job.lr_bars, job.resume)
    if opened is None:  # --align-only
        return None
    p, alignment, report = opened
    s = replace(s, scale=model_scale(p.mapping, s.scale if job.scale_given or not job.lr_file else None))
    s.check_files()
    src, lr = p.source, p.lr
    candidates, unseen = range(lr.num_frames), []
    if alignment is not None and s.scene_holdout > 0:  # a remaster bundle plays on scenes it never saw
        unseen, candidates = split_pairs(p.frames, alignment.cuts, s.scene_holdout)
    positions = choose(candidates, s.train_frames, s.frame_memory, lr.width, lr.height, s.scale)
    grid, s = check_data(s, lr.width, lr.height, len(positions), decoded=False)
    patches = grid.count * (len(positions) - len(heldout_frames(len(positions), s.holdout)))
    disk = preflight.check_disk(s, job.output, len(positions), grid.count)
    sampled = len(positions) < lr.num_frames
    clip = ClipRecord(lr.width, lr.height, len(positions), src.fps.numerator, src.fps.denominator,
                      Path(job.input).name, job.frames or ":",
                      lr=Path(job.lr_file).name if job.lr_file else f"{job.kernel} downscale",
                      kernel=None if job.lr_file else job.kernel, range_frames=lr.num_frames if sampled else None,
                      sample=list(positions) if sampled else None,
                      **alignment_record(alignment, report, [p.frames[i] for i in positions]))
    checkpoint.check(Path(job.output + ".ckpt"), s, checkpoint.input_of(clip), job.resume, say=False)
    world = World.join(pick_device(s.device))
    if len(positions) < world.size:
        raise ValueError(f"{len(positions)} training frame(s) for {world.size} processes; give each process at "
                         f"least one frame (more --train-frames or fewer processes)")
    mine = positions[world.rank::world.size]
    if world.main:
        held = (f"{len(positions)} of {lr.num_frames} frames, evenly spread" if len(positions) < lr.num_frames
                else f"all {lr.num_frames} frames")
        memory = preflight.frames_bytes(lr.width, lr.height, len(mine), s.scale) / preflight.GB
        print(f"training on {held}: {memory:.2f} GiB of decoded frames"
              + (f" per process ({world.size} processes)" if world.size > 1 else "")
              + f", about {disk / (1 << 20):.1f} MB written next to -o", file=sys.stderr)
    phases = Phases()
    hr = p.hr
    if s.planes == "luma":
        hr, lr = colour.luma_of(hr, p.colour), colour.luma_of(lr, p.colour)
        if world.main:
            print(f"luma: Y of the pair read with matrix {p.colour.matrix} ({colour.matrix_name(p.colour.matrix)})",
                  file=sys.stderr)
    frames = load_frames(hr, lr, mine, p.mapping)
    scenes = None
    if unseen and world.main:
        played = choose([i for h in unseen for i in h], HELDOUT_FRAMES, s.frame_memory, lr.width, lr.height, s.scale)
        scenes = (load_frames(hr, lr, played, p.mapping, desc="reading held-out frames"),
                   [(p.frames[h.start], p.frames[h.stop - 1]) for h in unseen])
    phases.done("decode")
    if world.main:
        print(f"plan: {plan_summary(s, patches)}"
              + (f"; a stage ends sooner where its share of --time {s.time:g} s runs out" if s.time else ""),
              file=sys.stderr)
    b = train(frames, s, Path(job.output), clip, resume=job.resume, world=world, count=len(positions),
              phases=phases, colour=p.colour, unseen=scenes, checked=True)
    saved_alignment(job.output).unlink(missing_ok=True)  # the run is done: its checkpoint is gone too
    if world.main:
        print(f"wrote {job.output}: {b.chunks} model(s), x{b.scale}, {b.clip.frames} frames "
              f"({len(b.training.heldout)} held out), {Path(job.output).stat().st_size} bytes")
    return b
