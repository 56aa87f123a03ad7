"""The engine's paths: region merging, valid-convolution runners, the bf16 residual branch, GPU batches, and
clips smaller than a patch."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import vapoursynth as vs

from tests.support.bundles import needs_bf16, random_model, write_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.grid import Grid
from vs_stdo.core.models import WDSR, Arch, bicubic_stencil, preset
from vs_stdo.core.video import frame_array
from vs_stdo.filter.engine import Engine
from vs_stdo.filter.regions import cover, owned_box
from vs_stdo.filter.routing import Route, Routing
from vs_stdo.filter.runner import Runner, native_bf16
from vs_stdo.train import router_fit

core = vs.core


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A ragged 100x70 frame, 3 chunk models of two sizes (radius 6 and 10), random labels."""
    torch.manual_seed(0)
    frame = torch.rand(3, 70, 100)
    models = [random_model(Arch(4, 2, 8, 2), 1), random_model(Arch(4, 4, 16, 2), 2), random_model(Arch(4, 2, 8, 2), 3)]
    grid = Grid(100, 70, 16, 12)
    labels = np.random.RandomState(0).randint(0, 3, (1, grid.rows, grid.cols)).astype(np.uint8)
    path = write_bundle(tmp_path_factory.mktemp("mixed") / "mixed.stdo", models, labels, [frame])
    return bundle_io.load(path), frame, models, torch.from_numpy(labels.reshape(-1).astype(np.int64))


