"""The graph Upscale builds for a remaster bundle (one whose mapping is no whole scale): the real plugin returns
the HR geometry, a fresh model (bicubic) put through the mapping lands where VapourSynth's own resize through the
same mapping does, luma bundles play too, any clip size gets an HR size its subsampling divides, and the output
is square-pixel. Hand-built bundles: nothing is trained."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

from tests.support.bundles import write_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.mapping import CATROM, Mapping, frame_matrices, resample
from vs_stdo.core.models import WDSR, Arch
from vs_stdo.filter.graph import upscaled
from vs_stdo.filter.options import UpscaleOptions

core = vs.core


def smooth_clip(width: int, height: int, frames: int = 2) -> tuple[vs.VideoNode, list[torch.Tensor]]:
    """An RGBS clip of smooth random pictures (like video, so interpolators agree), and its frames."""
    g = torch.Generator().manual_seed(1)
    arrays = [torch.nn.functional.avg_pool2d(torch.rand(1, 3, height, width, generator=g), 5, 1, 2,
                                             count_include_pad=False)[0] for _ in range(frames)]
    blank = core.std.BlankClip(format=vs.RGBS, width=width, height=height, length=frames)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), arrays[n][p].numpy())
        return out

    return blank.std.ModifyFrame(blank, fill), arrays


def through(clip: vs.VideoNode, m: Mapping) -> vs.VideoNode:
    """Catmull-Rom from the LR onto the HR grid of the mapping, written out by hand (not by `resize_args`)."""
    return core.resize.Bicubic(clip, m.hr_width, m.hr_height, src_left=-m.offset_x / m.ratio_x,
                               src_top=-m.offset_y / m.ratio_y, src_width=m.hr_width / m.ratio_x,
                               src_height=m.hr_height / m.ratio_y, **CATROM)


def psnr(a: vs.VideoNode, b: vs.VideoNode, box: tuple[int, int, int, int], planes: int = 3) -> float:
    x0, y0, x1, y1 = box
    fa, fb = a.get_frame(1), b.get_frame(1)
    d = np.stack([np.asarray(fa[p]) - np.asarray(fb[p]) for p in range(planes)])[:, y0:y1, x0:x1]
    return float(10 * np.log10(1 / np.mean(d ** 2)))


def remastered(path: Path, m: Mapping) -> str:
    """The bundle at `path` given the mapping `m`."""
    b = bundle_io.load(path)
    b.mapping = m
    bundle_io.save(b, path)
    return str(path)


DVD_LIKE = Mapping(96, 64, 176, 120, 1.8, 1.85, 3.3, -0.6)  # a DVD-like framing: 1.8 x 1.85, shifted


@pytest.fixture
def remaster_bundle(tmp_path) -> tuple[str, Mapping, vs.VideoNode]:
    clip, frames = smooth_clip(96, 64)
    path = write_bundle(tmp_path / "b.stdo", [WDSR(Arch(2, 1, 4, 2))], np.zeros((2, 6, 6)), frames, patch=(16, 12))
    return remastered(path, DVD_LIKE), DVD_LIKE, clip


def test_upscale_returns_the_hr_geometry_through_the_mapping(remaster_bundle):
    path, m, clip = remaster_bundle
    up = core.stdo.Upscale(clip.std.SetFrameProps(_SARNum=32, _SARDen=27), path, device="cpu")
    assert (up.width, up.height) == (176, 120)
    props = up.get_frame(0).props
    assert (props["_SARNum"], props["_SARDen"]) == (1, 1)  # the HR grid is square-pixel, whatever the LR's SAR
    x0, y0, x1, y1 = m.overlap()
    inner = (x0 + 8, y0 + 8, x1 - 8, y1 - 8)
    on_grid = psnr(up, through(clip, m), inner)
    moved = Mapping(96, 64, 176, 120, 1.8, 1.85, 3.3 + 0.5, -0.6 + 0.5)
    assert on_grid > 40, on_grid  # bicubic at x2 then the mapping ~ bicubic through the mapping
    assert psnr(up, through(clip, moved), inner) < on_grid - 6  # half a pixel off is far off


def test_other_sizes_get_the_same_ratios_and_yuv_keeps_its_format(remaster_bundle):
    path, m, clip = remaster_bundle
    small = core.resize.Bicubic(clip, 48, 32)
    up = core.stdo.Upscale(small, path, device="cpu")
    want = m.for_size(48, 32)
    assert (up.width, up.height) == (want.hr_width, want.hr_height) == (88, 60)
    yuv = core.resize.Bicubic(clip, format=vs.YUV444P16, matrix=1)
    out = core.stdo.Upscale(yuv, path, device="cpu")
    assert (out.width, out.height, out.format.id) == (176, 120, vs.YUV444P16)


def test_a_luma_remaster_bundle_plays_luma_through_the_models_and_chroma_through_the_mapping(tmp_path):
    clip, frames = smooth_clip(96, 64)
    path = remastered(write_bundle(tmp_path / "y.stdo", [WDSR(Arch(2, 1, 4, 2, planes=1))], np.zeros((2, 6, 6)),
                                   [f[:1] for f in frames], patch=(16, 12)), DVD_LIKE)
    x0, y0, x1, y1 = DVD_LIKE.overlap()
    inner = (x0 + 8, y0 + 8, x1 - 8, y1 - 8)
    gray = core.resize.Point(clip, format=vs.GRAYS, matrix_s="709")
    up = core.stdo.Upscale(gray, path, device="cpu")
    assert (up.width, up.height, up.format.id) == (176, 120, vs.GRAYS)
    assert psnr(up, through(gray, DVD_LIKE), inner, planes=1) > 40
    yuv = core.resize.Bicubic(clip, format=vs.YUV420P16, matrix_s="709")
    out = core.stdo.Upscale(yuv, path, device="cpu")
    assert (out.width, out.height, out.format.id) == (176, 120, vs.YUV420P16)
    got, want = out.get_frame(1), through(yuv, DVD_LIKE).get_frame(1)
    for p in (1, 2):  # the clip's own chroma, resized onto the HR grid by the mapping on the LR grid, sited
        assert np.array_equal(np.asarray(got[p]), np.asarray(want[p])), p
    y = np.asarray(got[0], np.float64)[y0 + 8:y1 - 8, x0 + 8:x1 - 8] / 65535
    assert np.abs(y - np.asarray(want[0], np.float64)[y0 + 8:y1 - 8, x0 + 8:x1 - 8] / 65535).mean() < 0.01
    assert (got.props["_SARNum"], got.props["_SARDen"]) == (1, 1)


@pytest.fixture
def trained_at_176x120(tmp_path) -> tuple[str, Mapping]:
    """A remaster bundle whose training LR was 176x120 on a 256x144 HR."""
    _, frames = smooth_clip(176, 120, 1)
    m = Mapping(176, 120, 256, 144, 1.4, 1.15, 4.8, 3.0)
    path = write_bundle(tmp_path / "176.stdo", [WDSR(Arch(2, 1, 4, 2))], np.zeros((1, 10, 11)), frames, patch=(16, 12))
    return remastered(path, m), m


@pytest.mark.parametrize("width, height", [(720, 480), (174, 120), (176, 120), (98, 62)])
def test_any_clip_size_gets_an_hr_size_its_subsampling_divides(trained_at_176x120, width, height):
    path, m = trained_at_176x120
    for fmt, multiple in ((vs.YUV420P8, (2, 2)), (vs.YUV422P10, (2, 1)), (vs.RGB24, (1, 1))):
        clip = core.std.BlankClip(format=fmt, width=width, height=height, length=1, color=[60, 90, 200])
        out = core.stdo.Upscale(clip, path, route="chunk:0", device="cpu")
        want = m.for_size(width, height, multiple)
        assert (out.width, out.height, out.format.id) == (want.hr_width, want.hr_height, fmt)
        assert out.width % multiple[0] == 0 and out.height % multiple[1] == 0
        assert out.get_frame(0).width == want.hr_width  # renders: zimg took the size


def test_a_whole_mapping_plays_exactly_as_no_mapping_and_keeps_the_sar(tmp_path):
    """A whole-scale bundle keeps the clip's sample aspect ratio (both sides grow alike) and gets no geometry
    step, with or without a (plain) mapping in its manifest."""
    clip, frames = smooth_clip(96, 64)
    plain = write_bundle(tmp_path / "p.stdo", [WDSR(Arch(2, 1, 4, 2))], np.zeros((2, 6, 6)), frames, patch=(16, 12))
    mapped = remastered(write_bundle(tmp_path / "m.stdo", [WDSR(Arch(2, 1, 4, 2))], np.zeros((2, 6, 6)), frames,
                                     patch=(16, 12)), Mapping.plain(96, 64, 192, 128))
    yuv = core.resize.Bicubic(clip, format=vs.YUV420P8, matrix_s="709").std.SetFrameProps(_SARNum=32, _SARDen=27)
    a, b = (core.stdo.Upscale(yuv, str(p), device="cpu").get_frame(1) for p in (plain, mapped))
    assert (a.width, a.height) == (192, 128) and (a.props["_SARNum"], a.props["_SARDen"]) == (32, 27)
    assert dict(a.props) == dict(b.props)
    assert all(np.array_equal(np.asarray(a[p]), np.asarray(b[p])) for p in range(3))


def test_hr_grid_false_leaves_a_remaster_bundle_on_the_models_grid(remaster_bundle):
    path, m, clip = remaster_bundle
    yuv = core.resize.Bicubic(clip, format=vs.YUV444P16, matrix_s="709")
    out = upscaled(yuv, path, UpscaleOptions(device="cpu"), hr_grid=False)
    assert (out.width, out.height, out.format.id) == (192, 128, vs.YUV444P16)
    assert psnr(core.resize.Point(out, format=vs.RGBS), core.resize.Bicubic(clip, 192, 128, **CATROM),
                (8, 8, 184, 120)) > 40


# a letterboxed LR (10-row bars) on an HR pillarboxed by 16-column bars: bars on both sides
BARRED = Mapping(96, 44, 112, 80, 1.15, 1.8, 1.3, 0.6).framed((0, 0, 10, 10), (16, 16, 0, 0))


@pytest.fixture
def barred_bundle(tmp_path) -> tuple[str, vs.VideoNode]:
    """A remaster bundle with bars on both sides, and a clip whose LR bars hold bright noise (which must not
    reach the output)."""
    clip, frames = smooth_clip(96, 64)
    path = write_bundle(tmp_path / "bars.stdo", [WDSR(Arch(2, 1, 4, 2))], np.zeros((2, 6, 6)), frames, patch=(16, 12))
    loud = core.std.BlankClip(clip, color=[1.0, 0.9, 1.0])
    bars = core.std.StackVertical([loud.std.Crop(bottom=54), clip.std.Crop(top=10, bottom=10), loud.std.Crop(top=54)])
    return remastered(path, BARRED), bars


def test_bars_play_as_training_resamples_cut_resized_and_black(barred_bundle):
    """Upscale with bars gives what the training's resampler (`frame_matrices`) gives from the models' own
    output: the LR picture alone put on the HR picture, black HR bars; the LR's loud bars never leak in."""
    path, clip = barred_bundle
    up = core.stdo.Upscale(clip, path, device="cpu")
    assert (up.width, up.height) == (144, 80) and up.get_frame(0).props["_SARNum"] == 1
    own = upscaled(clip, path, UpscaleOptions(device="cpu"), hr_grid=False)  # the models' s-grid output
    f = own.get_frame(1)
    expected = resample(torch.from_numpy(np.stack([np.asarray(f[p]) for p in range(3)])),
                        *frame_matrices(BARRED, 2)).numpy()
    got = up.get_frame(1)
    out = np.stack([np.asarray(got[p]) for p in range(3)])
    assert np.abs(out - expected).max() < 1e-4
    assert np.abs(out[:, :, :16]).max() == 0 and np.abs(out[:, :, -16:]).max() == 0  # the HR's bars, black
    x0, y0, x1, y1 = BARRED.overlap()
    assert psnr(up, through(clip.std.Crop(top=10, bottom=10), BARRED.inner().framed((0, 0, 0, 0), (16, 16, 0, 0))),
                (x0 + 8, y0 + 8, x1 - 8, y1 - 8)) > 40


