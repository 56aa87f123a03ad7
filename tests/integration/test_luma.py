"""Luma-only bundles: one-plane models in the bundle, `stdo train --planes luma`, and stdo.Upscale
on GRAY (any depth) and YUV (Y through the models, chroma a kernel resize sited as the clip says), RGB refused.
Real cores, real clips, a real training run and real vspipe."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs
from vsutil import get_y, plane

from scripts.encode import vspipe_exe
from tests.support.bundles import micro, rebuild, write_bundle
from vs_stdo.cli import main
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.models import WDSR, Arch
from vs_stdo.core.video import run_script

core = vs.core
KERNEL = {"filter_param_a": 0, "filter_param_b": 0.5}   # Catmull-Rom: the filter's chroma kernel


def luma_model(offset: float) -> WDSR:
    """x2 luma model whose output is bicubic + offset."""
    m = WDSR(Arch(scale=2, blocks=1, channels=4, expansion=1, planes=1))
    with torch.no_grad():
        m.skip.bias.fill_(offset)
    return m


@pytest.fixture(scope="module")
def luma_bundle(tmp_path_factory) -> Path:
    return write_bundle(tmp_path_factory.mktemp("luma") / "y.stdo", [luma_model(0.05)], np.zeros((1, 4, 4), np.uint8),
                        [torch.full((1, 48, 64), 0.5)])


@pytest.fixture(scope="module")
def yuv(pair) -> vs.VideoNode:
    """Two textured frames of the real clip's LR as YUV420P10 (BT.709)."""
    return pair[1][:2].resize.Bicubic(format=vs.YUV420P10, matrix_s="709")


def test_one_plane_arch_round_trips_and_old_manifests_are_rgb(tmp_path):
    models = [luma_model(0.0), luma_model(0.1)]
    path = write_bundle(tmp_path / "y2.stdo", models, np.zeros((1, 4, 4), np.uint8), [torch.full((1, 48, 64), 0.5)])
    b = bundle_io.load(path)
    assert b.planes == 1 and [a.planes for a in b.archs] == [1, 1]
    assert [m["planes"] for m in bundle_io.read_manifest(path.read_bytes())["models"]] == [1, 1]
    assert all(torch.equal(b.weights[1][n], t) for n, t in models[1].state_dict().items())
    assert b.build_models()[0](torch.rand(1, 1, 12, 16)).shape == (1, 1, 24, 32)
    old = {"name": "wdsr", "scale": 2, "blocks": 1, "channels": 4, "expansion": 1}
    assert Arch.from_dict(old).planes == 3
    with pytest.raises(ValueError, match="model field planes: invalid value 2"):
        Arch.from_dict(old | {"planes": 2})
    with pytest.raises(ValueError, match="would not load: .*model 1 has 3 plane.*model 0 has 1"):
        write_bundle(tmp_path / "mixed.stdo", [luma_model(0.0), micro(2)], np.zeros((1, 4, 4), np.uint8),
                     [torch.full((3, 48, 64), 0.5)])
    mixed = rebuild(path.read_bytes(), lambda m: m["models"][1].update(planes=3))
    with pytest.raises(bundle_io.BundleError, match="model 1 has 3 plane.*model 0 has 1"):
        bundle_io.from_bytes(mixed)


def test_yuv_luma_goes_through_the_model_and_chroma_is_a_kernel_resize_sited_as_the_clip_says(luma_bundle, yuv):
    chroma = {}
    for loc in (vs.CHROMA_LEFT, vs.CHROMA_TOP_LEFT):
        clip = yuv.std.SetFrameProps(_ChromaLocation=int(loc))
        out = core.stdo.Upscale(clip, str(luma_bundle))
        assert (out.format.id, out.width, out.height) == (vs.YUV420P10, 2 * clip.width, 2 * clip.height)
        got, want = out.get_frame(1), clip.resize.Bicubic(out.width, out.height, **KERNEL).get_frame(1)
        assert got.props["_ChromaLocation"] == loc and got.props["_Matrix"] == 1 and got.props["STDORoute"]
        for p in (1, 2):
            assert np.array_equal(np.asarray(got[p]), np.asarray(want[p])), f"chroma plane {p}, location {loc}"
        chroma[loc] = np.asarray(got[1]).copy()
        y = np.asarray(got[0], dtype=np.float64)
        assert 0.04 < (y - np.asarray(want[0])).mean() / 876 < 0.06      # the model's +0.05 on Y, not a kernel
        alone = core.stdo.Upscale(get_y(clip), str(luma_bundle))        # GRAY10: the same Y
        assert np.array_equal(np.asarray(plane(out, 0).get_frame(1)[0]), np.asarray(alone.get_frame(1)[0]))
    assert not np.array_equal(chroma[vs.CHROMA_LEFT], chroma[vs.CHROMA_TOP_LEFT])   # siting is honoured


