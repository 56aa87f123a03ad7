"""The whole estimate of how an LR clip maps onto an HR clip: each clip's black bars found (`bars`) and left
out, frames paired in time on thumbnails of the pictures (`timeline`), the mapping fitted on a few full-size
pairs (`registration`), the frames paired again on thumbnails aligned through it and the gaps of held frames
filled, pairs far worse than the rest left out (`report`), and every pair measured at full size against the
mapping (`quality`): its figure, and whether it sits where the mapping says."""
from __future__ import annotations

import numpy as np
import vapoursynth as vs

from vs_stdo.core.mapping import Box, Mapping
from vs_stdo.core.models import SCALES

from ..scenes import cuts
from . import bars as bars_
from .quality import framing, is_scene, measure
from .reading import picture, picture_frame, read_thumbnails
from .registration import SEARCH, aligned_thumbnails, best_shift, coarse_mapping, refine
from .report import Alignment, leave_out, thumb_residuals
from .timeline import Matches, fill_gaps, match_frames, noise_floor, unpaired_reasons

THUMB_WIDTH = 64  # thumbnails: plenty to tell frames apart, small enough for a whole episode in memory
MIN_PAIRED = 0.5  # below this share of the shorter clip's frames paired, the clips are not the same show
MIN_CORRELATION = 0.6  # nor when the median paired thumbnails correlate less than this
REFINE_PAIRS = 6  # pairs the refinement fits at full size
FLAT = 0.02  # a thumbnail whose luma varies less than this (standard deviation) is blank: black, or nearly
LEAST_LR = 32  # LR picture pixels a side, at least, to align
MEASURED = 4000  # pairs measured at full size at most (evenly spread over longer clips)
SNAP_PX = 0.05  # HR px: a mapping this close to whole ratios (and to no offset) is taken as exactly that


def pick_pairs(hr_thumbs: np.ndarray, matches: Matches, n: int = REFINE_PAIRS) -> list[tuple[int, int]]:
    """Up to n pairs to refine on: one per stretch of the clip, the most textured (thumbnail gradient energy)
    among its well-matched ones (correlation at or above the median)."""
    good = np.flatnonzero(matches.corr >= np.median(matches.corr))
    thumbs = hr_thumbs[[matches.pairs[i][0] for i in good]].astype(np.float32)
    texture = np.abs(np.diff(thumbs, axis=1)).mean((1, 2)) + np.abs(np.diff(thumbs, axis=2)).mean((1, 2))
    parts = np.array_split(np.arange(len(good)), min(n, len(good)))
    return [matches.pairs[good[part[np.argmax(texture[part])]]] for part in parts if len(part)]


def _first_matches(hr_thumbs: np.ndarray, lr_thumbs: np.ndarray) -> Matches:
    """Frames paired on the thumbnails as they are; ValueError when too few pair up, or too poorly, for the
    clips to show the same thing."""
    matches = match_frames(hr_thumbs, lr_thumbs)
    shorter = min(len(hr_thumbs), len(lr_thumbs))
    median = float(np.median(matches.corr)) if len(matches.pairs) else 0.0
    if len(matches.pairs) < max(1, MIN_PAIRED * shorter) or median < MIN_CORRELATION:
        raise ValueError(f"the LR does not look like the HR: {len(matches.pairs)} of {shorter} frames pair up, "
                         f"their pictures' thumbnails correlate {median:.2f} (the same pictures: 0.9 or more). "
                         f"Check that both are the same episode; if they are, the pictures are framed too "
                         f"differently to align: bars that were not found (give --lr-bars or --hr-bars), or one "
                         f"shows a part of the other's picture (a 4:3 centre cut or a pan and scan of a 16:9 "
                         f"picture), which is not supported")
    return matches


def _rematch(hr_thumbs: np.ndarray, lr_thumbs: np.ndarray, mapping: Mapping, pairs: list[tuple[int, int]]
             ) -> tuple[Matches, np.ndarray, np.ndarray]:
    """Frames paired again on thumbnails aligned through `mapping` (costs in units of the noise floor of
    `pairs`), with those aligned thumbnails; ValueError when too few pair up."""
    hr_aligned, lr_aligned = aligned_thumbnails(hr_thumbs, lr_thumbs, mapping)
    matches = match_frames(hr_aligned, lr_aligned, noise_floor(hr_aligned, lr_aligned, pairs))
    shorter = min(len(hr_thumbs), len(lr_thumbs))
    if len(matches.pairs) < max(1, MIN_PAIRED * shorter):
        raise ValueError(f"the LR does not look like the HR: once aligned, only {len(matches.pairs)} of {shorter} "
                         f"frames pair up; check that both are the same episode")
    return matches, hr_aligned, lr_aligned


