"""Where a run's first model starts (`stdo train --init`): the shipped generic models, a bundle's model, none."""
from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vs_stdo.cli import main
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.metrics import psnr
from vs_stdo.core.models import SCALES, from_plain, preset
from vs_stdo.core.video import frame_array, hr_lr_pair, open_clip
from vs_stdo.train import generic

TINY = ["--batch", "8", "--patch", "32x34", "--checkpoint-every", "1000"]


@pytest.mark.parametrize("scale", SCALES)
def test_a_generic_model_is_shipped_for_every_scale_and_upscales_a_photo_it_never_saw(scale):
    """A starting point learned from photos: it beats bicubic on a public-domain photo left out of its training
    (on soft video it may not: it sharpens like a photo; docs/training.md)."""
    arch = preset(generic.PRESET, scale)
    weights, source = generic.start("auto", arch)
    assert weights is not None and source == generic.file_name(generic.PRESET, scale)
    hr, lr = hr_lr_pair(open_clip(resources.files("skimage") / "data" / "coins.png"), scale)
    x = torch.from_numpy(frame_array(lr.get_frame(0)))[None]
    y = torch.from_numpy(frame_array(hr.get_frame(0)))[None]
    with torch.no_grad():
        model = from_plain(arch, weights).eval()(x).clamp(0, 1)
    bicubic = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
    assert psnr(model, y) > psnr(bicubic, y) + 0.3


def test_no_generic_model_where_none_is_shipped():
    assert generic.start("auto", preset("paper", 4)) == (None, "none (no generic model for this preset, scale and planes)")
    assert generic.start("none", preset("tiny", 4)) == (None, "none")


@pytest.mark.slow
@pytest.mark.train
@pytest.mark.parametrize("init", ["auto", "none", "bundle"])
def test_a_run_starts_from_the_model_init_names(init, bikes, tiny_bundle, tmp_path, capsys):
    """With a learning rate of 1e-12 training moves nothing that float16 storage keeps: the bundle holds the model it
    started from."""
    out = tmp_path / "x.stdo"
    name = str(tiny_bundle) if init == "bundle" else init
    assert main(["train", str(bikes), "--frames", "0:2", "--mode", "single", "--steps", "2", "--learning-rate", "1e-12",
                 "--init", name, "-o", str(out), *TINY]) == 0
    b = bundle_io.load(out)
    if init == "none":
        expected = {k: v for k, v in b.weights[0].items() if k.startswith(("tail", "skip"))}
        assert all(not v.any() for v in expected.values())  # bicubic: the residual is zero
    else:
        start = bundle_io.load(tiny_bundle if init == "bundle" else generic.shipped(b.archs[0]))
        kept = 0 if init == "auto" else int(torch.bincount(torch.from_numpy(start.labels.ravel()).long()).argmax())
        for k, v in b.weights[0].items():
            torch.testing.assert_close(v, start.weights[kept][k], rtol=2e-3, atol=2e-4)  # float16 storage
    assert b.training.started_from in capsys.readouterr().err
    assert main(["info", str(out)]) == 0
    assert f"started from {b.training.started_from}" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.train
def test_an_init_bundle_of_another_architecture_is_refused(bikes, tiny_bundle, tmp_path, capsys):
    out = tmp_path / "x.stdo"
    assert main(["train", str(bikes), "--frames", "0:2", "--scale", "2", "--init", str(tiny_bundle),
                 "-o", str(out), *TINY]) == 1
    assert "has no model of the run's architecture" in capsys.readouterr().err
    assert main(["train", str(bikes), "--frames", "0:2", "--init", str(tmp_path / "no.stdo"), "-o", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.train
def test_the_generic_models_are_trained_by_their_script(tmp_path):
    root = Path(__file__).parents[2]
    subprocess.run([sys.executable, "scripts/tools/train_generic.py", "--scales", "3", "--steps", "3", "--out",
                    str(tmp_path)], cwd=root, check=True, capture_output=True)
    b = bundle_io.load(tmp_path / generic.file_name(generic.PRESET, 3))
    assert b.archs == [preset(generic.PRESET, 3)] and b.clip.source.startswith("scikit-image")
