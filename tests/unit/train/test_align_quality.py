"""How well each pair fits the mapping, at full size, on a real clip: the figure reads high for a lossless exact
pair and clearly lower half a pixel off; the shift is the displacement; runs off the mapping are found, and
told apart from a few frames off."""
from __future__ import annotations

import numpy as np
import pytest

from scripts import pairs as P
from vs_stdo.train.align.quality import Fit, framing, is_scene, measure
from vs_stdo.train.align.reading import picture


@pytest.fixture(scope="module")
def exact(clip_path) -> P.Pair:
    """A lossless 1.5x pair of 6 frames (scripts/pairs.py), LR frame n showing HR frame n."""
    return P.exact_15(clip_path, first=20, frames=6)


@pytest.mark.parametrize("dx,dy", [(0.0, 0.0), (0.5, 0.0), (0.0, -0.5), (2.0, 1.0)])
def test_the_figure_and_the_shift_track_the_mapping(exact, dx, dy):
    truth = exact.mapping
    moved = truth.with_ratios(truth.ratio_x, truth.ratio_y, truth.offset_x + dx, truth.offset_y + dy)
    fit = measure(picture(exact.hr), picture(exact.lr), moved, [(n, n) for n in range(6)])
    if dx == dy == 0:
        assert fit.figure.min() > 48  # lossless and exact: what remains is the 8-bit rounding
    else:
        exact_fit = measure(picture(exact.hr), picture(exact.lr), truth, [(n, n) for n in range(6)])
        assert (exact_fit.figure - fit.figure).min() > 8  # half a pixel off reads clearly lower
    # the mapping puts the LR d px off where it sits: the measured shift is that d
    assert np.allclose(fit.shift, [[dx, dy]] * 6, atol=0.15), fit.shift


def run_fit(off: list[float]) -> Fit:
    """A Fit whose pairs sit `off` HR px from the mapping (NaN: not measured)."""
    off = np.array(off, np.float32)
    return Fit(np.full(len(off), 40.0, np.float32), np.stack([off, np.zeros_like(off)], 1))


@pytest.mark.parametrize("off,runs", [
    ([0.1] * 30, []),
    ([0.1] * 10 + [6.0] * 12 + [0.1] * 8, [(10, 21, 6.0, 12)]),
    ([0.1] * 10 + [6.0] * 2 + [0.1] * 8, []),  # a pair or two: noise, not a run
    ([0.1] * 5 + [float("nan")] * 5 + [3.0] * 6, [(10, 15, 3.0, 6)]),  # flat pairs are not measured
    ([2.0] * 30, [(0, 29, 2.0, 30)]),
])
def test_runs_off_the_mapping(off, runs):
    assert framing(list(range(len(off))), run_fit(off)) == [(a, b, pytest.approx(d), n) for a, b, d, n in runs]


@pytest.mark.parametrize("run,pairs,scene", [((10, 21, 6.0, 12), 1000, False), ((10, 40, 6.0, 31), 1000, True),
                                             ((10, 21, 6.0, 12), 40, True)])
def test_a_scene_framed_otherwise_is_a_second_or_a_fifth_of_the_pairs(run, pairs, scene):
    assert is_scene(run, pairs) == scene
