"""Blind routing: the router a real training run stores, blind output on frames the bundle
does not know, auto switching per frame on a splice, bundles without a router. Real clips, real cores, vspipe."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import vapoursynth as vs
from safetensors.numpy import load as st_load

from scripts.encode import encode
from tests.support.bundles import rebuild
from vs_stdo.cli import main
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.bundle import BundleError
from vs_stdo.core.fingerprint import FrameMatcher, fingerprint
from vs_stdo.core.grid import Grid
from vs_stdo.core.metrics import psnr
from vs_stdo.core.router_state import FEATURES
from vs_stdo.core.video import frame_array, hr_lr_pair, open_clip, select_frames
from vs_stdo.filter.blind import BlindRouter, features

core = vs.core


def frames_of(clip: vs.VideoNode) -> list[torch.Tensor]:
    return [torch.from_numpy(frame_array(f)) for f in clip.frames()]


@pytest.fixture(scope="module")
def foreign(clip_path) -> tuple[vs.VideoNode, vs.VideoNode]:
    """HR and LR (x4, RGBS) of 3 frames far from the tiny bundle's training frames (0:6)."""
    return hr_lr_pair(select_frames(open_clip(clip_path), "100:103"), 4)


def routed(out: vs.VideoNode, forced: list[vs.VideoNode], grid: Grid, n: int, scale: int) -> tuple[np.ndarray, float]:
    """Which forced render (route chunk:K) each patch of frame n of `out` equals, and the largest
    difference from it (0 when the patch really is that model's output)."""
    owner = np.empty((grid.height * scale, grid.width * scale), int)      # later patches own overlaps
    for i, (y, x, h, w) in enumerate(grid.hr_boxes(scale)):
        owner[y:y + h, x:x + w] = i
    got = frame_array(out.get_frame(n))
    errors = np.array([[np.abs(got - f)[:, owner == i].max() for i in range(grid.count)]
                       for f in (frame_array(c.get_frame(n)) for c in forced)])
    return errors.argmin(0), float(errors.min(0).max())


def test_features_see_detail():
    flat = torch.full((1, 3, 54, 48), 0.5)
    texture = torch.rand(1, 3, 54, 48, generator=torch.Generator().manual_seed(0))
    f = dict(zip(FEATURES, features(torch.cat([flat, texture]), 4).T))
    for name in ("grad", "lap", "var"):
        assert f[name][1] > f[name][0] + 3, name          # orders of magnitude more energy
    for name in ("self2", "selfs"):
        assert f[name][0] > f[name][1] + 20, name         # a flat patch survives down-and-up resampling
    assert torch.isfinite(features(flat, 4)).all()


@pytest.mark.slow
@pytest.mark.train
def test_training_stores_a_router_that_round_trips(tiny_bundle, pair, tmp_path, capsys):
    b = bundle_io.load(tiny_bundle)
    m = bundle_io.read_manifest(tiny_bundle.read_bytes())
    assert m["version"] == bundle_io.VERSION and m["router"]["features"] == list(FEATURES)
    fit = m["router"]["fit"]
    assert fit["target"] == "best" and fit["patches"] == 6 * b.grid.count
    assert np.array(fit["confusion"]).shape == (2, 2) and np.array(fit["confusion"]).sum() == fit["patches"]
    assert set(fit["psnr"]) == {"router", "labels", "chunk0", "best"}
    assert fit["psnr"]["best"] >= max(fit["psnr"]["router"], fit["psnr"]["labels"])
    assert {n for n in st_load(tiny_bundle.read_bytes()) if n.startswith("router.")} == {
        f"router.{n}" for n in ("mean", "std", "hidden.weight", "hidden.bias", "out.weight", "out.bias")}

    bundle_io.save(b, tmp_path / "again.stdo")
    again = bundle_io.load(tmp_path / "again.stdo")
    assert all(torch.equal(again.router.tensors[n], t) for n, t in b.router.tensors.items())
    patches = torch.cat([b.grid.cut(f, 0) for f in frames_of(pair[1])])
    chosen = BlindRouter(b.router, b.scale)(patches)
    assert torch.equal(BlindRouter(again.router, b.scale)(patches), chosen) and set(chosen.tolist()) <= {0, 1}
    assert main(["info", str(tiny_bundle)]) == 0
    out = capsys.readouterr().out
    assert f"STDO bundle v{bundle_io.VERSION}" in out and "blind router: MLP on grad, lap, var, mean, self2, selfs" in out
    assert "scorer shared, labels best" in out


