"""The training pair of a job: the input (HR) and its LR, frame by frame, and where the LR lies on the HR grid.

Every pair has a mapping (core/mapping.py), and training, scoring and playback follow it (target.py). Without
an LR file the LR is the input downscaled by the scale; an LR file whose size is the input's divided by a
whole scale, with as many frames, is taken frame for frame: both have the plain mapping (HR = s x LR). Any
other LR file (a DVD against a Blu-ray: another ratio per axis, another framing, another frame count) is a
remaster pair: train/align/ pairs its frames by content and estimates the mapping to a fraction of a
pixel, and each side is read with its own colour. The clips are opened once, here.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import vapoursynth as vs

from ..core import colour
from ..core.clip_record import AlignmentRecord
from ..core.files import write_atomic
from ..core.mapping import Box, Mapping
from ..core.models import SCALES
from ..core.video import Pair, check_progressive, frame_range, open_clip, pick, whole_pair
from .align import Alignment, align
from .world import main_process


def whole_scale(hr: vs.VideoNode, lr: vs.VideoNode, scale: int | None) -> int | None:
    """The whole scale s at which `lr` is `hr` downscaled frame for frame (the HR's size cropped to a multiple of
    s, divided by s; as many frames): `scale` if given and it fits, else any of the models' scales that fits;
    None when none does (a remaster pair)."""
    def fits(s: int) -> bool:
        return (lr.width, lr.height) == (hr.width // s, hr.height // s) and lr.num_frames == hr.num_frames
    candidates = [scale] if scale is not None else list(SCALES)
    return next((s for s in candidates if fits(s)), None)


def model_scale(mapping: Mapping, given: int | None) -> int:
    """The models' whole scale, the one every message and the training use: `given` (--scale) when at or above
    the larger ratio, else an error; by default the mapping's (at least 2, the smallest the models have)."""
    need = max(mapping.ratio_x, mapping.ratio_y)
    if mapping.scale() > max(SCALES):
        raise ValueError(f"the LR-to-HR ratio {mapping.ratio_x:.3f} x {mapping.ratio_y:.3f} is beyond x{max(SCALES)}, "
                         f"the largest scale the models have; give a larger LR")
    if given is None:
        return max(2, mapping.scale())
    if given + 1e-6 < need:
        raise ValueError(f"--scale {given} is below the LR-to-HR ratio {mapping.ratio_x:.3f} x {mapping.ratio_y:.3f}; "
                         f"give --scale {mapping.scale()} or more, or leave --scale out")
    return given


def open_training_pair(input: str | Path, lr_file: str | Path | None, frames: str | None, scale: int,
                       scale_given: bool, kernel: str = "bicubic", output: str | Path | None = None,
                       align_only: bool = False, hr_bars: Box | None = None, lr_bars: Box | None = None,
                       resume: bool = False) -> tuple[Pair, Alignment | None, list[str]] | None:
    """The pair `stdo train INPUT [--lr LR_FILE] [--frames A:B]` trains on, with a remaster pair's alignment and
    the lines printed of it (None and none for a whole-scale pair). The whole scale is `scale` if `scale_given`,
    else whatever whole scale the LR file has (`scale` without one). A remaster pair's alignment is printed
    before anything else, with `output` every frame's pairing written to <output>.pairs.csv; with `align_only`
    (--align-only) any LR file is aligned, <output>.align.png written too, and None returned. Either way
    ValueError where training would not go ahead: a framing that changes, a mapping too uncertain, a scale the
    models do not reach. `hr_bars`/`lr_bars`: each side's black bars (left, right, top, bottom), found when None.
    With `output`, the alignment is kept in <output>.ckpt.align until the run ends; `resume` reads it back."""
    src = open_clip(input)
    check_progressive(src, "input")
    lr_src = open_clip(lr_file, "LR file") if lr_file else None
    if lr_src is not None:
        check_progressive(lr_src, "LR file")
    whole = scale if lr_src is None else whole_scale(src, lr_src, scale if scale_given else None)
    if whole is not None and not align_only:
        return whole_pair(src, lr_src, frames, whole, kernel), None, []
    picked = frame_range(frames, src.num_frames)
    print(f"aligning {Path(lr_file).name} ({lr_src.width}x{lr_src.height}, {lr_src.num_frames} frames) to "
          f"{Path(input).name} ({src.width}x{src.height}, {src.num_frames} frames)", file=sys.stderr)
    saved = None if output is None or align_only else saved_alignment(output)
    key = identity(input, lr_file, hr_bars, lr_bars)
    a = aligned(src, lr_src, hr_bars, lr_bars, saved if resume else None, key)
    kept = [(h, l) for h, l in a.pairs if h in picked]
    try:
        models, refusal = model_scale(a.mapping, scale if scale_given else None), None
    except ValueError as e:
        models, refusal = None, str(e)
    report = a.lines(models) + ([f"--frames {frames}: training on the {len(kept)} pairs of HR frames "
                                 f"{picked.start}-{picked.stop - 1}"] if len(picked) < src.num_frames else [])
    for line in report:
        print(line, file=sys.stderr)
    if output is not None and main_process():  # one writer under torchrun
        print(f"wrote {a.save_csv(str(output) + '.pairs.csv')}: every frame's pair, figure, and why it is left out",
              file=sys.stderr)
    if align_only and output is not None:
        png = a.save_png(str(output) + ".align.png", src, lr_src)
        print(f"--align-only: wrote {png}; no bundle (run again without --align-only to train)", file=sys.stderr)
    refusal = refusal or a.problems(picked)
    if refusal:
        raise ValueError(refusal)
    if not kept:
        raise ValueError(f"no LR frame pairs with HR frames {picked.start}-{picked.stop - 1} (--frames); widen "
                         f"--frames or check the LR")
    if align_only:
        return None
    if saved is not None and main_process():  # training goes ahead: kept for --resume
        write_atomic(saved, key + b"\n" + a.to_json())
    hr_colour, lr_colour = colour.pair_colour(src), colour.pair_colour(lr_src)  # each side with its own tags
    hr_rgb = colour.clip_to_rgbs(pick(src, [h for h, _ in kept]), hr_colour)
    lr_paired = pick(lr_src, [l for _, l in kept])
    pair = Pair(src, hr_rgb, colour.clip_to_rgbs(lr_paired, lr_colour), lr_colour, lr_paired, a.mapping,
                [h for h, _ in kept])
    return pair, a, report


