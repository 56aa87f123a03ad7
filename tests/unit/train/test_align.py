"""Estimating how an LR clip maps onto an HR clip, end to end: frames paired in time and the mapping in space, on
synthetic pairs with a known mapping made from real clips (scripts/pairs.py), several through a real MPEG-2
encode like a DVD's: crops and shifts, black bars on either side, held frames, an insert, framing that
changes, near-whole ratios, and the refusals with their causes."""
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


def _same_picture(hr: vs.VideoNode, within: float = 1e-5) -> Callable[[int, int], bool]:
    """Whether two HR frames show the same picture: luma within 50 dB PSNR (a source's duplicated frame; 40 dB
    for a held frame of a lossy source: `within` 1e-4)."""
    def alike(a: int, b: int) -> bool:
        x, y = (np.asarray(hr.get_frame(n)[0], dtype=np.float64) for n in (a, b))
        return float(((x - y) ** 2).mean()) < 255 ** 2 * within
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


@pytest.mark.slow
@pytest.mark.parametrize("make", [P.letterboxed, P.pillarboxed])
def test_bars_are_left_out_and_the_pictures_aligned(clip_path, tmp_path, make):
    """A 16:9 picture in a 4:3 DVD between 25 % bars, and a full-frame 4:3 DVD of a pillarboxed Blu-ray, both
    through the real MPEG-2: the bars are found, and the pictures align to a tenth of a pixel."""
    pair = make(clip_path, tmp_path, first=20, frames=40)
    result = align(pair.hr, pair.lr)
    _check(result, pair)
    m, truth = result.mapping, pair.mapping
    assert m.hr_bars == truth.hr_bars and m.lr_bars[:2] == truth.lr_bars[:2]
    assert all(t <= f <= t + 2 for f, t in zip(m.lr_bars[2:], truth.lr_bars[2:]))  # the soft edge, rounded to 4:2:0
    assert len(result.pairs) == 38 and result.dropped == [] and not result.framed_otherwise


@pytest.mark.slow
def test_scenes_framed_otherwise_are_found_and_refused(clip_path):
    """Two episodes spliced, the second cropped 8 px further right: the mapping fits the first, and the second's
    HR frames are named, so training stops before it starts."""
    hr = P.hr_clip(clip_path, 640, 480, 20, 80)
    pair = P.spliced([P.make_pair(hr[:40], 352, 240, (6, 2, 4, 8), (0.37, -0.41)),
                      P.make_pair(hr[40:], 352, 240, (14, -6, 4, 8), (0.37, -0.41))])
    result = align(pair.hr, pair.lr)
    assert result.mapping.distance(pair.mapping) < TOLERANCE_PX
    (first, last, off), = result.framed_otherwise
    assert 40 <= first <= 42 and last >= 77 and 7 < off < 9, result.framed_otherwise
    assert "HR frames" in result.problems(range(80)) and result.problems(range(0, 38)) is None


@pytest.mark.slow
def test_a_pan_and_scan_is_refused_with_its_cause(clip_path):
    """A 4:3 window panning over a 16:9 picture is no mapping at all."""
    pair = P.pan_and_scan(P.hr_clip(clip_path, 640, 360, 20, 60), 352, 240, 0.75)
    try:
        problem = align(pair.hr, pair.lr).problems(range(60))
    except ValueError as e:
        problem = str(e)
    assert problem is not None and "pan and scan" in problem


@pytest.mark.slow
def test_an_insert_gives_the_frame_offset_per_run(clip_path, bikes):
    """Eight frames of another clip inserted in the LR at frame 12: frames 0-11 pair at +0, the rest at +8."""
    hr = P.hr_clip(clip_path, 640, 480, 20, 40)
    made = P.make_pair(hr, 352, 240, (6, 2, 4, 8), (0.37, -0.41))
    other = P.make_pair(P.hr_clip(bikes, 640, 480, 0, 8), 352, 240, (6, 2, 4, 8), (0.37, -0.41)).lr
    lr = core.std.Splice([made.lr[:12], other, made.lr[12:]])
    result = align(hr, lr)
    assert result.offsets() == [(0, 11, 0), (12, 39, 8)]
    assert sorted(result.unpaired_lr) == list(range(12, 20)) and "HR 0-11: +0, HR 12-39: +8" in "\n".join(result.lines(2))


@pytest.mark.slow
def test_held_frames_of_an_animation_pair_nearly_all(tmp_path):
    """A CG intro animated at ~15 fps on 30 fps (frames held on 2s), dark and low in contrast in places,
    through a DVD-like MPEG-2 LR where every LR frame has its partner: nearly every frame that shows anything
    pairs, each with its own picture (or a held twin), and every unpaired frame says why."""
    pair = P.dvd_like(clips.fetch("fillets-intro.mpg"), tmp_path, 420, 200, name="fillets")
    result = align(pair.hr, pair.lr)
    alike = _same_picture(pair.hr, 1e-4)
    assert wrong_pairs(result.pairs, pair.shows, alike) == []
    assert len(result.pairs) >= 0.97 * len(pair.shows), result.lines(2)
    assert all(result.unpaired_hr.values()) and all(result.unpaired_lr.values())


@pytest.mark.slow
def test_a_whole_ratio_read_a_hair_off_snaps_to_it(clip_path):
    """An exact 2x LR starting later (so aligned): the estimate's 1.99999 snaps to 2, offsets to 0: whole."""
    hr = P.hr_clip(clip_path, 512, 384, 20, 30)
    pair = P.make_pair(hr, 256, 192, start=2, matrix=1)
    result = align(pair.hr, pair.lr)
    m = result.mapping
    assert (m.ratio_x, m.ratio_y, m.offset_x, m.offset_y) == (2, 2, 0, 0) and m.whole()
    assert any(note.startswith("snapped to ratio 2 x 2") for note in result.notes)


@pytest.mark.slow
@pytest.mark.parametrize("case,says", [
    ("blank HR", "the HR is blank"),
    ("blank LR", "the LR is blank"),
    ("an LR 8 times smaller", "the LR picture (80x60) is 8.00 x 8.00 times smaller than the HR's (640x480): "
                              "beyond x4"),
])
def test_refusals_name_the_real_cause(clip_path, case, says):
    hr = P.hr_clip(clip_path, 640, 480, 20, 10)
    lr = P.make_pair(hr, 352, 240).lr
    if case == "blank HR":
        hr = core.std.BlankClip(hr)
    elif case == "blank LR":
        lr = core.std.BlankClip(lr, color=[16, 128, 128])
    else:
        lr = P.make_pair(hr, 80, 60).lr
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        align(hr, lr)


@pytest.mark.slow
def test_bars_given_by_hand_are_taken_as_given(clip_path, tmp_path):
    """--lr-bars/--hr-bars: what is given is used (the LR's rounded up to its subsampling), nothing found."""
    pair = P.letterboxed(clip_path, tmp_path, first=20, frames=30)
    result = align(pair.hr, pair.lr, hr_bars=(0, 0, 0, 0), lr_bars=(1, 0, 33, 31))
    assert (result.mapping.lr_bars, result.mapping.hr_bars) == ((2, 0, 34, 32), (0, 0, 0, 0))
    assert result.mapping.distance(pair.mapping) < TOLERANCE_PX
