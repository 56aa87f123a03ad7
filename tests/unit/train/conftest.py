"""Fixtures of the alignment tests: the DVD-like pair and its alignment, made once."""
from __future__ import annotations

import pytest

from scripts import pairs as P
from vs_stdo.train.align import Alignment, align


@pytest.fixture(scope="session")
def dvd(clip_path, tmp_path_factory) -> tuple[P.Pair, Alignment]:
    """The DVD-like pair of the default clip (scripts/pairs.py: a real MPEG-2 encode) and its alignment."""
    pair = P.dvd_like(clip_path, tmp_path_factory.mktemp("dvd"), first=20)
    return pair, align(pair.hr, pair.lr)
