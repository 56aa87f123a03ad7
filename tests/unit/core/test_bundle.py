"""Bundle storage: compact parts (float16 / intN weights, deflated labels, delta-coded prints) that load back to what
the engine uses, strict checks on every part, and format versions other than 4 refused with what to do."""
from __future__ import annotations

import json
import lzma
import re
import zlib

import numpy as np
import pytest
import torch
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from tests.support.bundles import huge_model, random_model, repacked, write_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core import packing
from vs_stdo.core.bundle import BundleError
from vs_stdo.core.clip_record import ClipRecord
from vs_stdo.core.fingerprint import CELLS, FrameMatcher

FRAMES, ROWS, COLS = 5, 2, 3


def bundle(weights: str = "float16", k: int = 2) -> bundle_io.Bundle:
    """A x2 bundle of k random models on a 48x24 LR clip (16x12 patches), stored as `weights`."""
    models = [random_model(2, seed) for seed in range(1, k + 1)]
    rng = np.random.default_rng(0)
    return bundle_io.Bundle(
        scale=2, patch_width=16, patch_height=12, archs=[m.arch for m in models],
        weights=[{n: t.detach().clone() for n, t in m.state_dict().items()} for m in models],
        labels=rng.integers(0, k, (FRAMES, ROWS, COLS)).astype(np.uint8),
        psnr=rng.uniform(20, 50, (FRAMES, ROWS, COLS)).astype(np.float32),
        fingerprints=rng.uniform(0, 1, (FRAMES, CELLS * CELLS)).astype(np.float32), thresholds=[30.0] * (k - 1),
        clip=ClipRecord(48, 24, FRAMES, 25, 1, "test"),
        weight_storage=weights)


def saved(b: bundle_io.Bundle, tmp_path, name: str = "b.stdo") -> bytes:
    bundle_io.save(b, tmp_path / name)
    return (tmp_path / name).read_bytes()


@pytest.mark.parametrize("weights, tolerance", [("float32", 0), ("float16", 2 ** -11), ("int8", 1 / 254),
                                                ("int6", 1 / 62), ("int4", 1 / 14)])  # half a step
def test_stored_parts_load_back_close_to_the_originals(tmp_path, weights, tolerance):
    b = bundle(weights)
    loaded = bundle_io.from_bytes(saved(b, tmp_path))
    assert loaded.weight_storage == weights
    for before, after in zip(b.weights, loaded.weights):
        for name, w in before.items():
            assert after[name].dtype == torch.float32 and after[name].shape == w.shape
            # relative to the tensor's (int8: the output channel's) largest magnitude
            peak = w.abs().flatten(1).amax(1).view(-1, *[1] * (w.dim() - 1)) if w.dim() > 1 else w.abs().max()
            assert ((after[name] - w).abs() <= tolerance * peak + 1e-12).all(), name
    np.testing.assert_array_equal(loaded.labels, b.labels)
    np.testing.assert_array_equal(loaded.psnr, b.psnr)
    np.testing.assert_allclose(loaded.fingerprints, b.fingerprints, atol=1 / 510 + 1e-7)  # 1/255 steps
    assert loaded.labels.dtype == np.uint8 and loaded.fingerprints.dtype == np.float32


def test_stored_fingerprints_still_find_every_frame(tmp_path):
    b = bundle()
    matcher = FrameMatcher(bundle_io.from_bytes(saved(b, tmp_path)).fingerprints)
    assert [matcher.match(p)[0] for p in b.fingerprints] == list(range(FRAMES))


def test_fingerprints_of_alike_frames_deflate(tmp_path):
    b = bundle()
    drift = np.random.default_rng(1).integers(-1, 2, (FRAMES, CELLS * CELLS)).cumsum(0) / 255
    b.fingerprints = np.clip(0.5 + drift, 0, 1).astype(np.float32)  # consecutive frames differ by a step or none
    assert bundle_io.part_bytes(saved(b, tmp_path))["fingerprints"] < FRAMES * CELLS * CELLS / 3  # uint8 would be 1x


def test_part_bytes_add_up_and_shrink_with_the_weight_storage(tmp_path):
    parts = {}
    for weights in bundle_io.WEIGHTS:
        data = saved(bundle(weights), tmp_path, f"{weights}.stdo")
        parts[weights] = bundle_io.part_bytes(data)
        assert sum(parts[weights].values()) == len(data)
    params = sum(t.numel() for w in bundle().weights for t in w.values())
    slack = 1.001  # deflate's framing on random weights, which do not compress
    assert parts["float32"]["weights"] <= 4 * params * slack
    assert parts["float16"]["weights"] <= 2 * params * slack
    assert parts["int8"]["weights"] < 0.6 * parts["float16"]["weights"]