@pytest.mark.parametrize("edit, message", [
    (dict(tensors=lambda t: t.update({"router.out.bias": np.zeros(5, np.float32)})), "router tensor 'out.bias'"),
    (dict(tensors=lambda t: t.pop("router.std")), "router tensors are"),
    (dict(tensors=lambda t: t.update({"router.std": -t["router.std"]})), "'std' must be positive"),
    (dict(tensors=lambda t: t.update({"router.mean": np.full(len(FEATURES), np.nan, np.float32)})), "finite"),
    (dict(manifest=lambda m: m["router"].update(features=["grad", "colour"])),
     "manifest field router.features[1]: invalid value 'colour'"),
    (dict(manifest=lambda m: m["router"].update(features=["grad", "grad"])), "router features must be distinct"),
    (dict(manifest=lambda m: m["router"].update(hidden=True)), "router.hidden: expected `int`, got `bool`"),
    (dict(manifest=lambda m: m.update(router="mlp")), "manifest field router: expected `object | null`"),
    (dict(manifest=lambda m: m.update(router=None)), "unexpected tensors"),
])
@pytest.mark.slow
@pytest.mark.train
def test_damaged_router_is_a_clear_error(tiny_bundle, edit, message):
    with pytest.raises(BundleError, match=re.escape(message)):
        bundle_io.from_bytes(rebuild(tiny_bundle.read_bytes(), **edit))


@pytest.mark.slow
@pytest.mark.train
def test_blind_on_a_clip_with_no_matching_frames(tiny_bundle, foreign):
    b = bundle_io.load(tiny_bundle)
    hr, lr = foreign
    frames = frames_of(lr)
    matcher = FrameMatcher(b.fingerprints)
    assert all(matcher.match(fingerprint(f))[0] is None for f in frames)
    blind = core.stdo.Upscale(lr, str(tiny_bundle), route="blind")
    forced = [core.stdo.Upscale(lr, str(tiny_bundle), route=f"chunk:{k}") for k in range(b.chunks)]
    auto = core.stdo.Upscale(lr, str(tiny_bundle))
    picks = []
    for n, frame in enumerate(frames):
        want = BlindRouter(b.router, b.scale)(b.grid.cut(frame, 0)).numpy()
        got, off = routed(blind, forced, b.grid, n, b.scale)
        assert np.array_equal(got, want) and off < 1e-4       # every patch is its routed model's output
        assert np.array_equal(frame_array(auto.get_frame(n)), frame_array(blind.get_frame(n)))
        picks.append(want)
    assert np.concatenate(picks).min() != np.concatenate(picks).max()   # differs from every single-chunk route
    # sensible: at least as good as the worse of the two models everywhere
    truth = frames_of(hr)
    score = [np.mean([psnr(torch.from_numpy(frame_array(c.get_frame(n))).clamp(0, 1), truth[n])
                      for n in range(len(frames))]) for c in (blind, *forced)]
    assert score[0] >= min(score[1:]) - 1e-3 and score[0] > 25


@pytest.mark.slow
@pytest.mark.train
def test_blind_works_at_another_size(tiny_bundle, foreign):
    b = bundle_io.load(tiny_bundle)
    lr = foreign[1].resize.Bicubic(256, 144)
    grid = Grid(256, 144, b.patch_width, b.patch_height)
    blind = core.stdo.Upscale(lr, str(tiny_bundle), route="blind")
    assert (blind.width, blind.height) == (1024, 576)
    forced = [core.stdo.Upscale(lr, str(tiny_bundle), route=f"chunk:{k}") for k in range(b.chunks)]
    got, off = routed(blind, forced, grid, 0, b.scale)
    assert np.array_equal(got, BlindRouter(b.router, b.scale)(grid.cut(frames_of(lr[0])[0], 0)).numpy()) and off < 1e-4
    with pytest.raises(vs.Error, match="route='labels' needs the training clip's LR size"):
        core.stdo.Upscale(lr, str(tiny_bundle), route="labels")


