"""The filter on a remaster bundle (one with a mapping): the real plugin returns the HR geometry, and a fresh
model (bicubic) put through the mapping lands where VapourSynth's own resize through the same mapping does.
Hand-built bundles: nothing is trained."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import vapoursynth as vs

from tests.support.bundles import write_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.mapping import Mapping
from vs_stdo.core.models import WDSR, Arch
from vs_stdo.core.video import KERNELS

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
    name, params = KERNELS["bicubic"]
    return getattr(core.resize, name)(clip, m.hr_width, m.hr_height, src_left=-m.offset_x / m.ratio_x,
                                      src_top=-m.offset_y / m.ratio_y, src_width=m.hr_width / m.ratio_x,
                                      src_height=m.hr_height / m.ratio_y, **params)


def psnr(a: vs.VideoNode, b: vs.VideoNode, box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    fa, fb = a.get_frame(1), b.get_frame(1)
    d = np.stack([np.asarray(fa[p]) - np.asarray(fb[p]) for p in range(3)])[:, y0:y1, x0:x1]
    return float(10 * np.log10(1 / np.mean(d ** 2)))


@pytest.fixture
def remaster_bundle(tmp_path) -> tuple[str, Mapping, vs.VideoNode]:
    clip, frames = smooth_clip(96, 64)
    path = write_bundle(tmp_path / "b.stdo", [WDSR(Arch(2, 1, 4, 2))], np.zeros((2, 6, 6)), frames, patch=(16, 12))
    b = bundle_io.load(path)
    b.mapping = Mapping(96, 64, 176, 120, 1.8, 1.85, 3.3, -0.6)  # a DVD-like framing: 1.8 x 1.85, shifted
    bundle_io.save(b, path)
    return str(path), b.mapping, clip


def test_upscale_returns_the_hr_geometry_through_the_mapping(remaster_bundle):
    path, m, clip = remaster_bundle
    up = core.stdo.Upscale(clip, path, device="cpu")
    assert (up.width, up.height) == (176, 120)
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


def test_a_luma_bundle_with_a_mapping_is_refused(tmp_path):
    clip, frames = smooth_clip(96, 64)
    gray = [f[:1] for f in frames]
    path = write_bundle(tmp_path / "y.stdo", [WDSR(Arch(2, 1, 4, 2, planes=1))], np.zeros((2, 6, 6)), gray,
                        patch=(16, 12))
    b = bundle_io.load(path)
    b.mapping = Mapping(96, 64, 176, 120, 1.8, 1.85, 3.3, -0.6)
    bundle_io.save(b, path)
    with pytest.raises(vs.Error, match="luma bundle with a mapping"):
        core.stdo.Upscale(core.resize.Bicubic(clip, format=vs.GRAYS, matrix=1), str(path), device="cpu")
