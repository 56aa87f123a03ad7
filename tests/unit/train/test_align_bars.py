"""Black bars found on frames sampled over a clip: letterbox and pillarbox bars, noisy or lifted, with the odd
subtitle in them; dark scenes and blank frames are no bars; found on a real MPEG-2 encode too."""
from __future__ import annotations

import numpy as np
import pytest

from scripts import pairs as P
from vs_stdo.train.align import bars


def frames(n: int = 12, h: int = 120, w: int = 176, seed: int = 0) -> np.ndarray:
    """n frames of textured picture, luma 0.2-0.8."""
    rng = np.random.default_rng(seed)
    return (0.2 + 0.6 * rng.random((n, h, w))).astype(np.float32)


def with_bars(x: np.ndarray, box: tuple[int, int, int, int], level: float = 0.0, noise: float = 0.0,
              seed: int = 1) -> np.ndarray:
    """`x` with bars (left, right, top, bottom) at `level`, plus Gaussian noise of `noise` there."""
    out = x.copy()
    l, r, t, b = box
    h, w = x.shape[1:]
    mask = np.ones((h, w), bool)
    mask[t:h - b, l:w - r] = False
    bar = level + noise * np.random.default_rng(seed).standard_normal(x.shape)
    out[:, mask] = np.clip(bar[:, mask], 0, 1)
    return out


def subtitled(x: np.ndarray, rows: slice, every: int) -> np.ndarray:
    """White text-like marks in `rows` of every `every`-th frame."""
    out = x.copy()
    out[::every, rows, 40:130:3] = 0.95
    return out


CASES = {  # name: (frames, bars expected)
    "no bars": (frames(), (0, 0, 0, 0)),
    "letterbox": (with_bars(frames(), (0, 0, 15, 15)), (0, 0, 15, 15)),
    "pillarbox": (with_bars(frames(), (22, 22, 0, 0)), (22, 22, 0, 0)),
    "every side, uneven": (with_bars(frames(), (3, 8, 1, 11)), (3, 8, 1, 11)),
    "noisy lifted black (MPEG-2)": (with_bars(frames(), (0, 0, 15, 15), level=0.03, noise=0.015), (0, 0, 15, 15)),
    "a subtitle in a bar now and then": (subtitled(with_bars(frames(), (0, 0, 15, 15)), slice(108, 114), 12),
                                          (0, 0, 15, 15)),
    "a dark scene in some frames": (np.concatenate([with_bars(frames(4), (0, 0, 0, 40)), frames(8)]), (0, 0, 0, 0)),
    "blank frames do not vote": (np.concatenate([np.zeros((6, 120, 176), np.float32),
                                                 with_bars(frames(6), (10, 10, 0, 0))]), (10, 10, 0, 0)),
    "bars that leave too little picture are none": (with_bars(frames(), (0, 0, 50, 50)), (0, 0, 0, 0)),
    "all blank": (np.zeros((6, 120, 176), np.float32), (0, 0, 0, 0)),
}


@pytest.mark.parametrize("name", CASES)
def test_bars_of_sampled_frames(name):
    x, expected = CASES[name]
    assert bars.bars_of(x) == expected


def test_showing_tells_blank_frames():
    x = np.concatenate([np.zeros((2, 30, 40)), np.full((1, 30, 40), 0.5), frames(2, 30, 40)]).astype(np.float32)
    assert bars.showing(x).tolist() == [False, False, False, True, True]


@pytest.mark.parametrize("found,step,soft,expected", [
    ((0, 0, 15, 15), (2, 2), 1, (0, 0, 16, 16)),
    ((0, 0, 16, 16), (2, 2), 1, (0, 0, 18, 18)),
    ((3, 8, 0, 0), (1, 1), 1, (4, 9, 0, 0)),
    ((3, 8, 1, 0), (2, 2), 0, (4, 8, 2, 0)),
])
def test_lr_bars_widen_by_the_soft_edge_and_round_up_to_the_subsampling(found, step, soft, expected):
    assert bars.widened(found, step, soft) == expected


@pytest.mark.slow
def test_bars_of_a_real_mpeg2_letterboxed_dvd(clip_path, tmp_path):
    """A 16:9 picture in a 4:3 DVD frame through the real ffmpeg's MPEG-2: the encoder's noise and ringing in
    the bars do not hide them; the Blu-ray has none."""
    pair = P.letterboxed(clip_path, tmp_path, first=20, frames=30)
    lr_bars = bars.bars_of(bars.sample(pair.lr))
    assert lr_bars[:2] == (0, 0) and 29 <= lr_bars[2] <= 30 and 29 <= lr_bars[3] <= 30, lr_bars
    assert bars.bars_of(bars.sample(pair.hr)) == (0, 0, 0, 0)
