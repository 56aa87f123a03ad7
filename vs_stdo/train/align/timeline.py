"""Pairing the frames of two clips in time, by content: a monotonic alignment with gaps on normalised luma
thumbnails, so that an offset, missing or repeated frames and cuts leave frames unpaired rather than mismatched.

The alignment is a banded dynamic programme that records, in each cell, the move that reached it (a pair, or
a frame of either clip left unpaired) and traces those moves back from the cheapest end.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .reading import normalise

GAP = 0.4  # cost of leaving a frame unpaired; a pair costs 1 - correlation (so unrelated frames stay apart)
GAP_RELATIVE = 1.0  # the same once thumbnails are aligned, in units of an HR frame's step to its neighbour
MIN_UNIT = 1e-3  # the least unit (1 - correlation): frames closer than this are alike even when lossless
COST_CAP = 4.0  # there a pair never costs more than this (an unrelated one: as much as two gaps and more)
BAND = 160  # frames either side of the coarse offset the time alignment considers on long clips
FULL_DP = 4_000_000  # up to this many frame pairs the time alignment considers all of them
MATCH = 0.6  # frames in a gap pair at a neighbour's offset when they correlate this much or more (and best there)
STEADY = 3  # pairs a run at one frame offset needs to be more than a held frame's twin chosen

PAIR, HR_ALONE, LR_ALONE = 0, 1, 2  # the moves into a cell: a pair, an HR frame unpaired, an LR frame unpaired


@dataclass(frozen=True)
class Matches:
    """Frames paired in time: (hr_frame, lr_frame) increasing in both, with each pair's thumbnail correlation and
    its cost in the alignment that chose it."""

    pairs: list[tuple[int, int]]
    corr: np.ndarray
    cost: np.ndarray


def _flat(thumbs: np.ndarray) -> np.ndarray:
    """Thumbnails as rows whose dot products are correlations."""
    f = thumbs.reshape(len(thumbs), -1).astype(np.float32)
    return f / math.sqrt(f.shape[1])


def _pooled(thumbs: np.ndarray, k: int = 4) -> np.ndarray:
    """Thumbnails averaged over k x k blocks, as rows whose dot products are correlations."""
    n, h, w = thumbs.shape
    k = max(1, min(k, h, w))
    small = thumbs[:, :h - h % k, :w - w % k].astype(np.float32).reshape(n, h // k, k, w // k, k).mean((2, 4))
    return _flat(normalise(small))


def _band_starts(hr_thumbs: np.ndarray, lr_thumbs: np.ndarray, band: int) -> np.ndarray:
    """Per HR frame, the first LR frame of its band: centred on the offset that nearest-neighbour
    matches of every 8th HR frame agree on locally (a running median, so cuts move it). On thumbnails
    pooled 4 x 4, so that a whole episode against another takes seconds."""
    hr, lr = _pooled(hr_thumbs), _pooled(lr_thumbs)
    probe = np.arange(0, len(hr), 8)
    sims = np.concatenate([hr[probe[i:i + 256]] @ lr.T for i in range(0, len(probe), 256)])
    shifts = sims.argmax(1) - probe
    local = np.array([np.median(shifts[max(0, i - 12):i + 13]) for i in range(len(probe))])
    centre = np.interp(np.arange(len(hr)), probe, local)
    return np.clip(np.round(np.arange(len(hr)) + centre).astype(int) - band, 0, max(0, len(lr) - 2 * band))


def _band_correlations(hr: np.ndarray, lr: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """(HR frames, width): row i holds HR frame i's correlation with LR frames starts[i + 1] - 1 onwards (the
    LR frame a pair ending in each cell of the alignment's row i + 1 uses; clipped at the clip's ends)."""
    out = np.empty((len(hr), width), np.float32)
    for a in range(0, len(hr), 256):
        cols = np.clip(starts[a + 1:a + 257, None] + np.arange(width) - 1, 0, len(lr) - 1)
        lo, hi = int(cols.min()), int(cols.max()) + 1
        out[a:a + 256] = np.take_along_axis(hr[a:a + 256] @ lr[lo:hi].T, cols - lo, axis=1)
    return out


def _at(row: np.ndarray, index: np.ndarray) -> np.ndarray:
    """row[index], infinite where the index falls outside the row."""
    inside = (index >= 0) & (index < len(row))
    return np.where(inside, row[np.clip(index, 0, len(row) - 1)], np.inf)


def cheapest_path(cost: np.ndarray, starts: np.ndarray, gap: float, lr_count: int) -> list[tuple[int, int]]:
    """The pairs of the cheapest monotonic alignment of `len(cost)` HR frames with `lr_count` LR frames, where a
    frame left unpaired costs `gap`: [(hr_frame, lr_frame), ...] increasing in both.

    Cell (i, j) is the first i HR and first j LR frames aligned; row i holds j = starts[i] + k for each column k
    of `cost`, `cost[i - 1, k]` the cost of pairing HR i - 1 with LR j - 1 (cells outside the band are out of
    reach). Each cell records the move that reached it, ties going to a pair, then to an unpaired HR frame;
    the path is those moves traced back from the cheapest end (all LR frames past the band left unpaired)."""
    nh, width = cost.shape
    k = np.arange(width)
    j = starts[0] + k
    prev = np.where(j <= lr_count, j * gap, np.inf)
    moves = np.full((nh + 1, width), LR_ALONE, np.int8)
    for i in range(1, nh + 1):
        j = starts[i] + k
        alone = _at(prev, j - starts[i - 1]) + gap
        paired = _at(prev, j - 1 - starts[i - 1]) + np.where(j >= 1, cost[i - 1], np.inf)
        by_pair = (paired <= alone) & (j >= 1)
        best = np.where(by_pair, paired, np.where(j == 0, i * gap, alone))
        best = np.where(j <= lr_count, best, np.inf)
        # LR frames left unpaired along the row: D[i][j] = min(best[j], D[i][j-1] + gap), as a running minimum
        relative = best - gap * j
        running = np.minimum.accumulate(relative)
        moves[i] = np.where(relative > running, LR_ALONE, np.where(by_pair, PAIR, HR_ALONE))
        prev = np.where(j <= lr_count, gap * j + running, np.inf)
    last = starts[nh] + k
    i, j = nh, int(starts[nh] + np.argmin(np.where(last <= lr_count, prev + (lr_count - last) * gap, np.inf)))
    pairs = []
    while i > 0 and j > 0:
        move = moves[i, j - starts[i]]
        if move == PAIR:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif move == HR_ALONE:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def match_frames(hr_thumbs: np.ndarray, lr_thumbs: np.ndarray, floor: float | None = None,
                 band: int | None = None) -> Matches:
    """Pair HR and LR frames by content.

    A global alignment with gaps: a pair costs 1 - the correlation of the normalised thumbnails, a frame
    left unpaired costs GAP. Runs of identical frames (a still) keep the offset of their neighbours, since
    any other choice pays extra gaps. That finds the offset on thumbnails framed differently, but slow
    motion makes neighbouring frames nearly as alike as twins; so once the thumbnails are aligned (the
    HR's put on the LR's grid through the mapping), given a `floor` (`noise_floor`: what twins differ by)
    a pair's cost is measured in units of how far the HR frame is from its nearest neighbour that is not its
    twin (a held frame's twin, drawn on 2s, is as right a partner), but no less than the floor (so stills do
    not blow it up), and a gap as GAP_RELATIVE such units: a run of
    off-by-one pairs then loses to the two gaps of a missing and a repeated frame. Long clips are aligned
    within `band` frames of a coarse offset (by default all pairs are considered up to FULL_DP of them). A
    blank frame (an all-zero thumbnail) is never paired."""
    hr, lr = _flat(hr_thumbs), _flat(lr_thumbs)
    nh, nl = len(hr), len(lr)
    if nh == 0 or nl == 0:
        raise ValueError("both clips need at least one frame")
    if band is None and nh * nl > FULL_DP:
        band = BAND
    if band is None or 2 * band + 1 >= nl + 1:
        width, starts = nl + 1, np.zeros(nh + 1, int)
    else:
        width = 2 * band + 1
        s = _band_starts(hr_thumbs, lr_thumbs, band)
        starts = np.concatenate([s[:1], s])  # row i (i HR frames used) covers LR prefix counts [start, start+width)
    if floor is not None and nh > 1:
        least = max(floor, MIN_UNIT)
        unit, gap, cap = np.maximum(_nearest_other(hr, least), least), GAP_RELATIVE, COST_CAP
    else:
        unit, gap, cap = np.ones(nh, np.float32), GAP, np.inf
    corr = _band_correlations(hr, lr, starts, width)
    cost = np.minimum((1.0 - corr) / unit[:, None], cap)
    lr_cols = np.clip(starts[1:, None] + np.arange(width) - 1, 0, nl - 1)
    cost[~hr.any(1)[:, None] | ~lr.any(1)[lr_cols]] = np.inf  # a blank (zero) thumbnail pairs with nothing
    pairs = cheapest_path(cost, starts, gap, nl)
    rows = np.array([h for h, _ in pairs], int)
    cells = (rows, np.array([l for _, l in pairs], int) + 1 - starts[rows + 1])
    return Matches(pairs, corr[cells], cost[cells])


def _nearest_other(hr: np.ndarray, twins: float) -> np.ndarray:
    """Per HR frame (rows whose dot products are correlations), the dissimilarity to the nearer of its two
    neighbours that differs from it by more than `twins` (0 where neither does: a still)."""
    step = 1.0 - (hr[1:] * hr[:-1]).sum(1)
    sides = np.stack([np.concatenate([[np.inf], step]), np.concatenate([step, [np.inf]])])
    nearest = np.where(sides > twins, sides, np.inf).min(0)
    return np.where(np.isfinite(nearest), nearest, 0.0)


def noise_floor(hr_thumbs: np.ndarray, lr_thumbs: np.ndarray, pairs: list[tuple[int, int]]) -> float:
    """Twice the median dissimilarity (1 - correlation) of the given pairs: what true twins differ by
    (coding noise, resampling), the least unit `match_frames` measures a pair's cost in."""
    hr, lr = _flat(hr_thumbs[[h for h, _ in pairs]]), _flat(lr_thumbs[[l for _, l in pairs]])
    return 2 * float(np.median(1.0 - (hr * lr).sum(1)))