def _pictures(hr_pic: vs.VideoNode, lr_pic: vs.VideoNode, pairs: list[tuple[int, int]]
              ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The full-size pictures of the pairs' HR frames and of their LR frames."""
    return [picture_frame(hr_pic, h) for h, _ in pairs], [picture_frame(lr_pic, l) for _, l in pairs]


def _spread(pairs: list[tuple[int, int]], n: int = MEASURED) -> list[tuple[int, int]]:
    """All the pairs, or n of them evenly spread."""
    if len(pairs) <= n:
        return pairs
    return [pairs[int(i)] for i in np.linspace(0, len(pairs) - 1, n).round()]


def estimate(hr_pic: vs.VideoNode, lr_pic: vs.VideoNode, hr_thumbs: np.ndarray, lr_thumbs: np.ndarray,
             hr_blank: np.ndarray, lr_blank: np.ndarray) -> Alignment:
    """The whole estimate between two pictures (`reading.picture`: the clips' luma less their bars), from their
    thumbnails (normalised, the same size on both sides, zero where blank) and which frames are blank (never
    paired: any blank frame is like any other). The mapping is between the pictures.

    Pairs from framing-blind thumbnails can be a frame or two off in slow motion (or more in a zoom or pan):
    refine on them, check the offset at full size, pair again on thumbnails aligned through the result, and
    refine once more on the better pairs; then pair a last time, fill the gaps that held frames leave, leave
    out the pairs far worse than the rest and measure every pair against the mapping."""
    matches = _first_matches(hr_thumbs, lr_thumbs)
    chosen = pick_pairs(hr_thumbs, matches)
    hr_frames, lr_frames = _pictures(hr_pic, lr_pic, chosen)
    mapping, _ = refine(hr_frames, lr_frames, coarse_mapping(hr_frames, lr_frames), spread=False)
    check = np.argsort([-float(np.abs(np.diff(h, axis=1)).mean()) for h in hr_frames])[:2]
    shift, mapping = best_shift([hr_frames[k] for k in check], lambda n: picture_frame(lr_pic, n),
                                [chosen[k][1] for k in check], len(lr_thumbs), mapping)
    shifted = [(h, l + shift) for h, l in matches.pairs if 0 <= l + shift < len(lr_thumbs)]
    matches, _, _ = _rematch(hr_thumbs, lr_thumbs, mapping, shifted)
    picked = pick_pairs(hr_thumbs, matches)
    if picked != chosen:
        chosen = picked
        hr_frames, lr_frames = _pictures(hr_pic, lr_pic, chosen)
    mapping, precision = refine(hr_frames, lr_frames, mapping, (0.8, 0.0))
    matches, hr_aligned, lr_aligned = _rematch(hr_thumbs, lr_thumbs, mapping, matches.pairs)
    a = _judged(hr_pic, lr_pic, mapping, matches.pairs, hr_aligned, lr_aligned, hr_blank, lr_blank)
    a.precision, a.refined_on = precision, chosen
    return a


def _judged(hr_pic: vs.VideoNode, lr_pic: vs.VideoNode, mapping: Mapping, pairs: list[tuple[int, int]],
            hr_aligned: np.ndarray, lr_aligned: np.ndarray, hr_blank: np.ndarray, lr_blank: np.ndarray
            ) -> Alignment:
    """The alignment of the final `pairs` (on thumbnails aligned through `mapping`): gaps of held frames filled,
    pairs whose content differs left out, every pair measured at full size, a few frames off the mapping left
    out and scenes off it recorded, and why each unpaired frame is."""
    floor = noise_floor(hr_aligned, lr_aligned, pairs)
    pairs = fill_gaps(pairs, hr_aligned, lr_aligned, floor)
    kept, residuals, dropped = leave_out(pairs, thumb_residuals(hr_aligned, lr_aligned, pairs))
    measured = _spread(pairs)
    fit = measure(hr_pic, lr_pic, mapping, measured)
    runs = framing([h for h, _ in measured], fit)
    off = {h: run for run in runs if not is_scene(run, len(pairs)) for h, _ in kept if run[0] <= h <= run[1]}
    dropped += [(h, l, f"off the mapping by {off[h][2]:.1f} HR px: a few frames framed otherwise, or paired "
                       f"wrongly in time") for h, l in kept if h in off]
    residuals = [r for (h, _), r in zip(kept, residuals) if h not in off]
    kept = [(h, l) for h, l in kept if h not in off]
    unpaired_hr, unpaired_lr = unpaired_reasons(pairs, len(hr_aligned), len(lr_aligned), hr_blank, lr_blank)
    return Alignment(mapping, kept, residuals, sorted(dropped), len(hr_aligned), len(lr_aligned),
                     figures={h: float(f) for (h, _), f in zip(measured, fit.figure)},
                     shifts={h: (float(x), float(y)) for (h, _), (x, y) in zip(measured, fit.shift)},
                     unpaired_hr=unpaired_hr, unpaired_lr=unpaired_lr,
                     framed_otherwise=[run[:3] for run in runs if is_scene(run, len(pairs))])


def _bars(clip: vs.VideoNode, side: str, given: Box | None, frames: np.ndarray) -> Box:
    """A clip's bars: those given (checked), else found on `frames` sampled over it; the LR's widened to its
    chroma subsampling (`bars.widened`; given ones only rounded)."""
    found = bars_.check(given, clip, side) if given is not None else bars_.bars_of(frames)
    return bars_.widened(found, bars_.multiple(clip), 0 if given is not None else 1) if side == "LR" else found


def _check_pictures(hr_pic: vs.VideoNode, lr_pic: vs.VideoNode) -> None:
    """ValueError when the LR picture is too small to align, or so much smaller than the HR's that no model
    scale reaches it."""
    (hw, hh), (lw, lh) = (hr_pic.width, hr_pic.height), (lr_pic.width, lr_pic.height)
    rx, ry = hw / lw, hh / lh
    if max(rx, ry) > max(SCALES) * (1 + SEARCH):
        raise ValueError(f"the LR picture ({lw}x{lh}) is {rx:.2f} x {ry:.2f} times smaller than the HR's ({hw}x{hh}): "
                         f"beyond x{max(SCALES)}, the largest scale the models have; give an LR at least "
                         f"1/{max(SCALES)} of the HR's size")
    if min(lw, lh) < LEAST_LR:
        raise ValueError(f"the LR picture ({lw}x{lh}) is too small to align: give one of at least {LEAST_LR} pixels "
                         f"a side")


def snapped(m: Mapping, tolerance: float = SNAP_PX) -> tuple[Mapping, str]:
    """`m`, or the mapping of whole ratios (and offsets of 0 where those are as close) it lies within
    `tolerance` HR px of at the picture's edges, with a line saying which and why (empty when the ratios are
    not near whole)."""
    s = round(max(m.ratio_x, m.ratio_y))
    if s < 1 or max(abs(m.ratio_x - s), abs(m.ratio_y - s)) > 0.01 * s:
        return m, ""
    lx0, ly0, lx1, ly1 = m.lr_picture()
    cx, cy = (lx0 + lx1) / 2, (ly0 + ly1) / 2  # the picture's centre stays where it is
    ox, oy = m.offset_x + (m.ratio_x - s) * cx, m.offset_y + (m.ratio_y - s) * cy
    whole = m.with_ratios(s, s, 0.0 if abs(ox) <= tolerance else ox, 0.0 if abs(oy) <= tolerance else oy)
    off = m.distance(whole)
    if off > tolerance:
        return m, (f"not snapped to ratio {s}: the estimate is {off:.3f} HR px from it at the picture's edges "
                   f"(more than {tolerance})")
    return whole, (f"snapped to ratio {s} x {s}, offset {whole.offset_x:+.3f}/{whole.offset_y:+.3f}: within {off:.3f} "
                   f"HR px of the estimate ({m.ratio_x:.5f} x {m.ratio_y:.5f}, offset {m.offset_x:+.3f}/"
                   f"{m.offset_y:+.3f})")


def align(hr: vs.VideoNode, lr: vs.VideoNode, thumb_width: int = THUMB_WIDTH, hr_bars: Box | None = None,
          lr_bars: Box | None = None) -> Alignment:
    """Estimate how `lr` maps onto `hr` (any formats, sizes and frame counts): black bars found (or as given:
    left, right, top, bottom pixels), frames paired by content, the mapping refined to a fraction of a pixel
    between the pictures and given in full-frame coordinates with each side's bars, a near-whole one snapped
    to whole ratios. One pass over both clips for thumbnails, a few sampled frames for the bars, full frames
    for the pairs. ValueError when a clip is blank, the LR too small, or the clips do not show the same thing."""
    samples = {}
    for clip, side in ((hr, "HR"), (lr, "LR")):
        samples[side] = bars_.sample(clip)
        if not bars_.showing(samples[side]).any():
            raise ValueError(f"the {side} is blank: all {len(samples[side])} frames sampled over it are black (or "
                             f"one flat level); give the clip with the picture")
    hb, lb = _bars(hr, "HR", hr_bars, samples["HR"]), _bars(lr, "LR", lr_bars, samples["LR"])
    hr_pic, lr_pic = picture(hr, hb), picture(lr, lb)
    _check_pictures(hr_pic, lr_pic)
    tw = thumb_width
    th = max(8, round(tw * hr_pic.height / hr_pic.width))
    hr_thumbs, hr_spread = read_thumbnails(hr_pic, tw, th, "HR thumbnails")
    lr_thumbs, lr_spread = read_thumbnails(lr_pic, tw, th, "LR thumbnails")
    hr_blank, lr_blank = hr_spread < FLAT, lr_spread < FLAT
    hr_thumbs[hr_blank], lr_thumbs[lr_blank] = 0, 0  # a blank frame's normalised noise: it pairs with nothing
    a = estimate(hr_pic, lr_pic, hr_thumbs, lr_thumbs, hr_blank, lr_blank)
    a.mapping, note = snapped(a.mapping.framed(lb, hb))
    a.notes += [note] if note else []
    a.cuts = cuts(hr_thumbs)
    return a
