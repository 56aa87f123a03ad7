"""Held-out scenes scale each model's residual to fit them: a model whose residual is twice the right one is
halved, one whose residual points the wrong way becomes bicubic, and the gains say so; and they choose between
the chunk models and the shared model. Hand-built models whose
residual is known (the skip convolution alone), frames made by a "true" model, the real training target."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.support.bundles import write_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.fingerprint import fingerprint
from vs_stdo.core.grid import Grid
from vs_stdo.core.models import WDSR, Arch
from vs_stdo.core.router_state import RouterState
from vs_stdo.train.data import Frames
from vs_stdo.train.scoring import model_upscaler
from vs_stdo.train.target import WholeScale
from vs_stdo.train.validation import damp, settle

ARCH = Arch(2, 1, 4, 2)


def skip_model(skip: torch.Tensor) -> WDSR:
    """A model whose residual is its skip convolution of the LR (the tail stays zero)."""
    m = WDSR(ARCH).eval()
    with torch.no_grad():
        m.skip.weight.copy_(skip)
    return m


@pytest.fixture(scope="module")
def truth() -> tuple[torch.Tensor, Frames]:
    """A random skip kernel and frames whose HR is what a model with it makes of smooth LR frames."""
    g = torch.Generator().manual_seed(3)
    skip = torch.randn(WDSR(ARCH).skip.weight.shape, generator=g) * 0.02
    lr = torch.nn.functional.avg_pool2d(torch.rand(3, 3, 36, 48, generator=g), 3, 1, 1, count_include_pad=False)
    upscale = model_upscaler(skip_model(skip), torch.device("cpu"))  # as the filter runs it: borders replicated
    hr = torch.stack([upscale(n, f) for n, f in enumerate(lr)]).clamp(0, 1)
    frames = Frames(lr, (hr * 255).round().to(torch.uint8), np.stack([fingerprint(f) for f in lr]))
    return skip, frames


@pytest.mark.parametrize("factor, scale", [(2.0, 0.5), (1.0, 1.0), (-1.0, 0.0)])
def test_the_residual_is_scaled_to_fit_the_held_out_frames(truth, tmp_path, factor, scale):
    skip, frames = truth
    grid = Grid(48, 36, 16, 12)
    path = write_bundle(tmp_path / "b.stdo", [skip_model(skip * factor)], np.zeros((1, grid.rows, grid.cols)),
                        [frames.lr[0]], patch=(16, 12))
    b = bundle_io.load(path)
    before = b.weights[0]["skip.weight"].clone()
    h = damp(b, frames, WholeScale(grid, 2, 4), torch.device("cpu"), [(10, 12)])
    assert h.scales == pytest.approx([scale], abs=0.03)
    assert torch.allclose(b.weights[0]["skip.weight"], before * h.scales[0])
    assert h.gain_db >= h.undamped_db - 1e-9 and h.gain_db >= -1e-9          # never worse than bicubic
    if factor == -1.0:
        assert h.undamped_db < 0 and h.gain_db == pytest.approx(0, abs=1e-9)  # harm undone: bicubic
    else:
        assert h.gain_db > 3                                                  # the right correction, near enough
    assert h.record()["stretches"] == [[10, 12]] and h.frames == 3


def constant_router(chunks: int, to: int) -> RouterState:
    """A blind router that sends every patch to chunk `to`."""
    bias = torch.zeros(chunks)
    bias[to] = 1
    return RouterState(("mean",), {"mean": torch.zeros(1), "std": torch.ones(1), "hidden.weight": torch.zeros(1, 1),
                                   "hidden.bias": torch.zeros(1), "out.weight": torch.zeros(chunks, 1),
                                   "out.bias": bias})


@pytest.mark.parametrize("shared_factor, kept", [(1.0, 1), (-1.0, 2)])
def test_the_shared_model_ships_alone_unless_the_chunk_models_beat_it_on_held_out_scenes(truth, tmp_path,
                                                                                        shared_factor, kept):
    skip, frames = truth
    grid = Grid(48, 36, 16, 12)
    path = write_bundle(tmp_path / "b.stdo", [skip_model(skip * 2), skip_model(-skip)],
                        np.zeros((1, grid.rows, grid.cols)), [frames.lr[0]], patch=(16, 12))
    b = bundle_io.load(path)
    b.router = constant_router(2, 0)
    shared = {n: t.clone() for n, t in skip_model(skip * shared_factor).state_dict().items()}
    shipped, h = settle(b, shared, frames, WholeScale(grid, 2, 4), torch.device("cpu"), [(0, 2)])
    assert shipped.chunks == kept
    assert h.kept.startswith("the shared model") == (kept == 1) and h.gain_db > 3  # both play the right correction
    if kept == 1:
        assert shipped.router is None and torch.allclose(shipped.weights[0]["skip.weight"], skip, atol=1e-6)
