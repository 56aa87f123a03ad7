"""Which frames of the input a run decodes: all of a short input, an even spread of a long one.

A decoded training frame costs its HR as uint8 RGB plus its LR as float32 RGB (a 1080p frame at x4:
6.2 + 1.6 MB), so a 24-minute episode (34,000 frames) cannot be held. Consecutive frames are nearly
the same picture, and a run of a few thousand steps sees each patch of a few hundred frames only a
few times, so an even spread over the whole input carries what the models can learn from it. Frames
not decoded are routed by the blind router at playback (route "auto").
"""
from __future__ import annotations

from typing import Sequence

from .preflight import GB, frames_bytes


def choose(candidates: Sequence[int], wanted: int, memory_gib: float, lr_width: int, lr_height: int,
           scale: int) -> Sequence[int]:
    """The frames (of `candidates`) to decode: every `step`-th from the first, at most `wanted` of them (0: as
    many as fit `memory_gib`; all when they fit). Of a range, a range: VapourSynth selects it with one node."""
    fit = max(1, int(memory_gib * GB // frames_bytes(lr_width, lr_height, 1, scale)))
    n = min(len(candidates), wanted or fit)
    return candidates[::-(-len(candidates) // n)]
