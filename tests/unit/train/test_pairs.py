"""The training pair's rules that need no clip: the models' scale from a mapping (the one every message uses),
and near-whole ratios snapped to whole ones."""
from __future__ import annotations

import pytest

from vs_stdo.core.mapping import Mapping
from vs_stdo.train.align import Alignment
from vs_stdo.train.align.pipeline import snapped
from vs_stdo.train.pairs import model_scale

DVD = Mapping(88, 60, 160, 120, 154 / 88, 108 / 60, 4.37, 3.59)  # a DVD-like framing, ratios 1.75 x 1.8


def test_scale_follows_the_ratio_unless_given_and_enough():
    assert model_scale(DVD, None) == 2
    assert model_scale(Mapping(100, 100, 250, 250, 2.5, 2.5, 0, 0), None) == 3
    assert model_scale(DVD, 4) == 4
    with pytest.raises(ValueError, match="--scale 2 is below the LR-to-HR ratio 2.500 x 2.500; give --scale 3"):
        model_scale(Mapping(100, 100, 250, 250, 2.5, 2.5, 0, 0), 2)
    with pytest.raises(ValueError, match="ratio 4.500 x 4.500 is beyond x4"):
        model_scale(Mapping(100, 100, 450, 450, 4.5, 4.5, 0, 0), None)


@pytest.mark.parametrize("m,want,whole,says", [
    (Mapping(128, 72, 256, 144, 1.99999, 2.00001, 0.004, -0.003), (2.0, 2.0, 0.0, 0.0), True, "snapped to ratio 2 x 2"),
    (Mapping(360, 240, 720, 480, 2.0004, 2.0, 0.0, 0.0), None, False, "not snapped to ratio 2: the estimate is 0.072"),
    (Mapping(128, 72, 250, 140, 2.00002, 1.99998, -3.2, 1.1), (2.0, 2.0, -3.19872, 1.09928), False, "snapped"),
    (Mapping(128, 72, 256, 144, 1.0000, 1.00001, 0.01, 0.0), (1.0, 1.0, 0.0, 0.0), False, "snapped to ratio 1 x 1"),
    (DVD, None, False, ""),
])
def test_near_whole_ratios_snap_to_the_whole_mapping(m, want, whole, says):
    got, note = snapped(m)
    if want is None:
        assert got is m
    else:
        assert (got.ratio_x, got.ratio_y, got.offset_x, got.offset_y) == pytest.approx(want, abs=1e-5)
        assert got.distance(m) <= 0.05
    assert got.whole() == whole and note.startswith(says)


@pytest.mark.parametrize("m,given,scale", [
    (Mapping(128, 72, 256, 144, 2.0, 2.0, 0.0, 0.0), None, 2),
    (Mapping(180, 102, 256, 144, 1.41, 1.40, 0.5, 0.5), 3, 3),
    (Mapping(320, 180, 256, 144, 0.8, 0.8, 0.0, 0.0), None, 2),
    (Mapping(128, 72, 256, 144, 1.0, 1.0, 0.0, 0.0), None, 2),
])
def test_the_scale_printed_is_the_scale_trained(m, given, scale):
    """The report's "models at xN" line and the training use the one function."""
    s = model_scale(m, given)
    assert s == scale
    assert Alignment(m, [(0, 0)], [30.0]).lines(s)[1].startswith(f"models at x{scale}")
