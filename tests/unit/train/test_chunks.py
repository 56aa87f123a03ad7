"""Splitting scored patches into chunks and choosing how many chunk models pay (pure numpy, no training)."""
from __future__ import annotations

import numpy as np
import pytest

from vs_stdo.train.chunks import AUTO_TOLERANCE, OUTLIER_FLOOR, fewest_models, floor_for, label, split


@pytest.mark.parametrize("by", ["error", "count"])
def test_split_gives_hardest_first_chunks_of_equal_error_or_equal_size(by):
    """Chunk 0 holds the lowest PSNRs; "error" chunks carry equal shares of the squared error (within one
    patch's error), "count" chunks equal numbers of patches; the thresholds label the patches the same way."""
    psnr = np.random.default_rng(0).gamma(2.0, 6.0, size=(7, 5, 9)).astype(np.float32) + 20
    labels, thresholds = split(psnr, 4, by)
    chunks = [psnr[labels == c] for c in range(4)]
    assert all(len(c) for c in chunks)
    assert all(chunks[c].max() <= chunks[c + 1].min() for c in range(3))
    np.testing.assert_array_equal(label(psnr, thresholds), labels)
    if by == "count":
        assert {len(c) for c in chunks} <= {len(psnr.flat) // 4, len(psnr.flat) // 4 + 1}
    else:
        error = [10 ** (-c.astype(np.float64) / 10) for c in chunks]
        assert max(abs(e.sum() - sum(map(np.sum, error)) / 4) for e in error) <= max(e.max() for e in error)
        assert len(chunks[0]) < len(chunks[3])      # a few hard patches carry as much error as many easy ones


def test_split_floor_keeps_an_outlier_frame_from_taking_chunks_to_itself():
    """With a few patches far worse than the rest, the error split gives them chunks of their own; a floor
    of a quarter of an equal chunk makes every chunk at least that big, still hardest first; floor 1 is
    the equal-size split."""
    psnr = np.random.default_rng(0).gamma(2.0, 6.0, size=(27, 48)).astype(np.float32) + 20
    psnr[0, :8] = 5                                            # one outlier frame's 8 patches
    sizes = lambda labels: [int((labels == c).sum()) for c in range(4)]
    assert min(sizes(split(psnr, 4, "error")[0])) < 8
    labels, thresholds = split(psnr, 4, "error", floor=0.25)
    assert min(sizes(labels)) >= psnr.size // 16
    assert all(psnr[labels == c].max() <= psnr[labels == c + 1].min() for c in range(3))
    np.testing.assert_array_equal(label(psnr, thresholds), labels)
    np.testing.assert_array_equal(split(psnr, 4, "error", floor=1)[0], split(psnr, 4, "count")[0])
    with pytest.raises(ValueError, match="floor"):
        split(psnr, 4, "error", floor=1.5)


def test_min_chunk_auto_floors_only_a_split_with_a_chunk_of_one_frame():
    """--min-chunk auto: 8 bad patches of one frame take chunks to themselves, so the floor applies; the same
    8 bad patches spread over 8 frames are hard content, not an outlier frame, and the split stays plain."""
    psnr = np.random.default_rng(0).gamma(2.0, 6.0, size=(27, 48)).astype(np.float32) + 20
    spread = psnr.copy()
    psnr[0, :8] = 5
    spread[np.arange(8), 0] = 5
    assert floor_for(psnr, 4, "error", "auto") == OUTLIER_FLOOR
    assert floor_for(spread, 4, "error", "auto") == 0
    assert floor_for(psnr, 4, "error", 0.0) == 0 and floor_for(spread, 4, "error", 0.5) == 0.5
    assert floor_for(psnr[:1], 4, "error", "auto") == 0   # one frame: every chunk is that frame's


def test_fewest_models_keeps_a_model_only_where_it_pays():
    base = np.random.default_rng(0).uniform(30, 40, (6, 5, 7))   # per-patch PSNR, (frames, rows, cols)
    kept, curve = fewest_models(np.stack([base, base + 0.01, base - 0.02, base]))
    assert kept == [1] and curve[-1] - curve[0] < AUTO_TOLERANCE  # alike models: the best one alone
    specialist = base - 1
    specialist[:3] += 4                                            # much better on half the frames, worse elsewhere
    marginal = base - 1
    marginal[3:, :2] = base[3:, :2] + 0.01                         # better than model 0 by next to nothing
    kept, curve = fewest_models(np.stack([base, specialist, base - 2, marginal]))
    assert kept == [0, 1] and curve[1] > curve[0] + 0.4 and curve[-1] - curve[1] < AUTO_TOLERANCE


def test_fewest_models_judges_by_the_mean_of_per_frame_psnr():
    """A model that only helps one frame far worse than the rest pays in the pooled squared error (that frame
    dominates it) but adds 1/30 of its gain to the mean of per-frame PSNR that eval reports: it is dropped."""
    general = np.random.default_rng(2).normal(45, 1, (30, 3, 4))
    general[0] -= 20
    fixer = general - 3
    fixer[0] = general[0] + 1                                          # +1 dB on frame 0, worse elsewhere
    kept, curve = fewest_models(np.stack([general, fixer]))
    assert kept == [0] and 0 < curve[1] - curve[0] < AUTO_TOLERANCE
    pooled = [-10 * np.log10((10 ** (-m / 10)).mean()) for m in (general, np.maximum(general, fixer))]
    assert pooled[1] - pooled[0] > 0.5                                 # what the pooled error would have kept


def test_error_split_keeps_every_chunk_when_one_patch_carries_most_error():
    psnr = np.array([10.0] + [50.0] * 20, dtype=np.float32)
    labels, _ = split(psnr, 4, "error")
    assert np.bincount(labels).tolist() == [1, 1, 1, 18]
