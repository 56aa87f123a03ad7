"""Estimating how an LR clip maps onto an HR clip, end to end: frames paired in time and the mapping in space, on
synthetic pairs with a known mapping made from a real clip (scripts/pairs.py), one of them through a real
MPEG-2 encode like a DVD's."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import vapoursynth as vs

from scripts import clips
from scripts import pairs as P
from tests.support.pairs import wrong_pairs
from vs_stdo.train.align import Alignment, align

core = vs.core

TOLERANCE_PX = 0.1


def _same_picture(hr: vs.VideoNode) -> Callable[[int, int], bool]:
    """Whether two HR frames show the same picture: luma within 50 dB PSNR (a source's duplicated frame)."""
    def alike(a: int, b: int) -> bool:
        x, y = (np.asarray(hr.get_frame(n)[0], dtype=np.float64) for n in (a, b))
        return float(((x - y) ** 2).mean()) < 255 ** 2 * 1e-5
    return alike


def _check(result: Alignment, pair: P.Pair) -> float:
    err = result.mapping.distance(pair.mapping)
    assert err <= TOLERANCE_PX, (result.mapping.describe(), pair.mapping.describe())
    assert result.frame_offset() == pair.frame_offset()
    assert wrong_pairs(result.pairs, pair.shows, _same_picture(pair.hr)) == []
    return err


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