def test_gray_of_any_depth_and_rgb_is_a_clear_error(luma_bundle, yuv, pair):
    reference = np.asarray(core.stdo.Upscale(get_y(yuv).resize.Point(format=vs.GRAYS), str(luma_bundle))
                           .get_frame(0)[0])
    for fmt, tolerance in ((vs.GRAY8, 1 / 255), (vs.GRAY16, 1 / 65535), (vs.GRAYH, 1e-3), (vs.GRAYS, 0)):
        clip = get_y(yuv).resize.Point(format=fmt)
        out = core.stdo.Upscale(clip, str(luma_bundle))
        assert (out.format.id, out.width, out.height) == (fmt, 2 * yuv.width, 2 * yuv.height)
        back = np.asarray(out.resize.Point(format=vs.GRAYS).get_frame(0)[0])
        assert np.abs(back - reference).max() <= tolerance + 2 / 1023, fmt   # plus the 10-bit source's rounding
    with pytest.raises(vs.Error, match=r"luma only.*the clip is RGB: convert it to YUV first"):
        core.stdo.Upscale(pair[1], str(luma_bundle))


@pytest.mark.slow
def test_stdo_train_planes_luma_upscales_yuv420p10_and_grays_through_vspipe(bikes, tmp_path):
    out = tmp_path / "luma.stdo"
    assert main(["train", str(bikes), "-o", str(out), "--planes", "luma", "--frames", "0:6", "--chunks", "2",
                 "--steps", "30", "--scale", "4", "--patch", "32x34", "--batch", "8", "--device", "cpu"]) == 0
    b = bundle_io.load(out)
    assert b.planes == 1 and b.training.planes == "luma" and b.router is not None and b.colour is not None
    raw = {"YUV420P10": 640 * 272 * 2 * 3 // 2, "GRAYS": 640 * 272 * 4}
    for fmt, frame_bytes in raw.items():
        vpy = tmp_path / f"{fmt}.vpy"
        vpy.write_text(
            "import vapoursynth as vs\nfrom vs_stdo.core import colour\nfrom vs_stdo.core.bundle import load\n"
            "from vs_stdo.core.video import hr_lr_pair, open_clip, select_frames\n"
            f"c = load({str(out)!r}).colour\n"
            f"lr = hr_lr_pair(select_frames(open_clip({str(bikes)!r}), '0:6'), 4, pair_colour=c)[1]\n"
            f"clip = colour.luma_of(lr, c) if {fmt!r} == 'GRAYS' else lr.resize.Bicubic(format=vs.{fmt}, matrix=c.matrix)\n"
            f"vs.core.stdo.Upscale(clip, {str(out)!r}, route='labels').set_output()\n")
        info = subprocess.run([vspipe_exe(), "--info", str(vpy)], capture_output=True, text=True, check=True).stdout
        assert {"Width: 640", "Height: 272", "Frames: 6", f"Format Name: {vs.core.get_video_format(getattr(vs, fmt)).name}"
                } <= set(info.splitlines()), info
        piped = subprocess.run([vspipe_exe(), str(vpy), "-"], capture_output=True, check=True).stdout
        assert len(piped) == 6 * frame_bytes
        frames = list(run_script(vpy).frames())
        assert [(f.props["STDORoute"], f.props["STDOFrame"]) for f in frames] == [("labels", n) for n in range(6)]
        if fmt == "YUV420P10":
            assert {(f.props["_Matrix"], f.props["_Range"]) for f in frames} == {(b.colour.matrix, vs.RANGE_LIMITED)}


@pytest.mark.parametrize("fmt", [vs.YUV420P10, vs.YUV444P8, vs.GRAY16])
def test_upscale_is_the_luma_upscaled_alone_and_put_back_by_the_colour_functions(luma_bundle, yuv, fmt):
    """What the trainer and `stdo eval` use (colour.to_luma / from_luma) composes to exactly what the plugin
    plays: the clip's Y as GRAYS through Upscale, then put back beside the clip's own chroma."""
    from vs_stdo.core import colour

    clip = yuv.resize.Bicubic(format=fmt, matrix_s="709")
    f = colour.Format.of(clip.format)
    c = colour.colour_of(f, clip.width, clip.height, colour.first_props(clip))
    ours = colour.from_luma(core.stdo.Upscale(colour.to_luma(clip, c), str(luma_bundle)), clip, c)
    theirs = core.stdo.Upscale(clip, str(luma_bundle))
    assert ours.format.id == theirs.format.id == fmt
    for n in range(clip.num_frames):
        a, b = ours.get_frame(n), theirs.get_frame(n)
        assert all(np.array_equal(np.asarray(a[p]), np.asarray(b[p])) for p in range(a.format.num_planes))
