"""The luma the remaster alignment compares: any clip's BT.709 luma of its RGB, each clip read with its own matrix."""
from __future__ import annotations

import numpy as np
import vapoursynth as vs

from scripts import pairs as P
from vs_stdo.core.colour import common_luma

core = vs.core


def test_luma_reads_each_clip_with_its_own_matrix(clip_path):
    """The same picture stored as BT.601 and as BT.709 YUV gives the same luma."""
    src = P.hr_clip(clip_path, 320, 240, frames=1)
    rgb = core.resize.Bicubic(src, format=vs.RGBS, matrix_in=1)
    as601 = core.std.SetFrameProps(core.resize.Bicubic(rgb, format=vs.YUV444PS, matrix=6), _Matrix=6)
    untagged = core.std.RemoveFrameProps(as601, "_Matrix")  # 320x240: read as BT.601 by its size
    a, b, c = (np.asarray(common_luma(c).get_frame(0)[0]) for c in (src, as601, untagged))
    assert np.abs(a - b).max() < 0.02 and np.abs(b - c).max() < 1e-6
    wrong = np.asarray(common_luma(core.std.SetFrameProps(as601, _Matrix=1)).get_frame(0)[0])
    assert np.abs(wrong - b).max() > 0.02  # reading it with the other matrix would differ


def test_luma_of_gray_and_rgb_and_resized(clip_path):
    """GRAY is its own luma; RGB gives its BT.709 luma; a size resizes."""
    src = P.hr_clip(clip_path, 320, 240, frames=1)
    rgb = core.resize.Bicubic(src, format=vs.RGBS, matrix_in=1)
    gray = core.resize.Bicubic(rgb, format=vs.GRAYS, matrix=1)
    luma = np.asarray(common_luma(rgb).get_frame(0)[0])
    assert np.abs(np.asarray(common_luma(gray).get_frame(0)[0]) - luma).max() < 1e-6
    r, g, b = (np.asarray(rgb.get_frame(0)[p]) for p in range(3))
    assert np.abs(0.2126 * r + 0.7152 * g + 0.0722 * b - luma).max() < 1e-5
    small = common_luma(src, 64, 48)
    assert (small.width, small.height, small.format.id) == (64, 48, vs.GRAYS)