@pytest.mark.parametrize("weights", bundle_io.WEIGHTS)
def test_each_model_is_one_deflated_tensor(tmp_path, weights):
    b = bundle(weights)
    for state in b.weights:
        for name in list(state)[1:]:
            state[name].zero_()  # all but the first parameter zero: the stream deflates to about that one
    data = saved(b, tmp_path)
    assert sorted(n for n in st_load(data) if n.startswith("model.")) == ["model.0", "model.1"]
    first = sum(next(iter(w.values())).numel() for w in b.weights)
    assert bundle_io.part_bytes(data)["weights"] < 4 * first + 2000
    loaded = bundle_io.from_bytes(data)
    for before, after in zip(b.weights, loaded.weights):
        assert all((after[n] == 0).all() for n in list(before)[1:])


@pytest.mark.parametrize("weights", bundle_io.WEIGHTS)
def test_weights_in_any_order_load_back_to_their_names(tmp_path, weights):
    b = bundle(weights, k=1)
    in_order = bundle_io.from_bytes(saved(b, tmp_path, "a.stdo")).weights[0]
    b.weights = [dict(reversed(b.weights[0].items()))]  # training's folded weights come biases first
    reordered = bundle_io.from_bytes(saved(b, tmp_path, "b.stdo")).weights[0]
    assert all(torch.equal(reordered[n], t) for n, t in in_order.items())
    if weights == "float32":
        assert all(torch.equal(reordered[n], t) for n, t in b.weights[0].items())


def test_saving_refuses_weights_that_do_not_fit_the_architecture(tmp_path):
    b = bundle(k=1)
    b.weights[0]["head.weight"] = b.weights[0]["head.weight"][:1]
    with pytest.raises(ValueError, match="do not match its architecture"):
        bundle_io.save(b, tmp_path / "x.stdo")


def test_labels_are_deflated(tmp_path):
    b = bundle()
    b.labels = np.zeros((FRAMES, ROWS, COLS), np.uint8)  # one chunk everywhere: deflates to a few bytes
    assert bundle_io.part_bytes(saved(b, tmp_path))["labels"] < b.labels.size


def test_one_model_bundles_store_no_routing_data(tmp_path):
    b = bundle(k=1)
    data = saved(b, tmp_path)
    parts = bundle_io.part_bytes(data)
    assert parts["labels"] == parts["psnr"] == parts["fingerprints"] == 0 and sum(parts.values()) == len(data)
    assert len(data) < len(saved(bundle(k=2), tmp_path, "two.stdo")) / 2 + 1000  # half the weights, no routing data
    loaded = bundle_io.from_bytes(data)
    assert loaded.labels.shape == (0, ROWS, COLS) and loaded.psnr.shape == (0, ROWS, COLS)
    assert loaded.fingerprints.shape == (0, CELLS * CELLS) and loaded.clip.frames == FRAMES
    assert all(torch.equal(loaded.weights[0][n], t.half().float()) for n, t in b.weights[0].items())


def edited(data: bytes, manifest=None, tensors=None) -> bytes:
    m, t = bundle_io.read_manifest(data), st_load(data)
    for edit, target in ((manifest, m), (tensors, t)):
        if edit:
            edit(target)
    return st_save(t, metadata={"stdo": json.dumps(m)})


def deflated(labels: np.ndarray) -> np.ndarray:
    return np.frombuffer(zlib.compress(labels.tobytes()), np.uint8)


def packed(data: np.ndarray) -> np.ndarray:
    return np.frombuffer(lzma.compress(data.tobytes(), lzma.FORMAT_RAW, filters=[packing.LZMA2]), np.uint8)


