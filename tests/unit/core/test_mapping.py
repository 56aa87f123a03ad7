"""The LR-to-HR mapping and the s-grid-to-HR resampler: geometry, manifest round trip, and the resampler
against plain maths and against VapourSynth's own resize (zimg), which plays what training resamples."""
from __future__ import annotations

import json
import math
from msgspec.structs import replace

import numpy as np
import pytest
import torch
import vapoursynth as vs

from vs_stdo.core.mapping import CATROM, Mapping, axis_matrix, frame_matrices, resample, weights

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


@pytest.mark.parametrize("lr_w,lr_h,want", [(174, 120, (254, 144)), (720, 480, (1048, 576)), (176, 120, (256, 144)),
                                            (175, 121, (254, 146)), (2, 2, (2, 2))])
def test_for_size_rounds_the_hr_size_to_the_subsampling_and_keeps_ratios_and_centre(lr_w, lr_h, want):
    m = Mapping(176, 120, 256, 144, 1.4, 1.15, 4.8, 3.0)
    got = m.for_size(lr_w, lr_h, (2, 2))
    assert (got.hr_width, got.hr_height) == want and (got.ratio_x, got.ratio_y) == (m.ratio_x, m.ratio_y)
    centre = lambda a: (a.offset_x + a.ratio_x * a.lr_width / 2 - a.hr_width / 2,  # noqa: E731
                        a.offset_y + a.ratio_y * a.lr_height / 2 - a.hr_height / 2)
    assert centre(got) == pytest.approx((centre(m)[0] * lr_w / 176, centre(m)[1] * lr_h / 120))
    assert m.for_size(174, 120).hr_width == 253  # no subsampling: the nearest size
    odd = Mapping(176, 120, 255, 143, 1.4, 1.15, 4.8, 3.0)
    assert odd.for_size(176, 120) is odd and (odd.for_size(176, 120, (2, 2)).hr_width, 
                                              odd.for_size(176, 120, (2, 2)).hr_height) == (256, 144)
    with pytest.raises(ValueError, match=r"no HR size fits a 60000x120 LR .*mapping field hr_width: expected `int` "
                                         r"<= 65536, got 87273"):
        m.for_size(60000, 120)


def test_resize_args_put_hr_centres_where_the_resampler_does():
    args = DVD.resize_args(2)
    assert (args["width"], args["height"]) == (640, 480)
    for j in (0, 17, 639):  # resize: destination j's centre at src_left + (j + 0.5) src_width / width
        centre = args["src_left"] + (j + 0.5) * args["src_width"] / args["width"]
        assert centre == pytest.approx(2 * (j + 0.5 - DVD.offset_x) / DVD.ratio_x)
    assert DVD.resize_args(1)["src_width"] == pytest.approx(640 / DVD.ratio_x)


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
    with pytest.raises(ValueError, match="mapping: expected `object`, got `array`"):
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
    from the window's edges, where taps beyond the window are mirrored into it."""
    ratio, offset, s = 1.7955, 6.37, 2
    full = axis_matrix(ratio, offset, s, 0, 704, 0, 640)
    # s-grid columns [200, 320) hold the centres of HR pixels ~[186, 293]
    win = axis_matrix(ratio, offset, s, 200, 120, 190, 100)
    assert torch.allclose(win[5:-5], full[195:285, 200:320], atol=1e-6)
    edge = axis_matrix(ratio, offset, s, 200, 120, 186, 4)  # HR 186's taps reach below column 200: mirrored
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


ZIMG_CASES = [  # (LR w, h, HR w, h, ratio x, y, offset x, y, s): DVD-like, shrinking, LR showing more, other s
    (176, 120, 320, 232, 1.8, 1.95, 6.37, -3.59, 2),
    (176, 120, 256, 144, 1.4, 1.15, 4.8, 3.0, 2),       # s / ratio up to 1.74: the kernel widens
    (150, 100, 120, 70, 0.8, 0.75, -0.3, 0.6, 1),       # an HR smaller than the LR
    (100, 80, 190, 150, 2.0, 2.0, -5.25, -4.5, 2),      # whole ratio, shifted: the LR overhangs the HR
    (96, 64, 280, 170, 2.9, 2.7, 1.1, -0.2, 3),
    (64, 48, 250, 180, 3.95, 3.9, 0.5, 0.25, 4),
]


