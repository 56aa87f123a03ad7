"""Pairing frames in time: the alignment with gaps on thumbnails, its back-pointer traceback against a
brute-force optimum (ties and near-ties included), and its band; held frames and blank ones; the gaps filled
at a neighbour's offset, and why a frame stays unpaired."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.pairs import wrong_pairs
from vs_stdo.train.align.reading import normalise
from vs_stdo.train.align.timeline import (cheapest_path, fill_gaps, match_frames, noise_floor, offset_runs,
                                          unpaired_reasons)


def sequence(n: int, seed: int = 0) -> np.ndarray:
    """n thumbnails of smooth random content moving slowly: neighbours alike, as in real video."""
    rng = np.random.default_rng(seed)
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    field = rng.standard_normal((60, 76 + n))
    field = np.apply_along_axis(np.convolve, 0, field, kernel, "valid")
    field = np.apply_along_axis(np.convolve, 1, field, kernel, "valid")
    return normalise(np.stack([field[:, k:k + 64] for k in range(n)]))


def path_cost(pairs: list[tuple[int, int]], cost: np.ndarray, gap: float) -> float:
    """What an alignment of all frames of `cost` (HR x LR, unbanded) costs: its pairs plus a gap per frame left out."""
    nh, nl = cost.shape
    return sum(float(cost[h, l]) for h, l in pairs) + gap * (nh + nl - 2 * len(pairs))


def optimum(cost: np.ndarray, gap: float) -> float:
    """The least cost of any monotonic alignment, by trying every set of pairs (small matrices only)."""
    nh, nl = cost.shape
    best = gap * (nh + nl)
    for n in range(1, min(nh, nl) + 1):
        for hs in itertools.combinations(range(nh), n):
            for ls in itertools.combinations(range(nl), n):
                best = min(best, path_cost(list(zip(hs, ls)), cost, gap))
    return best


def unbanded(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`cheapest_path`'s arguments for an HR x LR cost matrix with every pair in reach."""
    nh, nl = cost.shape
    return np.concatenate([np.zeros((nh, 1)), cost], axis=1), np.zeros(nh + 1, int)


def test_match_frames_pairs_an_offset_a_cut_and_a_repeat_exactly():
    hr = sequence(120)
    shows = [n for n in range(7, 120) if not 50 <= n < 56]
    shows.insert(shows.index(80), 80)  # frame 80 twice
    rng = np.random.default_rng(1)
    lr = normalise(hr[shows] + 0.05 * rng.standard_normal(hr[shows].shape))
    first = match_frames(hr, lr)
    floor = noise_floor(hr, lr, first.pairs)
    assert 0 < floor < 0.02
    for m in (first, match_frames(hr, lr, floor)):
        assert wrong_pairs(m.pairs, shows) == []
        assert len(m.pairs) == len(shows) - 1  # all but one copy of the repeated frame
        assert len(m.corr) == len(m.cost) == len(m.pairs) and m.corr.min() > 0.9
        # monotonic in both
        assert all(h1 < h2 and l1 < l2 for (h1, l1), (h2, l2) in zip(m.pairs, m.pairs[1:]))
    # each pair's figures are its own: its correlation, and its cost 1 - correlation without a floor
    h, l = first.pairs[10]
    assert abs(first.corr[10] - float((hr[h] * lr[l]).mean())) < 1e-3
    assert np.allclose(first.cost, 1 - first.corr)


def test_banded_matching_agrees_with_the_full_one():
    hr = sequence(300, seed=2)
    shows = list(range(40, 300))
    lr = hr[shows]
    full = match_frames(hr, lr)
    banded = match_frames(hr, lr, band=12)
    assert banded.pairs == full.pairs and wrong_pairs(banded.pairs, shows) == []


def test_unrelated_frames_stay_unpaired():
    assert len(match_frames(sequence(60, seed=3), sequence(60, seed=4)).pairs) < 15


def test_a_near_tie_is_traced_along_the_moves_the_programme_made():
    """Two HR frames vie for one LR frame at costs 1e-10 apart, below any tolerance a traceback comparing sums
    could use: the path takes the cheaper, the one the programme chose, not one whose sum is merely close."""
    assert cheapest_path(*unbanded(np.array([[0.0], [1e-10]])), gap=0.4, lr_count=1) == [(0, 0)]
    assert cheapest_path(*unbanded(np.array([[1e-10], [0.0]])), gap=0.4, lr_count=1) == [(1, 0)]


costs = st.integers(1, 4).flatmap(lambda nh: st.integers(1, 4).flatmap(lambda nl: st.lists(
    st.tuples(st.sampled_from([0.0, 0.2, 0.4, 0.8]), st.integers(-3, 3)), min_size=nh * nl, max_size=nh * nl).map(
    lambda cells: np.array([c + k * 1e-10 for c, k in cells]).reshape(nh, nl))))


@settings(max_examples=300, deadline=None)
@given(cost=costs)
def test_the_path_is_a_cheapest_one_among_ties_and_near_ties(cost):
    """Costs from a few values a gap apart (ties everywhere) nudged by 1e-10: the traced path is monotonic and
    costs exactly the brute-force optimum."""
    pairs = cheapest_path(*unbanded(cost), gap=0.4, lr_count=cost.shape[1])
    assert all(h1 < h2 and l1 < l2 for (h1, l1), (h2, l2) in zip(pairs, pairs[1:]))
    assert abs(path_cost(pairs, cost, 0.4) - optimum(cost, 0.4)) < 1e-13


