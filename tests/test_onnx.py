"""`stdo export-onnx`: the exported chunk models run in vs-mlrt's `core.ort.Model` like in torch."""
from __future__ import annotations

import numpy as np
import torch
import vapoursynth as vs

from vs_stdo.onnx_export import export
from vs_stdo.video import frame_array

from .conftest import random_model, write_bundle


def test_exported_models_match_torch_in_vs_mlrt(pair, tmp_path):
    _, lr = pair
    lr = lr.std.Crop(right=lr.width - 72, bottom=lr.height - 40)
    frame = torch.from_numpy(frame_array(lr.get_frame(0)))
    models = [random_model(4, seed) for seed in (1, 2)]
    path = write_bundle(tmp_path / "two.stdo", models, np.array([[[0, 1, 1], [1, 0, 0], [0, 0, 1], [1, 1, 0]]]),
                        [frame], patch=(24, 10))
    files = export(path, tmp_path / "onnx")
    assert [f.name for f in files] == ["chunk0.onnx", "chunk1.onnx"]
    for model, f in zip(models, files):
        got = frame_array(vs.core.ort.Model(lr, str(f)).get_frame(0))
        with torch.no_grad():
            want = model(frame[None])[0].numpy()
        assert got.shape == want.shape == (3, 160, 288)
        np.testing.assert_allclose(got, want, atol=1e-4)