def fill_gaps(pairs: list[tuple[int, int]], hr_thumbs: np.ndarray, lr_thumbs: np.ndarray, floor: float
              ) -> list[tuple[int, int]]:
    """`pairs` with the gaps between them filled where the frames there pair at a neighbour's offset (see
    `_between`), then short runs at another offset than the pairs either side re-seated at theirs where that
    pairs as many frames (`_reseated`). Held frames (animation drawn on 2s and 3s, a still) and the faint
    frames of a fade, which the alignment leaves unpaired or pairs with a twin when partners are ambiguous or
    noisy, pair here at the offset of their neighbours; a frame one clip lacks, an unrelated one or a blank
    one (a zero thumbnail) does not."""
    hr, lr = _flat(hr_thumbs), _flat(lr_thumbs)
    nh, nl = len(hr), len(lr)

    def match(h: int, l: int) -> bool:
        """The frames correlate MATCH or more, and no worse than twice as far as the LR frame either side
        (plus the floor): a twin of a held frame is as good, a frame in motion one off is not."""
        far = 1.0 - float(hr[h] @ lr[l])
        best_other = min((1.0 - float(hr[h] @ lr[k]) for k in (l - 1, l + 1) if 0 <= k < nl), default=far)
        return far <= 1.0 - MATCH and far <= 2 * best_other + floor

    bounds = [(-1, -1), *pairs, (nh, nl)]
    filled = sorted([*pairs, *(p for a, b in zip(bounds, bounds[1:]) for p in _between(a, b, match, nh, nl))])
    return _reseated(filled, match, nh, nl)


