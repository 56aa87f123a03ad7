"""The LR-to-HR mapping and the s-grid-to-HR resampler: geometry, manifest round trip, and the resampler
against plain maths and against VapourSynth's own resize."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import vapoursynth as vs

from vs_stdo.core.mapping import Mapping, axis_matrix, resample, weights

core = vs.core

DVD = Mapping(352, 240, 640, 480, 632 / 352, 468 / 240, 6.37, 3.59)


def test_scale_is_the_smallest_whole_number_at_or_above_the_larger_ratio():
    assert DVD.scale() == 2
    assert Mapping.plain(512, 384, 768, 576).scale() == 2
    assert Mapping(100, 100, 200, 200, 2 + 1e-9, 2.0, 0, 0).scale() == 2  # within 1e-6 of whole
    assert Mapping(100, 100, 201, 200, 2.01, 2.0, 0, 0).scale() == 3
    assert Mapping(100, 100, 400, 250, 4.0, 2.5, 0, 0).scale() == 4
    assert Mapping(200, 200, 100, 100, 0.5, 0.5, 0, 0).scale() == 1


def test_overlap_is_the_hr_pixels_inside_the_lr_footprint():
    # LR covers HR x in [6.37, 638.37), y in [3.59, 471.59)
    assert DVD.overlap() == (7, 4, 638, 471)
    # an LR showing more than the HR: the whole HR frame
    assert Mapping(100, 100, 180, 180, 2.0, 2.0, -10.0, -10.5).overlap() == (0, 0, 180, 180)
    with pytest.raises(ValueError, match="does not overlap"):
        Mapping(100, 100, 200, 200, 2.0, 2.0, 300.0, 0.0).overlap()


def test_for_size_keeps_the_ratios_and_the_relative_framing():
    assert DVD.for_size(352, 240) is DVD
    big = DVD.for_size(704, 480)
    assert (big.hr_width, big.hr_height, big.ratio_x, big.ratio_y) == (1280, 960, DVD.ratio_x, DVD.ratio_y)
    assert np.allclose(big.crops(), 2 * np.array(DVD.crops()))
    odd = DVD.for_size(351, 241)
    assert (odd.hr_width, odd.hr_height) == (round(640 * 351 / 352), round(480 * 241 / 240))
    centre = lambda m: (m.offset_x + m.ratio_x * m.lr_width / 2 - m.hr_width / 2)  # noqa: E731
    assert centre(odd) == pytest.approx(centre(DVD) * 351 / 352)
    with pytest.raises(ValueError, match="positive"):
        DVD.for_size(0, 240)


def test_whole_only_for_an_exact_whole_ratio_with_no_offset():
    assert Mapping.plain(160, 90, 640, 360).whole()
    assert not Mapping(160, 90, 640, 360, 4.0, 4.0, 0.1, 0.0).whole()
    assert not Mapping.plain(512, 384, 768, 576).whole()
    assert not Mapping(160, 90, 641, 360, 4.0, 4.0, 0.0, 0.0).whole()
    assert not DVD.whole()


def test_describe_gives_ratios_crops_and_offset():
    line = DVD.describe()
    assert "ratio 1.79545 x 1.95000" in line and "6.37/1.63/3.59/8.41" in line and "+6.370/+3.590" in line


def test_dict_round_trip_and_refusals():
    d = DVD.to_dict()
    assert Mapping.from_dict(d) == DVD
    import json
    assert Mapping.from_dict(json.loads(json.dumps(d))) == DVD
    bad = [({**d, "lr_width": 0}, "lr_width"), ({**d, "hr_height": 480.0}, "hr_height"),
           ({**d, "ratio_x": "2"}, "ratio_x"), ({**d, "offset_y": math.nan}, "offset_y"),
           ({**d, "ratio_y": 0.0}, "ratio_y"), ({**d, "offset_x": True}, "offset_x"),
           ({k: v for k, v in d.items() if k != "hr_width"}, "hr_width"), ({**d, "shear": 0.1}, "shear")]
    for broken, field in bad:
        with pytest.raises(ValueError, match=field):
            Mapping.from_dict(broken)
    with pytest.raises(ValueError, match="dict"):
        Mapping.from_dict([1, 2])


GEOMETRIES = [(2.0, 0.0, 2), (1.7955, 6.37, 2), (1.95, -0.41, 2), (1.5, 0.0, 2), (3.0, 0.25, 4), (4.0, 0.0, 4)]


@pytest.mark.parametrize("ratio,offset,s", GEOMETRIES)
def test_axis_matrix_rows_sum_to_one(ratio, offset, s):
    full = axis_matrix(ratio, offset, s, 0, 200, 0, int(200 / s * ratio))
    window = axis_matrix(ratio, offset, s, 37, 40, 20, 15)
    for mx in (full, window):
        assert torch.allclose(mx.sum(1), torch.ones(len(mx)), atol=1e-6)


def test_axis_matrix_is_cached_per_geometry():
    assert axis_matrix(1.5, 0.2, 2, 0, 64, 0, 48) is axis_matrix(1.5, 0.2, 2, 0, 64, 0, 48)


@pytest.mark.parametrize("s", [1, 2, 4])
def test_identity_at_ratio_s_and_no_offset_is_a_plain_copy(s):
    x = torch.rand(3, 40, 56)
    out = resample(x, axis_matrix(s, 0.0, s, 0, 40, 0, 40), axis_matrix(s, 0.0, s, 0, 56, 0, 56))
    assert torch.allclose(out, x, atol=1e-6)


@pytest.mark.parametrize("ratio,offset,s", [(2.0, 0.3, 2), (1.0, -0.7, 3), (2.0, 0.5, 4), (1.0, 0.25, 2)])
def test_linear_ramp_is_exact_away_from_the_edges(ratio, offset, s):
    """Catmull-Rom reproduces linear functions; widened by a whole factor (a whole-step shrink) it still does."""
    h, w = 96, 120
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    ramp = 0.01 * xx - 0.02 * yy
    dh, dw = int(h / s * ratio), int(w / s * ratio)
    out = resample(ramp, axis_matrix(ratio, offset, s, 0, h, 0, dh), axis_matrix(ratio, offset, s, 0, w, 0, dw))
    py = s * (torch.arange(dh) + 0.5 - offset) / ratio - 0.5  # destination centres as source pixel indices
    px = s * (torch.arange(dw) + 0.5 - offset) / ratio - 0.5
    expected = 0.01 * px[None, :] - 0.02 * py[:, None]
    m = 3 * s
    assert torch.allclose(out[m:-m, m:-m], expected[m:-m, m:-m], atol=1e-5)


def test_fractional_widening_bends_a_ramp_by_under_two_percent_of_a_step():
    """As in zimg, a kernel widened by a fractional factor is not exactly linear-preserving; bounded here."""
    ramp = torch.arange(200, dtype=torch.float32)[None]
    for ratio, offset in ((1.7, 0.3), (1.5, -2.3), (1.95, 0.0)):
        n = int(200 / 2 * ratio)
        out = resample(ramp, torch.ones(1, 1), axis_matrix(ratio, offset, 2, 0, 200, 0, n))[0]
        pos = 2 * (torch.arange(n) + 0.5 - offset) / ratio - 0.5
        err = (out - pos)[10:-10].abs().max()
        assert 1e-4 < err < 0.02


def test_window_matrix_is_the_block_of_the_full_one():
    """A training patch's matrix (a window of the s-grid -> the HR pixels inside) equals the frame's, away
    from the window's edges."""
    ratio, offset, s = 1.7955, 6.37, 2
    full = axis_matrix(ratio, offset, s, 0, 704, 0, 640)
    # s-grid columns [200, 320) hold the centres of HR pixels ~[186, 293]
    win = axis_matrix(ratio, offset, s, 200, 120, 190, 100)
    assert torch.allclose(win[5:-5], full[195:285, 200:320], atol=1e-6)
    edge = axis_matrix(ratio, offset, s, 200, 120, 186, 4)  # HR 186's taps reach below column 200: clamped
    assert torch.allclose(edge.sum(1), torch.ones(4)) and not torch.allclose(edge[0], full[186, 200:320], atol=1e-3)


