"""Scene cuts from thumbnails and the whole scenes a remaster run holds out: synthetic shots with motion, a flash,
a fade; pure arrays."""
from __future__ import annotations

import numpy as np
import pytest

from vs_stdo.train.scenes import cuts, guarded, held_out, scenes


def normalise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    return x / np.maximum(x.std(axis=(-2, -1), keepdims=True), 1e-6)


def shot(seed: int, frames: int, speed: float = 0.5) -> np.ndarray:
    """A picture of a few smooth shapes (as a 64-px thumbnail of a real frame is) panning `speed` pixels a frame:
    motion, no cut."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:36, 0:64].astype(np.float32)
    waves = [(rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3), rng.uniform(0, 6)) for _ in range(4)]
    return np.stack([sum(np.sin(fx * (x + speed * i) + fy * y + ph) for fx, fy, ph in waves) for i in range(frames)])


def test_cuts_are_where_shots_change_not_where_they_move_or_fade():
    a, b, c = shot(1, 40, 1.0), shot(2, 30, 2.0), shot(3, 50, 0.3)
    fade = np.stack([b[-1] * (1 - k / 10) + c[0] * k / 10 for k in range(1, 10)])  # a dissolve into c
    thumbs = normalise(np.concatenate([a, b, fade, c]))
    found = cuts(thumbs)
    assert 40 in found                         # a -> b: a hard cut
    assert found == [40], found                # motion, the dissolve: none
    assert [len(s) for s in scenes(len(thumbs), found)] == [40, 30 + 9 + 50]


def test_a_flash_is_not_a_scene_and_black_frames_separate_scenes():
    a, b = shot(4, 30), shot(5, 30)
    flash = np.full((1, 36, 64), 0.0)  # a white or black frame normalises to flat zero
    thumbs = normalise(np.concatenate([a[:15], flash, a[15:], np.zeros((6, 36, 64)), b]))
    found = cuts(thumbs)
    assert 15 not in found and 16 not in found   # one odd frame inside a shot
    assert any(31 <= c <= 37 for c in found), found


@pytest.mark.parametrize("lengths", [[100] * 10, [30, 200, 40, 60, 25, 300, 80, 50, 120, 95], [12] * 60, [1000]])
def test_held_out_stretches_are_spread_whole_scenes_where_short_and_about_the_share(lengths):
    starts = list(np.cumsum(lengths)[:-1])
    parts = scenes(sum(lengths), starts)
    held = held_out(parts, 0.15, 4)
    total = sum(lengths)
    assert 2 <= len(held) <= 4
    assert all(any(h.start >= p.start and h.stop <= p.stop for p in parts) for h in held)  # inside one scene
    assert all(h in parts for h in held if len(next(p for p in parts if h.start in p)) <= 2 * 0.15 * total / 4)
    share = sum(len(h) for h in held) / total
    assert 0.05 <= share <= 0.35, share
    assert held[0].start < total / 2 < held[-1].stop                    # spread, not all at one end


def test_training_frames_keep_clear_of_the_held_out_ones():
    allowed = guarded([range(100, 150), range(400, 420)], 500, guard=10)
    assert 89 in allowed and 90 not in allowed and 159 not in allowed and 160 in allowed
    assert not set(allowed) & set(range(100, 150)) and len(allowed) == 500 - 70 - 40