def expected(frame: torch.Tensor, models: list[WDSR], labels: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Each patch's part of its model's whole-frame inference (replicated border), the last patch owning overlaps."""
    wholes = []
    with torch.no_grad():
        for m in models:
            r, s = m.arch.radius, m.arch.scale
            wholes.append(m(F.pad(frame[None], (r,) * 4, mode="replicate"))[0, :, r * s:-r * s, r * s:-r * s])
    out = torch.empty_like(wholes[0])
    for (y, x, h, w), k in zip(grid.hr_boxes(4), labels.tolist()):
        out[:, y:y + h, x:x + w] = wholes[k][:, y:y + h, x:x + w]
    return out.clamp(0, 1)


def test_regions_cover_every_patch_once_with_one_label_and_tile_the_frame(mixed):
    b, _, _, labels = mixed
    grid = b.grid
    for cap in (0, 1, 3):
        seen = torch.zeros(grid.count, dtype=torch.long)
        owned = torch.zeros(grid.height, grid.width, dtype=torch.long)
        regions = cover(grid, labels, cap)
        for g in regions:
            idx = [r * grid.cols + c for r in range(g.r0, g.r1) for c in range(g.c0, g.c1)]
            seen[idx] += 1
            assert set(labels[idx].tolist()) == {g.chunk}
            assert cap == 0 or g.patches <= cap
            y0, x0, y1, x1 = owned_box(grid, g)
            owned[y0:y1, x0:x1] += 1
        assert (seen == 1).all() and (owned == 1).all()
    assert len(cover(grid, labels)) < grid.count                         # neighbours were merged
    assert len(cover(grid, torch.zeros(grid.count, dtype=torch.long))) == 1


def test_bicubic_stencil_is_torch_bicubic():
    x = torch.rand(1, 1, 20, 23)
    for s in (2, 3, 4):
        up = F.interpolate(x, scale_factor=s, mode="bicubic", align_corners=False)[..., 2 * s:-2 * s, 2 * s:-2 * s]
        torch.testing.assert_close(F.pixel_shuffle(F.conv2d(x, bicubic_stencil(s)), s), up, atol=2e-6, rtol=0)


def test_a_fresh_model_is_torch_bicubic_up_to_the_border():
    """The model's bicubic skip is a fixed convolution on replicated borders: torch's bicubic upscaling, border
    pixels included; `unshuffled` is the same output before the pixel shuffle (the layout training compares)."""
    for s in (2, 3, 4):
        for planes in (1, 3):
            x = torch.rand(2, planes, 11, 14)
            model = WDSR(Arch(s, 1, 4, 2, planes))
            up = F.interpolate(x, scale_factor=s, mode="bicubic", align_corners=False)
            torch.testing.assert_close(model(x), up, atol=2e-6, rtol=0)
            torch.testing.assert_close(model.unshuffled(x), F.pixel_unshuffle(up, s), atol=2e-6, rtol=0)
            assert "bicubic" not in model.state_dict()           # fixed: bundles do not store it


def test_runner_equals_the_module_with_context():
    m = random_model(4)
    r = m.arch.radius
    x = torch.rand(1, 3, 30 + 2 * r, 41 + 2 * r)
    with torch.no_grad():
        want = m(x)[..., 4 * r:-4 * r, 4 * r:-4 * r]
    got = F.pixel_shuffle(Runner(m, torch.device("cpu"))(x), 4)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=0)


@pytest.mark.parametrize("batch", [0, 2])
def test_merged_regions_equal_whole_frame_inference_of_each_patchs_model(mixed, batch):
    b, frame, models, labels = mixed
    got = Engine(b, 100, 70, device="cpu", bf16=False, batch=batch).upscale(frame, labels)
    torch.testing.assert_close(got, expected(frame, models, labels, b.grid), atol=2e-5, rtol=0)


def test_a_pad_between_the_radii_mixes_exact_and_per_patch_models(mixed):
    b, frame, models, labels = mixed
    engine = Engine(b, 100, 70, device="cpu", bf16=False, pad=6)     # covers the small models only
    assert engine.path == "batches" and [r is not None for r in engine.runners] == [True, False, True]
    got = engine.upscale(frame, labels)
    want = expected(frame, models, labels, b.grid)
    small = torch.zeros(3, 280, 400, dtype=torch.bool)
    for (y, x, h, w), k in zip(b.grid.hr_boxes(4), labels.tolist()):
        small[:, y:y + h, x:x + w] = k != 1
    torch.testing.assert_close(got[small], want[small], atol=2e-5, rtol=0)
    assert (got[~small] - want[~small]).abs().max() > 1e-3            # chunk 1 saw only 6 pixels of context


@needs_bf16
def test_bf16_keeps_the_bicubic_skip_in_float32(mixed):
    b, frame, _, labels = mixed
    fresh = WDSR(preset("tiny", 4)).eval()                              # equals bicubic exactly
    r = fresh.arch.radius
    x = F.pad(frame[None], (r,) * 4, mode="replicate")
    got = F.pixel_shuffle(Runner(fresh, torch.device("cpu"), torch.bfloat16)(x), 4)
    with torch.no_grad():
        want = fresh(x)[..., 4 * r:-4 * r, 4 * r:-4 * r]
    torch.testing.assert_close(got, want, atol=2e-6, rtol=0)


@needs_bf16
def test_bf16_output_is_close_to_float32(mixed):
    b, frame, _, labels = mixed
    fp32 = Engine(b, 100, 70, device="cpu", bf16=False).upscale(frame, labels)
    bf16 = Engine(b, 100, 70, device="cpu", bf16=True).upscale(frame, labels)
    err = (bf16 - fp32).abs()
    assert 0 < err.mean() < 1e-3 and err.max() < 2e-2
    default = Engine(b, 100, 70, device="cpu").upscale(frame, labels)
    assert torch.equal(default, bf16 if native_bf16() else fp32)


class Cramped:
    """A runner on a device with room for `limit` input pixels per call: beyond that it raises the
    OutOfMemoryError torch raises on a full GPU (no GPU here to fill; the engine's reaction is what is tested)."""

    def __init__(self, runner: Runner, limit: int) -> None:
        self.runner, self.radius, self.limit, self.largest = runner, runner.radius, limit, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] * x.shape[-2] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.largest = max(self.largest, x.shape[-1] * x.shape[-2])
        return self.runner(x)


def test_bf16_is_off_where_onednn_is_capped_below_it(mixed, tmp_path):
    """A CPU that lists avx512_bf16 while oneDNN may not use it (ONEDNN_MAX_CPU_ISA, some VMs, AVX2-only CPUs) gets
    float32 by default: the engine upscales instead of failing on its first frame; bf16=True says why it cannot."""
    b, _, _, labels = mixed
    bundle_io.save(b, tmp_path / "mixed.stdo")
    code = ("import json, sys, torch; from vs_stdo.core import bundle; from vs_stdo.filter.engine import Engine; "
            "from vs_stdo.filter.runner import native_bf16; "
            "e = Engine(bundle.load(sys.argv[1]), 100, 70, device='cpu'); "
            "e.upscale(torch.rand(3, 70, 100), torch.tensor(json.loads(sys.argv[2]))); print(native_bf16(), e.dtype)\n"
            "try: Engine(bundle.load(sys.argv[1]), 100, 70, device='cpu', bf16=True)\n"
            "except ValueError as e: print(e)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "mixed.stdo"), str(labels.tolist())],
                       capture_output=True, text=True, env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert r.returncode == 0, r.stderr[-2000:]
    default, asked = r.stdout.split("\n", 1)
    assert default.split() == ["False", "torch.float32"]
    assert asked.startswith("bf16=1 needs a CPU on which torch runs bfloat16")  # asked for, it is a clear error


def test_out_of_memory_lowers_the_batch_until_it_fits_then_fails_clearly(mixed, caplog):
    b, frame, models, _ = mixed
    labels = torch.ones(b.grid.count, dtype=torch.long)                # chunk 1 everywhere: one region at first
    engine = Engine(b, 100, 70, device="cpu", bf16=False)
    one_patch = (16 + 20) * (12 + 20)                                   # a patch with chunk 1's radius of context
    engine.runners = [Cramped(r, 2 * one_patch) for r in engine.runners]
    got = engine.upscale(frame, labels)
    torch.testing.assert_close(got, expected(frame, models, labels, b.grid), atol=2e-5, rtol=0)
    assert 1 <= engine.batch < b.grid.count and "batch lowered" in caplog.text
    assert 0 < engine.runners[1].largest <= 2 * one_patch
    engine.runners = [Cramped(r.runner, 100) for r in engine.runners]  # not even one patch fits
    with pytest.raises(MemoryError, match="out of memory even at one patch per model call"):
        engine.upscale(frame, labels)
    assert engine.batch == 1


def test_gpu_patch_batches_give_the_same_pixels_as_regions(mixed):
    """The CUDA path (batches.py), run on the CPU here: no GPU in CI; the device checks run scripts/bench/gpu.py."""
    b, frame, _, labels = mixed
    regions = Engine(b, 100, 70, device="cpu", bf16=False, path="regions")
    batched = Engine(b, 100, 70, device="cpu", bf16=False, batch=5, path="batches")
    assert (regions.path, batched.path) == ("regions", "batches")
    torch.testing.assert_close(batched.upscale(frame, labels), regions.upscale(frame, labels), atol=2e-5, rtol=0)


def test_the_path_is_checked(mixed):
    b, _, _, _ = mixed
    assert Engine(b, 100, 70, device="cpu").path == "regions"
    with pytest.raises(ValueError, match="path 'regions' needs pad >= the models' receptive radius 10, got 6"):
        Engine(b, 100, 70, device="cpu", pad=6, path="regions")
    with pytest.raises(ValueError, match="unknown engine path 'patches'; use 'regions' or 'batches'"):
        Engine(b, 100, 70, device="cpu", path="patches")


@pytest.fixture(scope="module")
def routed(pair, tmp_path_factory):
    """A bundle of 48x54 patches trained (here: built) on a 100x60 crop of the real clip, with a fitted blind router."""
    _, lr = pair
    frame = torch.from_numpy(frame_array(lr.get_frame(0)))[:, :60, :100]
    models = [random_model(Arch(4, 2, 8, 2), 4), random_model(Arch(4, 4, 16, 2), 5)]
    grid = Grid(100, 60, 48, 54)
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, (1, grid.rows, grid.cols)).astype(np.uint8)
    path = write_bundle(tmp_path_factory.mktemp("routed") / "routed.stdo", models, labels, [frame], patch=(48, 54))
    b = bundle_io.load(path)
    psnr = rng.uniform(20, 40, (2, 1, grid.rows, grid.cols)).astype(np.float32)
    b.router = router_fit.fit(frame[None], grid, 4, psnr, labels, steps=20)
    bundle_io.save(b, path)
    return path, models, lr


@pytest.mark.parametrize("width, height", [(1, 1), (7, 5), (40, 30), (130, 20), (30, 70)])
def test_clips_that_do_not_hold_a_patch_are_upscaled_like_whole_frames(routed, width, height):
    """Smaller than one 48x54 patch in one or both directions: the grid reaches past the frame, replicated, and
    each patch's pixels are whole-frame inference of its routed model (one patch: the whole frame)."""
    path, models, lr = routed
    clip = core.std.CropAbs(lr[0], width, height, left=150, top=70)
    frame = torch.from_numpy(frame_array(clip.get_frame(0)))
    b = bundle_io.load(path)
    grid = Grid(width, height, 48, 54)
    blind = Routing(b, grid, Route.parse("blind", 2))(0, frame)
    for route in ("blind", "auto", "chunk:0", "chunk:1"):
        labels = blind if route in ("blind", "auto") else torch.full((grid.count,), int(route[-1]))
        want = expected(frame, models, labels, grid)
        out = core.stdo.Upscale(clip, str(path), route=route, bf16=0)
        assert (out.width, out.height) == (4 * width, 4 * height)
        got = torch.from_numpy(frame_array(out.get_frame(0)))
        torch.testing.assert_close(got, want, atol=2e-5, rtol=0)
        batches = Engine(b, width, height, route=route, device="cpu", bf16=False, path="batches")
        torch.testing.assert_close(batches.upscale(frame, batches.routing(0, frame)), want, atol=2e-5, rtol=0)
    with pytest.raises(vs.Error, match="route='labels' needs the training clip's LR size 100x60"):
        core.stdo.Upscale(clip, str(path), route="labels")


@pytest.mark.slow
def test_onednn_gets_room_for_a_routed_frames_convolutions_unless_the_user_chose():
    """A routed frame runs hundreds of (layer, shape) convolutions; oneDNN's default cache of 1024 thrashed (docs/speed.md).
    The room is set before oneDNN's first primitive, and a value in the environment wins."""
    code = ("import os, torch; from vs_stdo.filter.runner import Runner; from vs_stdo.core.models import WDSR, preset; "
            "Runner(WDSR(preset('tiny', 2)), torch.device('cpu'))(torch.rand(1, 3, 30, 30)); "
            "print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'])")
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    for given, want in ((None, "8192"), ("300", "300")):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env | ({"ONEDNN_PRIMITIVE_CACHE_CAPACITY": given} if given else {}))
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.split() == [want]
