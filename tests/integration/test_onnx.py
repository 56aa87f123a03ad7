"""`stdo export-onnx`: the exported chunk models run in vs-mlrt's `core.ort.Model` like in torch."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import vapoursynth as vs

from tests.support.bundles import random_model, write_bundle
from tests.support.cli import stdo
from vs_stdo.cli import main
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.mapping import Mapping
from vs_stdo.core.models import preset
from vs_stdo.core.video import frame_array
from vs_stdo.train.generic import shipped


def test_exported_models_match_torch_in_vs_mlrt(pair, tmp_path, capsys):
    _, lr = pair
    lr = lr.std.Crop(right=lr.width - 72, bottom=lr.height - 40)
    frame = torch.from_numpy(frame_array(lr.get_frame(0)))
    easy = random_model(preset("nano", 4), 3)                  # an adaptive bundle: chunk 1 is smaller
    models = [random_model(4, 1), easy]
    path = write_bundle(tmp_path / "two.stdo", models, np.array([[[0, 1, 1], [1, 0, 0], [0, 0, 1], [1, 1, 0]]]),
                        [frame], patch=(24, 10))
    assert main(["export-onnx", str(path), str(tmp_path / "onnx")]) == 0
    printed = capsys.readouterr().out
    assert "chunk0.onnx: chunk model wdsr 4x16x2" in printed and "chunk1.onnx: chunk model wdsr 1x8x2" in printed
    files = sorted((tmp_path / "onnx").glob("*.onnx"))
    assert [f.name for f in files] == ["chunk0.onnx", "chunk1.onnx"]
    for model, f in zip(models, files):
        got = frame_array(vs.core.ort.Model(lr, str(f)).get_frame(0))
        with torch.no_grad():
            want = model(frame[None])[0].numpy()
        assert got.shape == want.shape == (3, 160, 288)
        np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.slow
def test_export_onnx_is_quiet_on_success(tmp_path):
    r = stdo("export-onnx", shipped(preset("tiny", 4)), tmp_path / "onnx")
    assert r.returncode == 0 and r.stderr == "" and (tmp_path / "onnx" / "chunk0.onnx").is_file()


def test_export_of_a_missing_bundle_is_a_clear_error(tmp_path, capsys):
    assert main(["export-onnx", str(tmp_path / "missing.stdo"), str(tmp_path / "onnx")]) == 1
    assert "missing.stdo' does not exist" in capsys.readouterr().err
    assert not (tmp_path / "onnx").exists()


@pytest.mark.parametrize("mapping", [Mapping(72, 40, 128, 76, 1.7, 1.8, 3.3, 1.6),
                                     Mapping(72, 32, 100, 76, 1.4, 1.8, 3.3, 1.6).framed((0, 0, 4, 4), (14, 14, 0, 0))],
                         ids=["plain", "bars"])
def test_a_remaster_bundle_exports_its_geometry_and_the_resize_reproduces_upscale(pair, mapping, tmp_path, capsys):
    """geometry.json's crop, resize and borders put vs-mlrt's output of an exported model where `Upscale` puts the
    bundle's (away from the frame's edges, where ONNX pads convolutions with zeros and Upscale replicates the
    border; with bars, away from the pictures' edges too)."""
    _, lr = pair
    lr = lr.std.Crop(right=lr.width - 72, bottom=lr.height - 40)
    frame = torch.from_numpy(frame_array(lr.get_frame(0)))
    model = random_model(4, 1)
    path = write_bundle(tmp_path / "r.stdo", [model], np.zeros((1, 4, 3)), [frame], patch=(24, 10))
    b = bundle_io.load(path)
    b.mapping = mapping
    bundle_io.save(b, path)
    assert main(["export-onnx", str(path), str(tmp_path / "onnx")]) == 0
    assert "a remaster bundle" in capsys.readouterr().out
    geometry = json.loads((tmp_path / "onnx" / "geometry.json").read_text())
    assert Mapping.from_dict(geometry["mapping"]) == b.mapping
    assert geometry["resize"]["function"] == "resize.Bicubic"
    placed = vs.core.ort.Model(lr, str(tmp_path / "onnx" / "chunk0.onnx")).std.Limiter(0, 1)  # clamped first
    if mapping.has_bars():
        placed = placed.std.Crop(**geometry["crop"]["args"])
    placed = vs.core.resize.Bicubic(placed, **geometry["resize"]["args"])
    if mapping.has_bars():
        placed = placed.std.AddBorders(**geometry["add_borders"]["args"])
    want = frame_array(vs.core.stdo.Upscale(lr, str(path), route="chunk:0").get_frame(0))
    got = frame_array(placed.get_frame(0))
    assert got.shape == want.shape == (3, 76, mapping.hr_width)
    edge = int(2 * (model.arch.radius + 3))  # HR pixels whose LR footprint reaches a zero-padded border
    x0, y0, x1, y1 = mapping.hr_picture()
    inside = np.s_[:, y0 + edge:y1 - edge, x0 + edge:x1 - edge]
    np.testing.assert_allclose(np.clip(got, 0, 1)[inside], want[inside], atol=2e-3)
    if mapping.has_bars():
        assert np.abs(got[:, :, :x0]).max() == 0 == np.abs(want[:, :, :x0]).max()  # the HR's bars, black