@pytest.mark.parametrize("case", ZIMG_CASES, ids=lambda c: f"{c[0]}x{c[1]}->{c[2]}x{c[3]}")
def test_the_training_resampler_is_zimgs_resize_on_real_frames(pair, case):
    """The promise that training and playback agree: the matrices training takes its loss through (whole frame,
    edges and overhanging parts included) give what the filter's one zimg call gives, to float precision."""
    *sizes, s = case
    m = Mapping(*sizes)
    hr = pair[0]  # real RGBS frames, 1280x720
    src = hr.std.Crop(right=hr.width - s * m.lr_width, bottom=hr.height - s * m.lr_height)[:2]
    played = src.resize.Bicubic(**m.resize_args(s), **CATROM)
    for a, b in zip(src.frames(), played.frames()):
        frame = torch.from_numpy(np.stack([np.asarray(a[p]) for p in range(3)]))
        trained = resample(frame, *frame_matrices(m, s)).numpy()
        zimg = np.stack([np.asarray(b[p]) for p in range(3)])
        assert trained.shape == zimg.shape == (3, m.hr_height, m.hr_width)
        assert np.abs(trained - zimg).max() < 1e-4, np.abs(trained - zimg).max()


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


# --- black bars: a letterboxed DVD (LR bars), a pillarboxed Blu-ray (HR bars) -----------------------------------

# a 16:9 picture 352x180 between 30-row bars of a 352x240 DVD, on a 640x360 HR
LETTERBOX = Mapping(352, 180, 640, 360, 632 / 352, 348 / 180, 6.37, 3.59).framed((0, 0, 30, 30), (0, 0, 0, 0))
# a full-frame 352x240 DVD of the 480x360 4:3 picture of a 640x360 Blu-ray between 80-column pillars
PILLARBOX = Mapping(352, 240, 480, 360, 472 / 352, 348 / 240, 6.37, 3.59).framed((0, 0, 0, 0), (80, 80, 0, 0))


@pytest.mark.parametrize("m,lr_picture,hr_picture,overlap", [
    (LETTERBOX, (0, 30, 352, 210), (0, 0, 640, 360), (7, 4, 638, 351)),
    (PILLARBOX, (0, 0, 352, 240), (80, 0, 560, 360), (87, 4, 558, 351)),
    (DVD, (0, 0, 352, 240), (0, 0, 640, 480), (7, 4, 638, 471)),
])
def test_pictures_and_their_overlap(m, lr_picture, hr_picture, overlap):
    """The mapping relates the pictures in full-frame coordinates; the overlap is what both pictures show."""
    assert (m.lr_picture(), m.hr_picture(), m.overlap()) == (lr_picture, hr_picture, overlap)
    inner = m.inner()
    assert (inner.lr_width, inner.lr_height) == (lr_picture[2] - lr_picture[0], lr_picture[3] - lr_picture[1])
    assert inner.framed(m.lr_bars, m.hr_bars) == m and not inner.has_bars()
    assert m.crops() == pytest.approx(inner.crops())
    x0, y0, x1, y1 = m.footprint()  # the LR picture's edges land where the inner mapping puts them, moved by the bars
    assert (x0 - m.hr_bars[0], y0 - m.hr_bars[2]) == pytest.approx((inner.offset_x, inner.offset_y))


def test_the_distance_is_measured_on_the_picture():
    """A different ratio moves the far edge of the picture, not of the frame with its bars."""
    other = LETTERBOX.with_ratios(LETTERBOX.ratio_x, LETTERBOX.ratio_y + 0.001, LETTERBOX.offset_x,
                                  LETTERBOX.offset_y - 0.03)
    assert other.distance(LETTERBOX) == pytest.approx(max(abs(0.001 * 30 - 0.03), abs(0.001 * 210 - 0.03)))