def saved_alignment(output: str | Path) -> Path:
    """Where a run keeps its pair's alignment beside its checkpoint (<output>.ckpt.align)."""
    return Path(f"{output}.ckpt.align")


def identity(input: str | Path, lr_file: str | Path, hr_bars: Box | None, lr_bars: Box | None) -> bytes:
    """What an alignment was made of: both files (path, size, time written) and the bars asked for."""
    return json.dumps([[str(Path(f).resolve()), os.stat(f).st_size, os.stat(f).st_mtime_ns] for f in (input, lr_file)]
                      + [hr_bars, lr_bars]).encode()


def aligned(hr: vs.VideoNode, lr: vs.VideoNode, hr_bars: Box | None, lr_bars: Box | None, saved: Path | None,
            key: bytes) -> Alignment:
    """The alignment of the whole clips (more frames tell a pan apart): read back from `saved` (a resumed run's)
    when it was made of the same files and bars (`key`; a long pair takes minutes to align), else estimated."""
    if saved is not None and saved.is_file():
        stored_key, _, data = saved.read_bytes().partition(b"\n")
        if stored_key != key:
            print(f"alignment: {saved} was made of other files or bars; aligning again", file=sys.stderr)
        else:
            try:
                a = Alignment.from_json(data)
                print(f"alignment: read back from {saved} (--resume)", file=sys.stderr)
                return a
            except ValueError as e:
                print(f"alignment: {saved} is unreadable ({e}); aligning again", file=sys.stderr)
    return align(hr, lr, hr_bars=hr_bars, lr_bars=lr_bars)


def alignment_record(a: Alignment | None, report: list[str], hr_frames: list[int]) -> dict[str, AlignmentRecord]:
    """What the bundle's clip record keeps of a remaster pair's alignment (`stdo info` shows it), `hr_frames`
    being the input's frame number of each of the bundle's frames; nothing for a whole-scale pair."""
    if a is None:
        return {}
    return {"alignment": AlignmentRecord(
        lines=report, pairs=len(a.pairs), trained_pairs=len(hr_frames), hr_frames=hr_frames, dropped=len(a.dropped),
        frame_offset=a.frame_offset(), frame_offsets=a.offsets(), unpaired_hr=a.unpaired[0],
        unpaired_lr=a.unpaired[1], precision_px=a.precision,
        residual_median_db=round(float(np.median(a.residuals)), 2) if a.residuals else None,
        figure_median_db=round(float(np.median(a.kept_figures())), 2) if len(a.kept_figures()) else None)}
