"""Scenes (shots) of a clip from its thumbnails, and which whole scenes a remaster run holds out.

A remaster bundle plays on episodes it never saw, so what tells whether it will help there is how it does on
scenes it never saw, not on frames next to the ones it trained on (every Nth frame's neighbours were trained
on). A cut is a frame whose thumbnail (normalised luma, as the alignment reads it) correlates much less with
the frame before than the frames around it do with theirs: motion lowers the correlation of a whole stretch,
a cut that of one frame. Dissolves and fades cut nowhere: their scenes stay one.
"""
from __future__ import annotations

from bisect import bisect_left

import numpy as np

CUT = 0.3          # least dissimilarity (1 - correlation) between a frame and the one before that is a cut
CONTRAST = 4.0     # ... and at least this many times the median dissimilarity of the frames around it
AROUND = 12        # frames either side that median looks at
POOL = 4           # thumbnail pixels averaged per side before comparing frames
SHORTEST = 8       # frames: cuts closer than this to the previous one (flashes, strobes) are not cuts
HOLDOUT = 0.15     # share of the frames a run holds out
BLOCKS = 4         # ... in this many stretches: whole scenes where they are short enough
GUARD = 24         # frames either side of a held-out stretch that are not trained on either
FEWEST = 120       # a remaster run of fewer pairs holds nothing out


def dissimilarity(thumbs: np.ndarray) -> np.ndarray:
    """1 - the correlation of each thumbnail (frames, h, w; normalised to zero mean and unit variance, flat
    frames all zero) with the one before; 0 for the first. Two flat frames (black, say) are alike."""
    t = thumbs.reshape(len(thumbs), -1).astype(np.float32)
    corr = (t[1:] * t[:-1]).mean(1)
    flat = (t * t).mean(1) < 0.5
    corr[flat[1:] & flat[:-1]] = 1.0
    return np.concatenate([[0.0], 1.0 - corr]).astype(np.float32)


def coarse(thumbs: np.ndarray, k: int = POOL) -> np.ndarray:
    """Thumbnails averaged over k x k blocks and normalised again (flat frames stay zero)."""
    n, h, w = thumbs.shape
    k = max(1, min(k, h // 4, w // 4))
    x = thumbs[:, :h - h % k, :w - w % k].astype(np.float32).reshape(n, h // k, k, w // k, k).mean((2, 4))
    x = x - x.mean(axis=(1, 2), keepdims=True)
    return x / np.maximum(x.std(axis=(1, 2), keepdims=True), 1e-6)


def cuts(thumbs: np.ndarray) -> list[int]:
    """The frames where a new scene starts (0 is not listed). A frame unlike the one before is a cut only if it is
    unlike the one before that, and the frame after it unlike the one before it, too: a single odd frame (a flash)
    inside a shot is no cut, on either side."""
    small = coarse(thumbs)  # motion decorrelates fine detail, a cut the whole picture
    d = dissimilarity(small)
    skip = dissimilarity(small[::2]), dissimilarity(small[1::2])
    moved = d > 1e-3  # repeated frames (animation on twos, stills) say nothing of how much a shot moves

    def two_apart(i: int) -> float:  # frame i against frame i - 2
        return float(skip[i % 2][i // 2]) if 2 <= i < len(d) else 1.0

    out: list[int] = []
    for i in range(SHORTEST, len(d)):
        near = np.r_[max(1, i - AROUND):i, i + 1:min(len(d), i + 1 + AROUND)]
        around = d[near][moved[near]]
        local = float(np.median(around)) if len(around) else 0.0
        if (d[i] > max(CUT, CONTRAST * local) and two_apart(i) > CUT and two_apart(i + 1) > CUT
                and (not out or i - out[-1] >= SHORTEST)):
            out.append(i)
    return out


def scenes(frames: int, starts: list[int]) -> list[range]:
    """The scenes of a clip of `frames` frames whose scenes start at 0 and at `starts`."""
    edges = [0, *[s for s in starts if 0 < s < frames], frames]
    return [range(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def held_out(parts: list[range], share: float = HOLDOUT, blocks: int = BLOCKS) -> list[range]:
    """What to hold out, about `share` of the frames in `blocks` stretches spread over the clip: at each of
    `blocks` evenly spaced places, the whole scene there when it is short enough (at most twice a stretch), else a
    stretch of it around that place (a long shot, or scenes a dissolve joins)."""
    total = sum(len(p) for p in parts)
    length = max(1, round(share * total / blocks))
    out: list[range] = []
    for j in range(blocks):
        place = int((j + 0.5) * total / blocks)
        scene = next(p for p in parts if place in p)
        if len(scene) > 2 * length:
            start = min(max(scene.start, place - length // 2), scene.stop - length)
            scene = range(start, start + length)
        if not out or scene.start >= out[-1].stop:
            out.append(scene)
    return out


def split_pairs(hr_frames: list[int], starts: list[int], share: float = HOLDOUT) -> tuple[list[range], list[int]]:
    """For the pairs of a remaster run (the HR frame of each, increasing) in a source whose scenes start at
    `starts` (HR frames): the stretches of pairs held out (`held_out`) and the pairs it may train on (`guarded`,
    the guard a 40th of the pairs at most). Fewer than FEWEST pairs hold nothing out: too few to spare."""
    n = len(hr_frames)
    if n < FEWEST:
        return [], list(range(n))
    held = held_out(scenes(n, [bisect_left(hr_frames, c) for c in starts]), share)
    return held, guarded(held, n, min(GUARD, n // 40))


def guarded(held: list[range], frames: int, guard: int = GUARD) -> list[int]:
    """The frames a run may train on: all but the held-out ones and `guard` frames either side of them (the
    neighbours of a held-out stretch inside a scene look like it)."""
    banned = np.zeros(frames, bool)
    for h in held:
        banned[max(0, h.start - guard):h.stop + guard] = True
    return np.flatnonzero(~banned).tolist()