@pytest.mark.slow
@pytest.mark.train
@pytest.mark.vspipe
def test_auto_switches_per_frame_on_a_splice_also_in_vspipe(tiny_bundle, pair, foreign, clip_path, tmp_path):
    # the stored labels name each patch's best model, which the router learnt; flip them so that the two
    # routes differ on training frames and the frames below show which one auto took
    b = bundle_io.load(tiny_bundle)
    b.labels = 1 - b.labels
    bundle = tmp_path / "flipped.stdo"
    bundle_io.save(b, bundle)
    train, other = pair[1], foreign[1]
    splice = train[1:3] + other[0:2] + train[4]
    auto = core.stdo.Upscale(splice, str(bundle))
    labels = core.stdo.Upscale(splice, str(bundle), route="labels")
    blind = core.stdo.Upscale(splice, str(bundle), route="blind")
    for n, source in enumerate(["train", "train", "foreign", "foreign", "train"]):
        want = labels if source == "train" else blind
        assert np.array_equal(frame_array(auto.get_frame(n)), frame_array(want.get_frame(n))), n
    assert any(not np.array_equal(frame_array(labels.get_frame(n)), frame_array(blind.get_frame(n)))
               for n in (0, 1, 4))
    with pytest.raises(vs.Error, match="frame 2 is not a frame of the training clip"):
        labels.get_frame(2)

    script = ("import vapoursynth as vs\nfrom vs_stdo.core.video import hr_lr_pair, open_clip, select_frames\n"
              f"src = open_clip({str(clip_path)!r})\n"
              "train = hr_lr_pair(select_frames(src, '0:6'), 4)[1]\n"
              "other = hr_lr_pair(select_frames(src, '100:103'), 4)[1]\n"
              "clip = (train[1:3] + other[0:2] + train[4]).resize.Bicubic(format=vs.YUV420P10, matrix_s='709')\n"
              f"vs.core.stdo.Upscale(clip, {str(bundle)!r}, route=ROUTE).set_output()\n")
    for route in ("auto", "blind"):
        vpy, mkv = tmp_path / f"{route}.vpy", tmp_path / f"{route}.mkv"
        vpy.write_text(script.replace("ROUTE", repr(route)))
        encode(vpy, mkv, ["-c:v", "ffv1"])
        got, want = open_clip(mkv), open_clip(vpy)
        assert (got.format.id, got.num_frames, got.width, got.height) == (vs.YUV420P10, 5, 1280, 720)
        assert all(np.array_equal(np.asarray(x[p]), np.asarray(y[p]))
                   for x, y in zip(got.frames(), want.frames()) for p in range(3)), route


@pytest.mark.slow
@pytest.mark.train
def test_a_bundle_without_a_router_plays_auto_on_chunk_0_and_blind_is_a_clear_error(tiny_bundle, foreign, tmp_path,
                                                                                      capsys):
    old = tmp_path / "norouter.stdo"
    old.write_bytes(rebuild(tiny_bundle.read_bytes(), lambda m: m.update(router=None),
                            lambda t: [t.pop(n) for n in list(t) if n.startswith("router.")]))
    b = bundle_io.load(old)
    assert b.router is None and b.chunks == 2
    assert main(["info", str(old)]) == 0
    out = capsys.readouterr().out
    assert "STDO bundle v4" in out and "blind router: none" in out
    lr = foreign[1]
    auto = core.stdo.Upscale(lr, str(old))                         # unknown frames: chunk 0, as before
    assert np.array_equal(frame_array(auto.get_frame(0)),
                          frame_array(core.stdo.Upscale(lr, str(old), route="chunk:0").get_frame(0)))
    with pytest.raises(vs.Error, match=r"route='blind' needs a bundle with a blind router.*retrain it"):
        core.stdo.Upscale(lr, str(old), route="blind")