def _between(a: tuple[int, int], b: tuple[int, int], match: Callable[[int, int], bool], nh: int, nl: int
             ) -> list[tuple[int, int]]:
    """Pairs in the gap between pairs a and b ((-1, -1) and (nh, nl) stand for the clips' ends): extended from
    a at a's offset, then from b at b's, while `match` holds."""
    (h0, l0), (h1, l1) = a, b
    out: list[tuple[int, int]] = []
    last = a
    if h0 >= 0:
        h, d = h0 + 1, l0 - h0
        while h < h1 and h + d < l1 and match(h, h + d):
            out.append(last := (h, h + d))
            h += 1
    if h1 < nh:
        h, d = h1 - 1, l1 - h1
        while h > last[0] and h + d > last[1] and match(h, h + d):
            out.append((h, h + d))
            h -= 1
    return out


def offset_runs(pairs: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """Runs of consecutive pairs at one offset: (first index, end index into pairs, lr_frame - hr_frame)."""
    runs: list[tuple[int, int, int]] = []
    for i, (h, l) in enumerate(pairs):
        if runs and runs[-1][2] == l - h:
            runs[-1] = (runs[-1][0], i + 1, l - h)
        else:
            runs.append((i, i + 1, l - h))
    return runs


def _reseated(pairs: list[tuple[int, int]], match: Callable[[int, int], bool], nh: int, nl: int
              ) -> list[tuple[int, int]]:
    """`pairs` with each run of under STEADY pairs whose neighbours (on both sides, or the one side at either end
    of the clips) share another offset replaced by the pairs `_between` those neighbours gives, where it gives
    as many: a held frame paired with its twin one frame off leaves a frame of each clip unpaired; at the
    steady offset both pair."""
    runs = offset_runs(pairs)
    out = list(pairs)
    for k, run in enumerate(runs):
        before, after = runs[k - 1] if k else None, runs[k + 1] if k + 1 < len(runs) else None
        if run[1] - run[0] >= STEADY or (before and after and before[2] != after[2]) or not (before or after):
            continue
        a = pairs[before[1] - 1] if before else (-1, -1)
        b = pairs[after[0]] if after else (nh, nl)
        seated = _between(a, b, match, nh, nl)
        if len(seated) >= run[1] - run[0]:
            out = [p for p in out if p not in pairs[run[0]:run[1]]] + seated
    return sorted(out)


def unpaired_reasons(pairs: list[tuple[int, int]], hr_count: int, lr_count: int, hr_blank: np.ndarray,
                     lr_blank: np.ndarray) -> tuple[dict[int, str], dict[int, str]]:
    """Why each frame of either clip is in no pair: ({hr_frame: why}, {lr_frame: why})."""
    hr_why: dict[int, str] = {}
    lr_why: dict[int, str] = {}
    bounds = [(-1, -1), *pairs, (hr_count, lr_count)]
    for (h0, l0), (h1, l1) in zip(bounds, bounds[1:]):
        hrs, lrs = range(h0 + 1, h1), range(l0 + 1, l1)
        for frames, others, blank, why, this, other in ((hrs, lrs, hr_blank, hr_why, "HR", "LR"),
                                                        (lrs, hrs, lr_blank, lr_why, "LR", "HR")):
            if not others:
                lacks = (f"the {other} starts later" if h0 < 0 else f"the {other} ends sooner" if h1 == hr_count
                         else f"the {other} lacks it (cut, or a frame repeated in the {this})")
            else:
                lacks = f"no {other} frame of {other} {others.start}-{others.stop - 1} matches it"
            for n in frames:
                why[n] = "blank (no picture)" if blank[n] else lacks
    return hr_why, lr_why
