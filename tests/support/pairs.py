"""Judging frame pairs against the truth of a synthetic remaster pair (scripts/pairs.py)."""
from __future__ import annotations

from typing import Callable


def wrong_pairs(found: list[tuple[int, int]], shows: list[int],
                alike: Callable[[int, int], bool] = lambda a, b: False) -> list[tuple[int, int]]:
    """The pairs that do not pair an LR frame with the HR frame it shows (or with one `alike` that: a source's own
    duplicated frame is the same picture, and either of the two is a right partner)."""
    return [(h, l) for h, l in found if shows[l] != h and not alike(h, shows[l])]