@pytest.mark.parametrize("fmt,black", [(vs.YUV420P8, [16, 128, 128]), (vs.YUV444P16, [4096, 32768, 32768]),
                                       (vs.RGB24, [0, 0, 0])])
def test_bars_are_black_in_the_clips_format(barred_bundle, fmt, black):
    path, clip = barred_bundle
    c = core.resize.Bicubic(clip, format=fmt, matrix_s="709" if fmt != vs.RGB24 else None)
    out = core.stdo.Upscale(c, path, device="cpu")
    assert (out.width, out.height, out.format.id) == (144, 80, fmt)
    f = out.get_frame(0)
    sub = f.format.subsampling_w
    for p, level in enumerate(black):
        plane = np.asarray(f[p])
        assert (plane[:, :16 >> (sub if p else 0)] == level).all(), (p, plane[:, :4])


def test_a_luma_bundle_with_bars_plays(tmp_path):
    clip, frames = smooth_clip(96, 64)
    path = remastered(write_bundle(tmp_path / "yb.stdo", [WDSR(Arch(2, 1, 4, 2, planes=1))], np.zeros((2, 6, 6)),
                                   [f[:1] for f in frames], patch=(16, 12)), BARRED)
    yuv = core.resize.Bicubic(clip, format=vs.YUV420P16, matrix_s="709")
    out = core.stdo.Upscale(yuv, path, device="cpu")
    assert (out.width, out.height, out.format.id) == (144, 80, vs.YUV420P16)
    f = out.get_frame(1)
    assert (np.asarray(f[0])[:, :16] == 4096).all() and (np.asarray(f[1])[:, :8] == 32768).all()
