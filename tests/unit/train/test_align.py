"""Estimating how an LR clip maps onto an HR clip: frames paired in time and the mapping in space, on
synthetic pairs with a known mapping made from a real clip (scripts/pairs.py), one of them through a real
MPEG-2 encode like a DVD's."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import vapoursynth as vs

from scripts import clips
from scripts import pairs as P
from vs_stdo.core.mapping import Mapping
from vs_stdo.train.align import (
    Alignment,
    align,
    default_matrix,
    match_frames,
    noise_floor,
    normalise,
    outliers,
    to_luma,
)

core = vs.core

TOLERANCE_PX = 0.1


def _sequence(n: int, seed: int = 0) -> np.ndarray:
    """n thumbnails of smooth random content moving slowly: neighbours alike, as in real video."""
    rng = np.random.default_rng(seed)
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    field = rng.standard_normal((60, 76 + n))
    field = np.apply_along_axis(np.convolve, 0, field, kernel, "valid")
    field = np.apply_along_axis(np.convolve, 1, field, kernel, "valid")
    return normalise(np.stack([field[:, k:k + 64] for k in range(n)]))


def _truth_ok(found: list[tuple[int, int]], shows: list[int],
              alike: Callable[[int, int], bool] = lambda a, b: False) -> list[tuple[int, int]]:
    """The pairs that do not pair an LR frame with the HR frame it shows (or with one `alike` that: a source's own
    duplicated frame is the same picture, and either of the two is a right partner)."""
    return [(h, l) for h, l in found if shows[l] != h and not alike(h, shows[l])]


def _same_picture(hr: vs.VideoNode) -> Callable[[int, int], bool]:
    """Whether two HR frames show the same picture: luma within 50 dB PSNR (a source's duplicated frame)."""
    def alike(a: int, b: int) -> bool:
        x, y = (np.asarray(hr.get_frame(n)[0], dtype=np.float64) for n in (a, b))
        return float(((x - y) ** 2).mean()) < 255 ** 2 * 1e-5
    return alike


def test_match_frames_pairs_an_offset_a_cut_and_a_repeat_exactly():
    hr = _sequence(120)
    shows = [n for n in range(7, 120) if not 50 <= n < 56]
    shows.insert(shows.index(80), 80)  # frame 80 twice
    rng = np.random.default_rng(1)
    lr = normalise(hr[shows] + 0.05 * rng.standard_normal(hr[shows].shape))
    first, _ = match_frames(hr, lr)
    floor = noise_floor(hr, lr, first)
    assert 0 < floor < 0.02
    for pairs, corr in (match_frames(hr, lr), match_frames(hr, lr, floor)):
        assert _truth_ok(pairs, shows) == []
        assert len(pairs) == len(shows) - 1  # all but one copy of the repeated frame
        assert corr.min() > 0.9
        # monotonic in both
        assert all(h1 < h2 and l1 < l2 for (h1, l1), (h2, l2) in zip(pairs, pairs[1:]))


def test_banded_matching_agrees_with_the_full_one():
    hr = _sequence(300, seed=2)
    shows = list(range(40, 300))
    lr = hr[shows]
    full, _ = match_frames(hr, lr)
    banded, _ = match_frames(hr, lr, band=12)
    assert banded == full and _truth_ok(banded, shows) == []


def test_unrelated_frames_stay_unpaired():
    pairs, _ = match_frames(_sequence(60, seed=3), _sequence(60, seed=4))
    assert len(pairs) < 15


def test_outliers_by_median_and_mad():
    res = np.array([30.0, 31.2, 29.5, 30.4, 30.9, 18.0, 29.9, 30.1])
    assert outliers(res).tolist() == [5]
    assert outliers(np.array([30.0, 30.0, 30.0, 28.5])).tolist() == []  # under 3 dB is never dropped


def test_default_matrix_by_size():
    assert default_matrix(720, 480) == 6 and default_matrix(1024, 576) == 6 and default_matrix(1920, 1080) == 1


def test_luma_reads_each_clip_with_its_own_matrix(clip_path):
    """The same picture stored as BT.601 and as BT.709 YUV gives the same luma."""
    src = P.hr_clip(clip_path, 320, 240, frames=1)
    rgb = core.resize.Bicubic(src, format=vs.RGBS, matrix_in=1)
    as601 = core.std.SetFrameProps(core.resize.Bicubic(rgb, format=vs.YUV444PS, matrix=6), _Matrix=6)
    untagged = core.std.RemoveFrameProps(as601, "_Matrix")  # 320x240: read as BT.601 by its size
    a, b, c = (np.asarray(to_luma(c).get_frame(0)[0]) for c in (src, as601, untagged))
    assert np.abs(a - b).max() < 0.02 and np.abs(b - c).max() < 1e-6
    wrong = np.asarray(to_luma(core.std.SetFrameProps(as601, _Matrix=1)).get_frame(0)[0])
    assert np.abs(wrong - b).max() > 0.02  # reading it with the other matrix would differ


def _check(result: Alignment, pair: P.Pair) -> float:
    err = result.mapping.distance(pair.mapping)
    assert err <= TOLERANCE_PX, (result.mapping.describe(), pair.mapping.describe())
    assert result.frame_offset() == pair.frame_offset()
    assert _truth_ok(result.pairs, pair.shows, _same_picture(pair.hr)) == []
    return err


@pytest.fixture(scope="module")
def dvd(clip_path, tmp_path_factory):
    pair = P.dvd_like(clip_path, tmp_path_factory.mktemp("dvd"), first=20)
    return pair, align(pair.hr, pair.lr)


@pytest.mark.slow
def test_dvd_like_pair_within_a_tenth_of_a_pixel(dvd):
    pair, result = dvd
    _check(result, pair)
    assert len(result.pairs) == 88 and result.unpaired == (2, 0) and result.dropped == []
    assert result.precision is not None and result.precision < TOLERANCE_PX


@pytest.mark.slow
def test_dvd_like_pair_of_a_zooming_shot():
    """city.mpg moves forward through the scene: framing-blind thumbnails prefer an HR frame a few frames
    on (framed like the cropped LR); the full-size check of the offset must undo that."""
    with tempfile.TemporaryDirectory() as tmp:
        pair = P.dvd_like(clips.fetch("city.mpg"), Path(tmp), first=20, name="city")
        _check(align(pair.hr, pair.lr), pair)


@pytest.mark.slow
def test_exact_one_and_a_half_pair(clip_path):
    pair = P.exact_15(clip_path, first=20)
    result = align(pair.hr, pair.lr)
    assert _check(result, pair) < 0.01
    assert len(result.pairs) == 90 and result.dropped == []  # lossless: every frame pairs, none looks worse
    assert result.mapping.scale() == 2 and not result.mapping.whole()


@pytest.mark.slow
@pytest.mark.parametrize("lr_size,crop,shift,start,missing,repeated", [
    ((360, 250), (3, 5, 2, 6), (-0.21, 0.33), 5, (40,), (60,)),
    ((320, 256), (0, 9, 7, 1), (0.45, 0.12), 0, tuple(range(30, 38)), (12, 70)),
])
def test_crops_shifts_ratios_missing_and_repeated_frames(clip_path, lr_size, crop, shift, start, missing, repeated):
    hr = P.hr_clip(clip_path, 640, 480, 20, 90)
    pair = P.make_pair(hr, *lr_size, crop, shift, start, missing, repeated)
    result = align(pair.hr, pair.lr)
    _check(result, pair)
    assert len(result.pairs) >= len(set(pair.shows)) - 2


@pytest.mark.slow
def test_hr_starting_later_than_the_lr(clip_path):
    hr = P.hr_clip(clip_path, 640, 480, 20, 90)
    made = P.make_pair(hr, 400, 300, (4, 4, 3, 3), (0.2, -0.3))
    pair = P.Pair(hr[3:], made.lr, made.mapping, [n - 3 for n in made.shows])
    result = align(pair.hr, pair.lr)
    _check(result, pair)
    assert result.frame_offset() == 3 and result.unpaired == (0, 3)


@pytest.mark.slow
def test_unrelated_content_is_refused(clip_path, bikes):
    hr = P.hr_clip(clip_path, 640, 480, 20, 60)
    other = P.make_pair(P.hr_clip(bikes, 640, 480, 0, 60), 352, 240).lr
    with pytest.raises(ValueError, match="does not look like the HR.*same episode"):
        align(hr, other)


@pytest.mark.slow
def test_report_dict_and_png(dvd, tmp_path):
    pair, result = dvd
    text = "\n".join(result.lines())
    assert "ratio 1.795" in text and "frame offset -2" in text and "88 pairs kept" in text
    d = json.loads(json.dumps(result.to_dict()))
    assert Mapping.from_dict(d["mapping"]) == result.mapping and d["frame_offset"] == -2
    assert len(d["pairs"]) == len(d["residuals_db"]) == 88
    png = result.save_png(tmp_path / "align.png", pair.hr, pair.lr)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
