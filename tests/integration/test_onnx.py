"""`stdo export-onnx`: the exported chunk models run in vs-mlrt's `core.ort.Model` like in torch."""
from __future__ import annotations

import numpy as np
import torch
import vapoursynth as vs

from tests.support.bundles import random_model, write_bundle
from vs_stdo.cli import main
from vs_stdo.core.models import preset
from vs_stdo.core.video import frame_array


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
    files = sorted((tmp_path / "onnx").iterdir())
    assert [f.name for f in files] == ["chunk0.onnx", "chunk1.onnx"]
    for model, f in zip(models, files):
        got = frame_array(vs.core.ort.Model(lr, str(f)).get_frame(0))
        with torch.no_grad():
            want = model(frame[None])[0].numpy()
        assert got.shape == want.shape == (3, 160, 288)
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_export_of_a_missing_bundle_is_a_clear_error(tmp_path, capsys):
    assert main(["export-onnx", str(tmp_path / "missing.stdo"), str(tmp_path / "onnx")]) == 1
    assert "missing.stdo' does not exist" in capsys.readouterr().err
    assert not (tmp_path / "onnx").exists()