HOSTILE = {
    "unknown weight storage": (None, lambda m: m["storage"].update(weights="int3"), None, "storage.weights"),
    "storage not an object": (None, lambda m: m.update(storage="float16"), None, "storage: expected `object`"),
    "no storage": (None, lambda m: m.pop("storage"), None, "missing required field `storage`"),
    "unknown score storage": (None, lambda m: m["storage"].update(psnr="float16"), None, "storage.psnr"),
    "unknown model packing": (None, lambda m: m["storage"].update(models="lzma"), None, "storage.models"),
    "labels not deflated": (None, None, lambda t: t.update(labels=np.zeros((FRAMES, ROWS, COLS), np.uint8)),
                            "1-dim uint8 zlib"),
    "labels stream damaged": (None, None, lambda t: t.update(labels=t["labels"][::-1].copy()), "zlib"),
    "labels inflate short": (None, None, lambda t: t.update(labels=deflated(np.zeros(7, np.uint8))), "exactly"),
    "labels inflate long": (None, None, lambda t: t.update(labels=deflated(np.zeros(10 ** 6, np.uint8))), "exactly"),
    "labels trailing bytes": (None, None, lambda t: t.update(labels=np.concatenate([t["labels"], [1, 2]]).astype(
        np.uint8)), "exactly"),
    "label names a missing chunk": (None, None, lambda t: t.update(labels=deflated(np.full(
        (FRAMES, ROWS, COLS), 5, np.uint8))), "chunk 5"),
    "model stream missing": (None, None, lambda t: t.pop("model.1"), "'model.1' must be"),
    "model stream short": (None, None, lambda t: t.update({"model.0": packed(np.zeros(99, np.uint8))}), "exactly"),
    "model stream not lzma2": (None, None, lambda t: t.update({"model.0": deflated(np.zeros(99, np.uint8))}),
                               "'model.0' is not a valid lzma2"),
    "model stream damaged": (None, None, lambda t: t.update({"model.0": t["model.0"][::-1].copy()}), "'model.0'"),
    "parameters beside the stream": (None, None, lambda t: t.update({"model.0.head.weight": np.zeros(1, np.float16)}),
                                     "unexpected"),
    "int6 value out of range": ("int6", None, lambda t: t["model.0.head.weight"].flat.__setitem__(0, 32),
                                "beyond \\+-31"),
    "int8 scale overflows": ("int8", None, lambda t: t["qscale.0.head.weight"].fill(3e38), "overflowing"),
    "int8 scale negative": ("int8", None, lambda t: t["qscale.0.head.weight"].fill(-1), "negative"),
    "float16 weight NaN": (None, None, lambda t: t["model.0.head.weight"].flat.__setitem__(0, np.nan), "NaN"),
    "a scale beside float16 weights": (None, None, lambda t: t.update(
        {"qscale.0.head.weight": np.ones(16, np.float32)}), "unexpected"),
    "fingerprints not deflated": (None, None, lambda t: t.update(
        fingerprints=np.zeros((FRAMES, CELLS * CELLS), np.float16)), "fingerprints"),
    "fingerprints inflate short": (None, None, lambda t: t.update(fingerprints=deflated(np.zeros(9, np.uint8))),
                                   "exactly"),
    "unknown fingerprint storage": (None, lambda m: m["storage"].update(fingerprints="float8"), None,
                                    "storage.fingerprints"),
    "two models, no labels": (None, lambda m: m["storage"].update(labels="none", psnr="none", fingerprints="none"),
                              lambda t: [t.pop(n) for n in ("labels", "psnr", "fingerprints")], "no labels"),
    "no labels but scores": (None, lambda m: m["storage"].update(labels="none"), None, "all or none"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_damaged_compact_parts_give_a_clear_error(tmp_path, case):
    weights, manifest, tensors, message = HOSTILE[case]
    data = saved(bundle(weights or "float16"), tmp_path)
    if case.startswith(("int", "float16 weight")):  # the checks on the weights, inside model 0's packed stream
        data, tensors = repacked(data, tensors), None
    data = edited(data, manifest, tensors)
    with pytest.raises(BundleError, match=message):
        bundle_io.from_bytes(data)


def test_saving_refuses_an_unknown_weight_storage(tmp_path):
    with pytest.raises(ValueError, match="float16, float32, int8"):
        bundle_io.save(bundle("bfloat16"), tmp_path / "x.stdo")
    assert not (tmp_path / "x.stdo").exists()


@pytest.mark.parametrize("version, says", [
    (3, "version 3 was made by a pre-release vs-stdo; this vs-stdo reads format 4 only: retrain the bundle"),
    (1, "version 1 was made by a pre-release vs-stdo"),
    (5, "version 5 is newer than this vs-stdo reads (format 4); update vs-stdo"),
    ("4", "version '4' is not supported"), (None, "version None is not supported"),
])
def test_a_format_version_other_than_4_is_refused_with_what_to_do(tmp_path, version, says):
    data = saved(bundle(), tmp_path)
    assert bundle_io.read_manifest(data)["version"] == bundle_io.VERSION == 4
    with pytest.raises(BundleError, match=re.escape(says)):
        bundle_io.from_bytes(edited(data, lambda m: m.update(version=version)))


def test_huge_finite_weights_are_refused_on_load(tmp_path):
    path = write_bundle(tmp_path / "huge.stdo", [huge_model()], np.zeros((1, 2, 2)), [torch.full((3, 24, 32), 0.5)])
    with pytest.raises(BundleError, match="model 0 outputs non-finite values on a grey test patch"):
        bundle_io.load(path)


def test_the_probe_is_one_small_patch_per_model():
    """What loading costs beyond reading: each model run once on a 16x16 patch of its planes."""
    assert [tuple(bundle_io.probe(p).shape) for p in (1, 3)] == [(1, 1, 16, 16), (1, 3, 16, 16)]