def test_a_band_only_offers_the_pairs_it_covers():
    """A band three cells wide along the diagonal: HR 2 can pair with LR 1 to 3 only, so the cheap pair (2, 0)
    the full alignment takes is out of reach, and the best pair in the band is taken instead."""
    nh, nl = 3, 4
    full = np.full((nh, nl), 0.9)
    full[2, 0], full[1, 1] = 0.0, 0.1
    starts = np.array([0, 0, 1, 2])  # row i (i HR frames used) covers LR prefix counts starts[i] .. starts[i] + 2
    band = np.array([[full[i, min(max(starts[i + 1] + k - 1, 0), nl - 1)] for k in range(3)] for i in range(nh)])
    assert cheapest_path(*unbanded(full), gap=0.4, lr_count=nl) == [(2, 0)]
    assert cheapest_path(band, starts, gap=0.4, lr_count=nl) == [(1, 1)]


def held(n: int, hold: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """n thumbnails of animation drawn on `hold`s (each drawing shown `hold` frames, the copies a hair apart),
    and the drawing each frame shows."""
    drawings = [k // hold for k in range(n)]
    base = sequence(n // hold + 1, seed)[::1] * 1.0
    rng = np.random.default_rng(seed + 10)
    return normalise(base[drawings] + 0.002 * rng.standard_normal((n, *base.shape[1:]))), drawings


def noisy(x: np.ndarray, amount: float, seed: int = 5) -> np.ndarray:
    """Thumbnails with coding noise."""
    return normalise(x + amount * np.random.default_rng(seed).standard_normal(x.shape))


def test_held_frames_pair_at_their_neighbours_offset():
    """A clip moving and clean, then animation on 2s whose LR is noisy, two frames late: a held frame's twin is
    as good a partner, so the noise there (far more than the twins differ by, or the clean part's floor) must
    not leave the held part unpaired. Every frame pairs, each with its own drawing, at one offset."""
    anim, drawings = held(60, 2, seed=4)
    hr = np.concatenate([sequence(100, seed=3), anim])
    drawing = list(range(100)) + [100 + k for k in drawings]
    shows = list(range(2, 160))
    lr = np.concatenate([noisy(hr[2:100], 0.02), noisy(hr[100:], 0.4)])
    floor = noise_floor(hr, lr, match_frames(hr, lr).pairs)
    pairs = fill_gaps(match_frames(hr, lr, floor).pairs, hr, lr, floor)
    assert len(pairs) == len(shows)
    assert [(h, l) for h, l in pairs if drawing[h] != drawing[shows[l]]] == []
    assert [d for _, _, d in offset_runs(pairs)] == [-2]


def test_gaps_fill_only_where_the_frames_match():
    """A gap in pairs at one offset fills; one over frames the LR lacks (another scene there) does not."""
    hr = sequence(60, seed=6)
    lr = noisy(np.concatenate([hr[:30], sequence(10, seed=7), hr[30:]]), 0.05)
    pairs = [(h, h) for h in range(20)] + [(h, h + 10) for h in range(45, 60)]
    filled = fill_gaps(pairs, hr, lr, 0.01)
    assert filled == [(h, h) for h in range(30)] + [(h, h + 10) for h in range(30, 60)]


def test_blank_frames_never_pair():
    """An all-zero thumbnail (a blank frame) pairs with nothing, not even another blank one."""
    hr = sequence(40, seed=8)
    hr[10:15] = 0
    lr = hr.copy()
    for m in (match_frames(hr, lr), match_frames(hr, lr, 0.01)):
        assert [h for h, _ in m.pairs] == [h for h in range(40) if not 10 <= h < 15]
    assert fill_gaps(match_frames(hr, lr, 0.01).pairs, hr, lr, 0.01) == [(h, h) for h in range(40) if not 10 <= h < 15]


@pytest.mark.parametrize("pairs,counts,blank,hr_why,lr_why", [
    ([(0, 2), (1, 3)], (4, 4), (), {2: "the LR ends sooner", 3: "the LR ends sooner"},
     {0: "the HR starts later", 1: "the HR starts later"}),
    ([(0, 0), (3, 1)], (4, 2), (), {1: "the LR lacks it", 2: "the LR lacks it"}, {}),
    ([(0, 0), (2, 3)], (3, 4), (), {1: "no LR frame of LR 1-2 matches it"},
     {1: "no HR frame of HR 1-1 matches it", 2: "no HR frame of HR 1-1 matches it"}),
    ([(0, 0), (3, 3)], (4, 4), (1, 2), {1: "blank (no picture)", 2: "blank (no picture)"},
     {1: "blank (no picture)", 2: "blank (no picture)"}),
])
def test_why_a_frame_is_unpaired(pairs, counts, blank, hr_why, lr_why):
    nh, nl = counts
    hr_blank, lr_blank = np.isin(np.arange(nh), blank), np.isin(np.arange(nl), blank)
    got_hr, got_lr = unpaired_reasons(pairs, nh, nl, hr_blank, lr_blank)
    assert {k: v.split(" (cut")[0] for k, v in got_hr.items()} == hr_why
    assert {k: v.split(" (cut")[0] for k, v in got_lr.items()} == lr_why
