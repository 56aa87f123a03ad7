"""Combed frames: a real clip telecined (3:2 pulldown, woven by VapourSynth) zigzags in 2 of every 5 frames where
things move; its progressive frames, and fine horizontal texture, do not count."""
from __future__ import annotations

import numpy as np
import torch
import vapoursynth as vs

from vs_stdo.train.combing import left_out, zigzag

core = vs.core


def telecined(clip: vs.VideoNode) -> vs.VideoNode:
    """3:2 pulldown: frames A B C D -> A B (B top, C bottom) (C top, D bottom) D."""
    fields = clip.std.SeparateFields(tff=True).std.SelectEvery(cycle=8, offsets=[0, 1, 2, 3, 2, 5, 4, 7, 6, 7])
    return fields.std.DoubleWeave(tff=True)[::2].std.SetFrameProps(_FieldBased=0)


def luma(clip: vs.VideoNode) -> torch.Tensor:
    return torch.stack([torch.from_numpy(np.asarray(f[0], dtype=np.float32)[None] / 255) for f in clip.frames()])


def test_a_telecined_clip_has_two_combed_frames_in_five_and_the_warning_names_vfm(clip_path):
    progressive = core.bs.VideoSource(str(clip_path))[40:80].resize.Bicubic(352, 240, format=vs.YUV420P8)
    plain, pulled = zigzag(luma(progressive)), zigzag(luma(telecined(progressive)))
    out, warnings = left_out(pulled, np.zeros_like(pulled))
    assert left_out(plain, plain) == ([], [])                         # progressive: nothing combed
    assert len(out) >= 4 and all(i % 5 in (2, 3) for i in out)        # woven ones only (still ones show nothing)
    assert len(warnings) == 1 and "LR" in warnings[0] and "vivtc.VFM + VDecimate" in warnings[0]
    kept, said = left_out(pulled, np.zeros_like(pulled), keep=True)  # --combed-frames keep: still said
    assert kept == [] and "they are trained on (--combed-frames keep)" in said[0]


def test_fine_horizontal_texture_in_every_frame_is_not_combing():
    rows = torch.zeros(12, 1, 64, 64)
    rows[:, :, ::2] = 1.0                                             # every other row bright: zigzags everywhere
    assert left_out(zigzag(rows), zigzag(rows))[0] == []
