"""The foundation: plugin, bundle, training run, routing and stitching, vspipe | ffmpeg."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import vapoursynth as vs

import vs_stdo
from scripts.encode import encode
from tests.support.bundles import gray_clip, needs_bf16, offset_model, random_model, write_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.grid import Grid
from vs_stdo.core.video import frame_array, open_clip
from vs_stdo.train.chunks import OUTLIER_FLOOR, floor_for, label
from vs_stdo.train.data import load_frames
from vs_stdo.train.scoring import models_psnr
from vs_stdo.train.target import target_for

core = vs.core


def test_plugin_is_autoloaded_and_answers():
    assert hasattr(core, "stdo")
    assert core.stdo.Version() == vs_stdo.__version__
    assert "bundle:data" in core.stdo.Upscale.signature


@pytest.mark.slow
@pytest.mark.train
def test_tiny_training_run_writes_a_valid_bundle(tiny_bundle, pair):
    b = bundle_io.load(tiny_bundle)
    hr, lr = pair
    assert b.chunks == 2 and b.scale == 4
    assert b.labels.shape == (6, b.grid.rows, b.grid.cols)
    assert b.training.scorer == "shared"                    # scored by the model after pretraining
    chunk = label(b.psnr, b.thresholds)                        # the split the chunk models trained on
    assert b.training.stages["chunks"].patches == np.bincount(chunk.ravel(), minlength=2).tolist()
    error = 10 ** (-b.psnr.astype(np.float64) / 10)             # chunks of equal squared error
    assert abs(error[chunk == 0].sum() - error[chunk == 1].sum()) <= error.max()
    assert b.psnr[chunk == 0].max() <= b.psnr[chunk == 1].min()  # chunk 0 is the hardest
    each = models_psnr(b, load_frames(hr, lr), target_for(b.mapping, b.scale, b.grid, 0), torch.device("cpu"))
    assert np.array_equal(b.labels, each.argmax(0))            # every patch routes to its best model
    assert any(t.abs().sum() > 0 for t in b.weights[0].values() if t.ndim == 4)


@pytest.mark.slow
@pytest.mark.train
def test_cli_train_and_info(clip_path, tmp_path):
    out = tmp_path / "cli.stdo"
    stdo = [sys.executable, "-m", "vs_stdo.cli"]
    r = subprocess.run([*stdo, "train", str(clip_path), "-o", str(out), "--frames", "0:3", "--steps", "8",
                        "--chunks", "2", "--scale", "4", "--device", "cpu"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    info = subprocess.run([*stdo, "info", str(out)], capture_output=True, text=True)
    assert info.returncode == 0 and "2 chunk model(s)" in info.stdout and "x4" in info.stdout
    training = json.loads(subprocess.run([*stdo, "info", str(out), "--json"], capture_output=True,
                                         text=True).stdout)["training"]
    sizes = training["stages"]["chunks"]["patches"]
    assert f"hardest first): {sizes[0]} ({sizes[0] / sum(sizes):.1%}), {sizes[1]} (" in info.stdout
    assert f"split by error: chunks of {sizes[0]}, {sizes[1]} training patches" in r.stderr  # the run says it too
    floor = floor_for(bundle_io.load(out).psnr, 2, "error", "auto")  # --min-chunk auto's choice, recorded
    assert training["min_chunk"] == "auto" and training["floor"] == floor
    assert ("each at least 0.25 of an equal share" in info.stdout) == (floor == OUTLIER_FLOOR)
    bad = subprocess.run([*stdo, "train", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "new.stdo")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "does not exist" in bad.stderr


@pytest.mark.slow
@pytest.mark.train
@pytest.mark.parametrize("fmt", [vs.RGBS, vs.RGB24, vs.YUV420P8])
def test_upscale_size_format_and_props(tiny_bundle, pair, fmt):
    hr, lr = pair
    matrix = {"matrix_s": "709"} if fmt == vs.YUV420P8 else {}
    clip = lr if fmt == vs.RGBS else lr.resize.Bicubic(format=fmt, **matrix)
    clip = clip.std.SetFrameProps(Custom=7, _SARNum=4, _SARDen=3)
    out = core.stdo.Upscale(clip, str(tiny_bundle))
    assert (out.width, out.height, out.format.id, out.num_frames) == (hr.width, hr.height, fmt, lr.num_frames)
    props = out.get_frame(2).props
    assert props["Custom"] == 7 and (props["_SARNum"], props["_SARDen"]) == (4, 3)


@pytest.mark.slow
@pytest.mark.train
def test_upscale_beats_bicubic_on_training_frames(tiny_bundle, pair):
    hr, lr = pair
    out = core.stdo.Upscale(lr, str(tiny_bundle))
    bic = lr.resize.Bicubic(hr.width, hr.height, filter_param_a=0, filter_param_b=0.75)
    h = torch.from_numpy(frame_array(hr.get_frame(1)))
    o = torch.from_numpy(frame_array(out.get_frame(1)))
    b = torch.from_numpy(frame_array(bic.get_frame(1))).clamp(0, 1)
    assert torch.mean((o - h) ** 2) < torch.mean((b - h) ** 2)


@pytest.mark.slow
@pytest.mark.train
def test_python_api_matches_plugin(tiny_bundle, pair):
    _, lr = pair
    a = frame_array(vs_stdo.upscale(lr, tiny_bundle).get_frame(0))
    b = frame_array(core.stdo.Upscale(lr, str(tiny_bundle)).get_frame(0))
    assert np.array_equal(a, b)


def test_routing_sends_each_patch_to_its_labelled_model(tmp_path):
    w, h, scale = 64, 36, 2
    values = [0.3, 0.5, 0.7]
    offsets = [-0.1, 0.0, 0.1]
    grid = Grid(w, h, 16, 12)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(3, grid.rows, grid.cols))
    frames = [torch.full((3, h, w), v) for v in values]
    path = write_bundle(tmp_path / "k3.stdo", [offset_model(scale, o) for o in offsets], labels, frames)
    out = core.stdo.Upscale(gray_clip(values, w, h), str(path), route="labels")
    for n, v in enumerate(values):
        got = frame_array(out.get_frame(n))
        expected = np.empty_like(got)
        for (y, x, ph, pw), chunk in zip(grid.hr_boxes(scale), labels[n].ravel()):
            expected[:, y:y + ph, x:x + pw] = v + offsets[chunk]
        np.testing.assert_allclose(got, expected, atol=1e-5)


def one_model_and_whole_frame(pair, tmp_path):
    """A 100x70 LR frame (ragged last row/column), a bundle of one random model, and that model's
    whole-frame output (the reference stitched output must match)."""
    _, lr = pair
    lr = lr.std.Crop(right=lr.width - 100, bottom=lr.height - 70)
    frame = torch.from_numpy(frame_array(lr.get_frame(0)))
    model = random_model(4)
    path = write_bundle(tmp_path / "one.stdo", [model], np.zeros((1, 6, 7), np.uint8), [frame])
    pad = model.arch.radius
    with torch.no_grad():
        whole = model(F.pad(frame[None], (pad,) * 4, mode="replicate"))[0]
    return lr, path, whole[:, pad * 4:-pad * 4, pad * 4:-pad * 4].clamp(0, 1)


def test_stitching_equals_whole_frame_inference(pair, tmp_path):
    lr, path, whole = one_model_and_whole_frame(pair, tmp_path)
    got = frame_array(core.stdo.Upscale(lr, str(path), route="chunk:0", bf16=0).get_frame(0))
    np.testing.assert_allclose(got, whole.numpy(), atol=2e-5)
    seams = frame_array(core.stdo.Upscale(lr, str(path), route="chunk:0", pad=0).get_frame(0))
    assert np.abs(seams - whole.numpy()).max() > 1e-3      # without context, patch borders differ


@needs_bf16
def test_bf16_stitching_is_close_to_whole_frame_inference(pair, tmp_path):
    lr, path, whole = one_model_and_whole_frame(pair, tmp_path)
    fast = frame_array(core.stdo.Upscale(lr, str(path), route="chunk:0", bf16=1).get_frame(0))
    err = np.abs(fast - whole.numpy())
    assert err.max() > 0 and err.mean() < 1e-3                               # bf16: close, not equal


@pytest.mark.slow
@pytest.mark.train
@pytest.mark.vspipe
def test_vspipe_ffmpeg_encode_of_a_vpy(tiny_bundle, clip_path, tmp_path):
    vpy = tmp_path / "enc.vpy"
    vpy.write_text(
        "import vapoursynth as vs\n"
        "from vs_stdo.core.video import hr_lr_pair, open_clip, select_frames\n"
        f"hr, lr = hr_lr_pair(select_frames(open_clip({str(clip_path)!r}), '0:6'), 4)\n"
        "lr = lr.resize.Bicubic(format=vs.YUV420P10, matrix_s='709')\n"
        f"vs.core.stdo.Upscale(lr, {str(tiny_bundle)!r}).set_output()\n")
    mkv = tmp_path / "enc.mkv"
    encode(vpy, mkv, ["-c:v", "ffv1"])
    got = open_clip(mkv)
    assert (got.width, got.height, got.num_frames) == (1280, 720, 6)
    assert got.format.id == vs.YUV420P10


@pytest.mark.slow
@pytest.mark.train
def test_bad_bundle_and_arguments_raise_vs_errors(tiny_bundle, pair, tmp_path):
    _, lr = pair
    junk = tmp_path / "junk.stdo"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(vs.Error, match="not valid JSON"):
        core.stdo.Upscale(lr, str(junk))
    with pytest.raises(vs.Error, match="does not exist"):
        core.stdo.Upscale(lr, str(tmp_path / "none.stdo"))
    with pytest.raises(vs.Error, match="unknown route"):
        core.stdo.Upscale(lr, str(tiny_bundle), route="nearest")
    with pytest.raises(vs.Error, match="CUDA is not available|device"):
        core.stdo.Upscale(lr, str(tiny_bundle), device="cuda:7")
