"""The mapping in space from frames already paired in time: the coarse search, its refinement to a fraction of
a pixel with the estimate's own precision, the frame-offset check at full size, and thumbnails put through a
mapping. On an exact lossless 1.5x pair of a real clip (scripts/pairs.py), whose mapping is known."""
from __future__ import annotations

import numpy as np
import pytest

from scripts import pairs as P
from vs_stdo.core.mapping import Mapping
from vs_stdo.train.align.reading import read_frame
from vs_stdo.train.align.registration import aligned_thumbnails, best_shift, coarse_mapping, refine

FRAMES = (10, 25, 40, 55, 70)


@pytest.fixture(scope="module")
def exact(clip_path) -> tuple[P.Pair, list[np.ndarray], list[np.ndarray]]:
    """An exact 1.5x pair (a descale's: 768x576 HR, 512x384 LR, no offset) and the luma of a few frames each."""
    pair = P.exact_15(clip_path, first=20)
    return pair, [read_frame(pair.hr, n) for n in FRAMES], [read_frame(pair.lr, n) for n in FRAMES]


@pytest.mark.slow
def test_coarse_search_then_refinement_find_the_mapping(exact):
    pair, hrs, lrs = exact
    coarse = coarse_mapping(hrs, lrs)
    assert coarse.distance(pair.mapping) < 2.0  # within the refinement's reach
    fine, precision = refine(hrs, lrs, coarse)
    assert fine.distance(pair.mapping) < 0.01
    assert precision is not None and precision < 0.01
    # refined from a start a few pixels off on each axis, too
    off = Mapping(512, 384, 768, 576, 1.5 * 1.004, 1.5 * 0.996, 1.7, -1.3)
    assert refine(hrs, lrs, off, spread=False)[0].distance(pair.mapping) < 0.01


@pytest.mark.slow
def test_the_frame_offset_check_undoes_pairs_a_few_frames_off(exact):
    pair, hrs, _ = exact
    shift, mapping = best_shift(hrs[1:3], lambda n: read_frame(pair.lr, n), [n + 3 for n in FRAMES[1:3]],
                                pair.lr.num_frames, pair.mapping)
    assert shift == -3 and mapping.distance(pair.mapping) < 0.02


def test_thumbnails_through_the_mapping_show_the_same_part():
    """An HR thumbnail set whose middle half is the LR's: once aligned through that mapping, the two agree."""
    rng = np.random.default_rng(0)
    hr = np.cumsum(np.cumsum(rng.standard_normal((3, 48, 64)), 1), 2).astype(np.float32)  # smooth, like video
    lr = hr[:, 12:36, 16:48]
    lr = np.repeat(np.repeat(lr, 2, 1), 2, 2)  # the middle half, shown twice as large on a grid of the HR's size
    m = Mapping(64, 48, 64, 48, 0.5, 0.5, 16.0, 12.0)
    hr_aligned, lr_aligned = aligned_thumbnails(hr, lr, m)
    assert hr_aligned.shape == lr_aligned.shape and hr_aligned.shape[1] > 30
    corr = (hr_aligned.astype(np.float32) * lr_aligned.astype(np.float32)).mean((1, 2))
    assert corr.min() > 0.98
    wrong = aligned_thumbnails(hr, lr, Mapping(64, 48, 64, 48, 0.5, 0.5, 10.0, 12.0))
    assert (wrong[0].astype(np.float32) * wrong[1].astype(np.float32)).mean((1, 2)).max() < corr.min()
