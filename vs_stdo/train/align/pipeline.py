"""The whole estimate of how an LR clip maps onto an HR clip: frames paired in time on thumbnails (`timeline`),
the mapping fitted on a few full-size pairs (`registration`), the frames paired again on thumbnails aligned
through it, and pairs far worse than the rest left out (`report`)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import vapoursynth as vs

from vs_stdo.core.mapping import Mapping

from ..scenes import cuts

from .reading import read_frame, read_thumbnails
from .registration import aligned_thumbnails, best_shift, coarse_mapping, refine
from .report import Alignment, leave_out, thumb_residuals
from .timeline import Matches, match_frames, noise_floor

THUMB_WIDTH = 64  # thumbnails: plenty to tell frames apart, small enough for a whole episode in memory
MIN_PAIRED = 0.5  # below this share of the shorter clip's frames paired, the clips are not the same show
MIN_CORRELATION = 0.6  # nor when the median paired thumbnails correlate less than this
REFINE_PAIRS = 6  # pairs the refinement fits at full size


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
                         f"their thumbnails correlate {median:.2f} (same content: 0.9 or more); check that both "
                         f"are the same episode")
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


def estimate(hr_thumbs: np.ndarray, lr_thumbs: np.ndarray, hr_frame: Callable[[int], np.ndarray],
             lr_frame: Callable[[int], np.ndarray]) -> Alignment:
    """The whole estimate from thumbnails (normalised, the same size on both sides) and a way to get the
    full-size luma of a frame of each clip (hr_frame(n), lr_frame(n) -> 2-D float32 array).

    Pairs from framing-blind thumbnails can be a frame or two off in slow motion (or more in a zoom or pan):
    refine on them, check the offset at full size, pair again on thumbnails aligned through the result, and
    refine once more on the better pairs; then pair a last time and leave out the pairs far worse than the rest."""
    matches = _first_matches(hr_thumbs, lr_thumbs)
    chosen = pick_pairs(hr_thumbs, matches)
    hr_frames, lr_frames = [hr_frame(h) for h, _ in chosen], [lr_frame(l) for _, l in chosen]
    mapping, _ = refine(hr_frames, lr_frames, coarse_mapping(hr_frames, lr_frames), spread=False)
    check = np.argsort([-float(np.abs(np.diff(h, axis=1)).mean()) for h in hr_frames])[:2]
    shift, mapping = best_shift([hr_frames[k] for k in check], lr_frame, [chosen[k][1] for k in check],
                                len(lr_thumbs), mapping)
    shifted = [(h, l + shift) for h, l in matches.pairs if 0 <= l + shift < len(lr_thumbs)]
    matches, _, _ = _rematch(hr_thumbs, lr_thumbs, mapping, shifted)
    picked = pick_pairs(hr_thumbs, matches)
    if picked != chosen:
        chosen = picked
        hr_frames, lr_frames = [hr_frame(h) for h, _ in chosen], [lr_frame(l) for _, l in chosen]
    mapping, precision = refine(hr_frames, lr_frames, mapping, (0.8, 0.0))
    matches, hr_aligned, lr_aligned = _rematch(hr_thumbs, lr_thumbs, mapping, matches.pairs)
    kept, residuals, dropped = leave_out(matches.pairs, thumb_residuals(hr_aligned, lr_aligned, matches.pairs))
    return Alignment(mapping, kept, residuals, dropped, len(hr_thumbs), len(lr_thumbs), precision, chosen)


def align(hr: vs.VideoNode, lr: vs.VideoNode, thumb_width: int = THUMB_WIDTH) -> Alignment:
    """Estimate how `lr` maps onto `hr` (any formats, sizes and frame counts): frames paired by content,
    the mapping refined to a fraction of a pixel. One pass over both clips for thumbnails, full frames
    only for the few pairs the refinement uses. ValueError when the clips do not show the same thing."""
    tw = thumb_width
    th = max(8, round(tw * hr.height / hr.width))
    hr_thumbs = read_thumbnails(hr, tw, th, "HR thumbnails")
    lr_thumbs = read_thumbnails(lr, tw, th, "LR thumbnails")
    a = estimate(hr_thumbs, lr_thumbs, lambda n: read_frame(hr, n), lambda n: read_frame(lr, n))
    a.cuts = cuts(hr_thumbs)
    return a
