"""Pairing the frames of two clips in time, by content: a monotonic alignment with gaps on normalised luma
thumbnails, so that an offset, missing or repeated frames and cuts leave frames unpaired rather than mismatched.

The alignment is a banded dynamic programme that records, in each cell, the move that reached it (a pair, or
a frame of either clip left unpaired) and traces those moves back from the cheapest end.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .reading import normalise

GAP = 0.4  # cost of leaving a frame unpaired; a pair costs 1 - correlation (so unrelated frames stay apart)
GAP_RELATIVE = 1.0  # the same once thumbnails are aligned, in units of an HR frame's step to its neighbour
MIN_UNIT = 1e-3  # the least unit (1 - correlation): frames closer than this are alike even when lossless
COST_CAP = 4.0  # there a pair never costs more than this (an unrelated one: as much as two gaps and more)
BAND = 160  # frames either side of the coarse offset the time alignment considers on long clips
FULL_DP = 4_000_000  # up to this many frame pairs the time alignment considers all of them

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
    a pair's cost is measured in units of how far the HR frame is from its nearest neighbour, but no less
    than the floor (so stills do not blow it up), and a gap as GAP_RELATIVE such units: a run of
    off-by-one pairs then loses to the two gaps of a missing and a repeated frame. Long clips are aligned
    within `band` frames of a coarse offset (by default all pairs are considered up to FULL_DP of them)."""
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
        step = 1.0 - (hr[1:] * hr[:-1]).sum(1)
        nearest = np.minimum(np.concatenate([[np.inf], step]), np.concatenate([step, [np.inf]]))
        unit, gap, cap = np.maximum(nearest, max(floor, MIN_UNIT)), GAP_RELATIVE, COST_CAP
    else:
        unit, gap, cap = np.ones(nh, np.float32), GAP, np.inf
    corr = _band_correlations(hr, lr, starts, width)
    cost = np.minimum((1.0 - corr) / unit[:, None], cap)
    pairs = cheapest_path(cost, starts, gap, nl)
    rows = np.array([h for h, _ in pairs], int)
    cells = (rows, np.array([l for _, l in pairs], int) + 1 - starts[rows + 1])
    return Matches(pairs, corr[cells], cost[cells])


def noise_floor(hr_thumbs: np.ndarray, lr_thumbs: np.ndarray, pairs: list[tuple[int, int]]) -> float:
    """Twice the median dissimilarity (1 - correlation) of the given pairs: what true twins differ by
    (coding noise, resampling), the least unit `match_frames` measures a pair's cost in."""
    hr, lr = _flat(hr_thumbs[[h for h, _ in pairs]]), _flat(lr_thumbs[[l for _, l in pairs]])
    return 2 * float(np.median(1.0 - (hr * lr).sum(1)))