@pytest.mark.parametrize("lr_w,lr_h,left,top,src_w,src_h", [(352, 240, 6.37, 3.59, 632, 468),
                                                            (512, 384, 0.0, 0.0, 640, 480),
                                                            (320, 240, 0.3, -0.2, 640, 480)])
def test_matches_vapoursynth_resize_bicubic_inside_the_frame(lr_w, lr_h, left, top, src_w, src_h):
    """The resampler, used HR -> LR (s = 1, ratio = 1 / (HR px per LR px)), is zimg's resize.Bicubic."""
    rng = np.random.default_rng(1)
    img = np.cumsum(np.cumsum(rng.standard_normal((480, 640)), 0), 1).astype(np.float32)
    img = (img - img.min()) / (img.max() - img.min())
    clip = core.std.BlankClip(width=640, height=480, format=vs.GRAYS, length=1)
    clip = core.std.ModifyFrame(clip, clip, lambda n, f: _filled(f, img))
    lr = core.resize.Bicubic(clip, lr_w, lr_h, src_left=left, src_top=top, src_width=src_w, src_height=src_h)
    expected = np.asarray(lr.get_frame(0)[0])
    rx, ry = src_w / lr_w, src_h / lr_h
    out = resample(torch.from_numpy(img), axis_matrix(1 / ry, -top / ry, 1, 0, 480, 0, lr_h),
                   axis_matrix(1 / rx, -left / rx, 1, 0, 640, 0, lr_w)).numpy()
    assert np.abs(out - expected)[8:-8, 8:-8].max() < 1e-5


def _filled(f: vs.VideoFrame, img: np.ndarray) -> vs.VideoFrame:
    out = f.copy()
    np.copyto(np.asarray(out[0]), img)
    return out


def test_weights_are_differentiable_in_ratio_and_offset():
    ratio = torch.tensor(1.8, dtype=torch.float64, requires_grad=True)
    offset = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    x = torch.linspace(0, 1, 100, dtype=torch.float64) ** 2
    (weights(ratio, offset, 2, 0, 100, 10, 50) @ x).sum().backward()
    assert ratio.grad is not None and offset.grad is not None
    assert ratio.grad.abs() > 0 and offset.grad.abs() > 0
