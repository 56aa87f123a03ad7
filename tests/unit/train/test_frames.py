"""Which frames a run decodes: all of a short input, an even spread of a long one within the memory budget."""
from __future__ import annotations

from vs_stdo.train import preflight
from vs_stdo.train.frames import choose


def test_short_inputs_keep_every_frame_and_long_ones_an_even_spread_within_the_budget():
    assert choose(range(30), 0, 0.5, 320, 180, 4) == range(30)
    long = choose(range(50_000), 0, 0.5, 480, 270, 4)                      # 1080p at x4: 7.8 MB a frame
    assert 60 <= len(long) <= 69 and long.start == 0 and long.stop == 50_000
    assert preflight.frames_bytes(480, 270, len(long), 4) <= 0.5 * preflight.GB
    assert len(choose(range(34_000), 0, 0.5, 960, 540, 2)) < len(long)     # x2 frames are larger
    assert len(choose(range(50_000), 500, 0.5, 480, 270, 4)) == 500        # --train-frames overrides the budget
    assert choose(range(50_000), 0, 0.5, 480, 270, 4) == choose(range(50_000), 0, 0.5, 480, 270, 4)
