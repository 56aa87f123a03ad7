"""STDOScaler: a bundle as a vs-jetpack scaler, run by vskernels' own API and inside vsscale.Rescale."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import vapoursynth as vs

import vs_stdo
from vs_stdo.core.metrics import mse_to_psnr

core = vs.core


def test_missing_vsjetpack_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "vskernels", None)      # what Python does for a package that is not there
    monkeypatch.delitem(sys.modules, "vs_stdo.filter.jetpack", raising=False)
    with pytest.raises(ImportError, match=r"pip install vs-stdo\[jetpack\]"):
        vs_stdo.STDOScaler


@pytest.mark.slow
def test_import_vs_stdo_does_not_import_vsjetpack():
    code = "import sys, vs_stdo; assert not {'vskernels', 'vs_stdo.filter.jetpack'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def vskernels():
    """The real vs-jetpack; the tests below are skipped without it (the two above run either way)."""
    return pytest.importorskip("vskernels", reason="vsjetpack is not installed: pip install vs-stdo[jetpack]")


def planes(clip: vs.VideoNode, n: int = 0) -> list[np.ndarray]:
    frame = clip.get_frame(n)
    return [np.asarray(frame[p]).astype(np.float64) for p in range(frame.format.num_planes)]


@pytest.fixture(scope="module")
def lr(pair) -> vs.VideoNode:
    """One real LR frame (320x180 RGBS) of the tiny bundle's training clip."""
    return pair[1][0]


@pytest.fixture(scope="module")
def scaler(vskernels, tiny_bundle):
    return vs_stdo.STDOScaler(tiny_bundle, device="cpu")


@pytest.mark.train
@pytest.mark.slow
def test_model_scale_is_exactly_upscale(vskernels, scaler, tiny_bundle, lr):
    assert isinstance(scaler, vskernels.Scaler) and scaler.kernel_radius > 0
    out = scaler.scale(lr, lr.width * 4, lr.height * 4)
    ref = core.stdo.Upscale(lr, str(tiny_bundle), device="cpu")
    assert (out.width, out.height, out.format.id) == (ref.width, ref.height, lr.format.id)
    for a, b in zip(planes(out), planes(ref)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.train
@pytest.mark.slow
def test_shift_is_counted_in_input_pixels(scaler, tiny_bundle, lr):
    """A shift of one input pixel moves the x4 output by exactly four of its pixels."""
    out = scaler.scale(lr, lr.width * 4, lr.height * 4, shift=(0, 1))
    ref = core.stdo.Upscale(lr, str(tiny_bundle), device="cpu")
    for a, b in zip(planes(out), planes(ref)):
        np.testing.assert_allclose(a[:, :-8], b[:, 4:-4], atol=1e-5)


@pytest.mark.train
@pytest.mark.slow
def test_any_size_and_shift_through_vskernels(vskernels, scaler, lr):
    """3.125x of a YUV420P8 clip with a fractional shift: right size and format, aligned as a kernel would be."""
    yuv = core.resize.Bicubic(lr, format=vs.YUV420P8, matrix_s="709")
    shift = (0.25, -1.5)
    out = scaler.scale(yuv, 1000, 562, shift=shift)
    assert (out.width, out.height, out.format.id) == (1000, 562, vs.YUV420P8)
    y = planes(out)[0]
    catrom = vskernels.Catrom()
    aligned = planes(catrom.scale(yuv, 1000, 562, shift=shift))[0]
    misaligned = planes(catrom.scale(yuv, 1000, 562, shift=(shift[0] / 4, shift[1] / 4)))[0]
    def psnr(a: np.ndarray) -> float:
        return mse_to_psnr(float(np.mean((y / 255 - a / 255) ** 2)))
    assert psnr(aligned) > psnr(misaligned) + 1


@pytest.mark.train
@pytest.mark.slow
@pytest.mark.skipif(not all(hasattr(core, ns) for ns in ("descale", "resize2")),
                    reason="vsscale.Rescale needs the descale and resize2 plugins: pip install vs-stdo[jetpack]")
def test_upscaler_of_vsscale_rescale(vskernels, scaler, tiny_bundle, pair):
    """Rescale descales a real 960x540 luma to 480x270, doubles it with the bundle (x4, then Catrom down to x2)
    and scales back; the doubled clip is the bundle's output taken to 960x540 by Catrom."""
    vsscale = pytest.importorskip("vsscale")
    y = core.resize.Bicubic(pair[0][0], 960, 540, format=vs.GRAYS, matrix_s="709")
    rescaled = vsscale.Rescale(y, 270, vskernels.Bilinear, upscaler=scaler)
    assert (rescaled.doubled.width, rescaled.doubled.height) == (960, 540)
    assert (rescaled.upscale.width, rescaled.upscale.height, rescaled.upscale.format.id) == (960, 540, vs.GRAYS)
    model = core.stdo.Upscale(rescaled.descale, str(tiny_bundle), device="cpu")
    expected = vskernels.Catrom().scale(model, 960, 540)
    np.testing.assert_allclose(planes(rescaled.doubled)[0], planes(expected)[0], atol=1e-6)
    bilinear = vsscale.Rescale(y, 270, vskernels.Bilinear, upscaler=vskernels.Bilinear)
    assert np.abs(planes(rescaled.upscale)[0] - planes(bilinear.upscale)[0]).max() > 1e-3
