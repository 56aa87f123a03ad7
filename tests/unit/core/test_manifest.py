"""The manifest read strictly: each part's record names a bad field by its path and says what is wrong, the rules
between the parts hold on writing as on reading, and no manifest, however mangled, loads as anything but a bundle
or a BundleError."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.bundles import rebuild, write_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.bundle import BundleError
from vs_stdo.core.mapping import Mapping
from vs_stdo.core.models import WDSR, Arch


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> bytes:
    """A two-model x2 bundle on a 32x24 LR (16x12 patches, 2 frames), as bytes."""
    path = tmp_path_factory.mktemp("manifest") / "b.stdo"
    return write_bundle(path, [WDSR(Arch(2, 1, 4, 2)), WDSR(Arch(2, 1, 4, 2))], np.array([[[0, 1], [1, 0]]] * 2),
                        [torch.rand(3, 24, 32), torch.rand(3, 24, 32)]).read_bytes()


def put(path: str, value):
    """An edit of the manifest that sets the value at `path` ("clip.width", "models.0.blocks")."""
    def edit(m: dict) -> None:
        *parents, last = path.split(".")
        for p in parents:
            m = m[int(p)] if isinstance(m, list) else m[p]
        m[int(last) if isinstance(m, list) else last] = value
    return edit


# (the edit, what the error says in full after "manifest field " or "manifest: ")
REFUSED = [
    (put("clip.width", 0), "clip.width: expected `int` >= 1, got 0"),
    (put("clip.frames", 2.0), "clip.frames: expected `int`, got `float`"),
    (put("clip.sample", [0, -1]), "clip.sample[1]: expected `int` >= 0, got -1"),
    (put("clip.sample", [1, 0]), "clip: sample must list 2 increasing frame numbers"),
    (put("clip.colour", 1), "clip: object contains unknown field `colour`"),
    (put("models.0.blocks", 65), "models[0].blocks: expected `int` <= 64, got 65"),
    (put("models.1.name", "edsr"), "models[1].name: invalid value 'edsr'"),
    (put("mapping.ratio_x", float("nan")), "mapping.ratio_x: expected a finite number, got nan"),
    (put("mapping.shear", 0.1), "mapping: object contains unknown field `shear`"),
    (put("router", {"kind": "tree", "features": ["grad"], "hidden": 4}), "router.kind: invalid value 'tree'"),
    (put("training.heldout", "none"), "training.heldout: expected `array`, got `str`"),
    (put("training.stages", {"chunks": {"steps": 3}}), "training.stages[...]: object missing required field "
                                                       "`patches`"),
    (put("thresholds", [1.0, 2.0]), "2 chunks need 1 chunk thresholds, got [1.0, 2.0]"),
    (put("scale", 3), "model 0 is for x2 but the bundle is x3"),
    (put("grid.rows", 3), "grid 3x2 (rows x cols) does not match a 16x12 grid on 32x24 (2 rows, 2 cols)"),
    (put("mapping.lr_width", 33), "the mapping is for an LR of 33x24 but the clip is 32x24"),
    (put("mapping.ratio_x", 2.5), "the mapping's ratios 2.500 x 2.000 are beyond the models' x2"),
    (put("surprise", 1), "object contains unknown field `surprise`"),
]


@pytest.mark.parametrize("edit, says", REFUSED, ids=[says.split(":")[0] for _, says in REFUSED])
def test_a_bad_field_is_named_with_what_is_wrong(good, edit, says):
    with pytest.raises(BundleError) as e:
        bundle_io.from_bytes(rebuild(good, edit))
    assert re.fullmatch(rf"manifest(:| field) {re.escape(says)}", str(e.value)), str(e.value)


def test_the_mapping_is_recorded_and_a_manifest_without_one_has_the_plain_one(good):
    b = bundle_io.from_bytes(good)
    assert b.mapping == Mapping.plain(32, 24, 64, 48) and b.mapping.whole()
    b.mapping = Mapping(32, 24, 58, 46, 1.8, 1.9, 0.5, -0.25)
    assert bundle_io.from_bytes(bundle_io.to_bytes(b)).mapping == b.mapping
    older = rebuild(bundle_io.to_bytes(b), lambda m: m.pop("mapping"))  # made before every bundle recorded one
    assert bundle_io.from_bytes(older).mapping == Mapping.plain(32, 24, 64, 48)


def test_a_bundle_that_would_not_load_is_not_written(good, tmp_path):
    b = bundle_io.from_bytes(good)
    b.mapping = Mapping(32, 24, 80, 46, 2.5, 1.9, 0, 0)
    with pytest.raises(ValueError, match="refusing to write a bundle that would not load: the mapping's "
                                         "ratios 2.500 x 1.900 are beyond the models' x2"):
        bundle_io.save(b, tmp_path / "x.stdo")
    assert not (tmp_path / "x.stdo").exists()


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                max_size=4), max_leaves=12)


def paths(m, prefix: str = "") -> list[str]:
    """Every place in the manifest a value sits, as `put` names it."""
    items = m.items() if isinstance(m, dict) else enumerate(m) if isinstance(m, list) else []
    out = []
    for key, value in items:
        out += [f"{prefix}{key}"] + paths(value, f"{prefix}{key}.")
    return out


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                                      HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_field_replaced_by_any_json_loads_or_is_a_bundle_error(good, data):
    """The manifest fuzzer: one field anywhere in the manifest (the training record's too) replaced by any JSON
    value; the loader gives a bundle or a BundleError, never another exception."""
    where = data.draw(st.sampled_from(paths(bundle_io.read_manifest(good))))
    value = data.draw(JSON)
    try:
        b = bundle_io.from_bytes(rebuild(good, put(where, value)))
    except BundleError:
        return
    assert b.labels.max() < b.chunks == len(b.archs) and json.dumps(bundle_io.read_manifest(bundle_io.to_bytes(b)))
