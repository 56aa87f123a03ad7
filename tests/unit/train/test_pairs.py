"""The training pair's rules that need no clip: the models' scale from a mapping."""
from __future__ import annotations

import pytest

from vs_stdo.core.mapping import Mapping
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