def test_bars_scale_with_the_frame_and_keep_whole_only_when_alike():
    big = LETTERBOX.for_size(704, 480, (2, 2))
    assert big.lr_bars == (0, 0, 60, 60) and big.hr_bars == (0, 0, 0, 0)
    assert PILLARBOX.for_size(176, 120).hr_bars == (40, 40, 0, 0)
    assert LETTERBOX.for_size(351, 239).lr_bars == (0, 0, 30, 30)  # the LR's rounded up: no bar row is read
    s2 = Mapping(100, 80, 200, 160, 2.0, 2.0, 0.0, 0.0, (0, 0, 5, 5), (0, 0, 10, 10))
    assert s2.whole() and not replace(s2, hr_bars=(0, 0, 0, 0)).whole()


def test_bars_in_the_manifest_round_trip_and_are_checked():
    d = LETTERBOX.to_dict()
    assert list(d["lr_bars"]) == [0, 0, 30, 30] and "hr_bars" not in d  # no bars: not written
    assert Mapping.from_dict(json.loads(json.dumps(d))) == LETTERBOX
    assert "lr_bars" not in DVD.to_dict() and Mapping.from_dict(DVD.to_dict()).lr_bars == (0, 0, 0, 0)
    for bad, says in [([0, 0, 30], r"lr_bars: expected `array` of length 4"),
                      ([0, 0, -1, 3], r"lr_bars\[2\]: expected `int` >= 0, got -1"),
                      ([0, 0, 1.5, 3], r"lr_bars\[2\]: expected `int`, got `float`"),
                      ([0, 0, 120, 120], r"lr_bars \[0, 0, 120, 120\] leave no picture in the 352x240 frame")]:
        with pytest.raises(ValueError, match=says):
            Mapping.from_dict({**d, "lr_bars": bad})


BARRED = [  # (LR w, h, HR w, h, ratio x, y, offset x, y, LR bars, HR bars, s)
    (176, 120, 320, 180, 1.8, 1.95, 6.37, -54.1, (0, 0, 30, 30), (0, 0, 0, 0), 2),    # letterboxed DVD
    (176, 120, 320, 180, 1.34, 1.45, 83.5, 3.6, (0, 0, 0, 0), (80, 80, 0, 0), 2),     # pillarboxed Blu-ray
    (120, 96, 256, 144, 1.9, 1.7, -3.2, -10.4, (4, 6, 8, 6), (10, 12, 6, 4), 2),      # bars on every side
]


@pytest.mark.parametrize("case", BARRED, ids=["letterbox", "pillarbox", "every side"])
def test_with_bars_the_resampler_is_the_crop_resize_and_borders_playback_makes(pair, case):
    """Training's matrices for a mapping with bars give what playback's zimg calls give: the s-grid frame cut to
    the LR picture, resized onto the HR picture, black bars added; the LR's bars never reach the output."""
    *sizes, lr_bars, hr_bars, s = case
    m = Mapping(*sizes, lr_bars, hr_bars)
    hr = pair[0]
    src = hr.std.Crop(right=hr.width - s * m.lr_width, bottom=hr.height - s * m.lr_height)[:2]
    played = src.std.Crop(*(s * b for b in m.lr_bars)).resize.Bicubic(**m.inner().resize_args(s), **CATROM)
    played = played.std.AddBorders(*m.hr_bars)
    for a, b in zip(src.frames(), played.frames()):
        frame = torch.from_numpy(np.stack([np.asarray(a[p]) for p in range(3)]))
        trained = resample(frame, *frame_matrices(m, s)).numpy()
        zimg = np.stack([np.asarray(b[p]) for p in range(3)])
        assert np.abs(trained - zimg).max() < 1e-4, np.abs(trained - zimg).max()
        if m.lr_bars[2]:  # a bright LR bar row next to the picture changes nothing
            frame[:, s * m.lr_picture()[1] - 1] = 5.0
            assert np.abs(resample(frame, *frame_matrices(m, s)).numpy() - zimg).max() < 1e-4
