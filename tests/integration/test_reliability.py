"""Hostile bundles, bad arguments and failed writes: clear errors, nothing executed, no crash."""
from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from scripts.encode import vspipe_exe
from tests.support.bundles import huge_model, offset_model, rebuild, repacked, write_bundle
from tests.support.cli import blank, run
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.bundle import BundleError
from vs_stdo.core.files import atomic_write

W, H = 32, 24


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> bytes:
    """A small valid bundle (k=2, x2, 32x24 LR, 16x12 patches, 2 frames) as bytes."""
    path = tmp_path_factory.mktemp("good") / "good.stdo"
    frames = [torch.full((3, H, W), v) for v in (0.25, 0.75)]
    labels = np.array([[[0, 1], [1, 0]], [[1, 1], [0, 0]]])
    write_bundle(path, [offset_model(2, 0.0), offset_model(2, 0.1)], labels, frames)
    return path.read_bytes()


class Evil:
    """Unpickling this would create a file; loading a bundle must never unpickle."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def set_(d: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for p in parents:
        d = d[p]
    d[last] = value


def nan_weight(t: dict) -> None:
    t["model.0.head.weight"][0, 0, 0, 0] = np.nan


def deflated(labels: np.ndarray) -> np.ndarray:
    """Labels as a bundle stores them."""
    return np.frombuffer(zlib.compress(labels.tobytes()), np.uint8)


HOSTILE = {
    "empty": lambda g: b"",
    "truncated header": lambda g: g[:20],
    "truncated tensors": lambda g: g[:len(g) // 2],
    "zip magic (torch.save)": lambda g: b"PK\x03\x04" + g[4:],
    "absurd header length": lambda g: (2**63).to_bytes(8, "little") + g[8:],
    "header not JSON": lambda g: (12).to_bytes(8, "little") + b"{not json!!}" + g[20:],
    "deeply nested header": lambda g: (len(b"[" * 100000)).to_bytes(8, "little") + b"[" * 100000,
    "no stdo manifest": lambda g: st_save(st_load(g)),
    "unknown version": lambda g: rebuild(g, lambda m: set_(m, "version", 99)),
    "version as string": lambda g: rebuild(g, lambda m: set_(m, "version", "1")),
    "labels shape vs grid": lambda g: rebuild(g, lambda m: set_(m, "patch.width", 8)),
    "thresholds vs k": lambda g: rebuild(g, lambda m: set_(m, "thresholds", [1.0, 2.0, 3.0])),
    "non-finite threshold": lambda g: rebuild(g, lambda m: set_(m, "thresholds", [float("nan")])),
    "weight shapes vs architecture": lambda g: rebuild(g, lambda m: set_(m, "models", [
        dict(m["models"][0], channels=17), m["models"][1]])),
    "absurd architecture": lambda g: rebuild(g, lambda m: set_(m, "models", [
        dict(m["models"][0], blocks=64, channels=256, expansion=16), m["models"][1]])),
    "unknown architecture": lambda g: rebuild(g, lambda m: set_(m, "models", [
        dict(m["models"][0], name="edsr"), m["models"][1]])),
    "missing model": lambda g: rebuild(g, tensors=lambda t: t.pop("model.1")),
    "extra tensor": lambda g: rebuild(g, tensors=lambda t: t.update(surprise=np.zeros(3, np.float32))),
    "labels wrong dtype": lambda g: rebuild(g, tensors=lambda t: t.update(labels=t["labels"].astype(np.float32))),
    "label names a missing chunk": lambda g: rebuild(g, tensors=lambda t: t.update(labels=deflated(
        np.frombuffer(zlib.decompress(t["labels"].tobytes()), np.uint8) * 7))),
    "NaN weight": lambda g: repacked(g, nan_weight),
    "patch is a list": lambda g: rebuild(g, lambda m: set_(m, "patch", [16, 12])),
    "clip is a string": lambda g: rebuild(g, lambda m: set_(m, "clip", "x")),
    "models not a list": lambda g: rebuild(g, lambda m: set_(m, "models", {"0": 1})),
    "scale out of range": lambda g: rebuild(g, lambda m: set_(m, "scale", 8)),
    "frames is a bool": lambda g: rebuild(g, lambda m: set_(m, "clip.frames", True)),
}


# what each error must name: the part of the file that is wrong
SAYS = {
    "empty": "too short", "truncated header": "header length", "truncated tensors": "tensor data is damaged",
    "zip magic (torch.save)": "not a safetensors bundle", "absurd header length": "does not fit the file",
    "header not JSON": "not valid JSON", "deeply nested header": "not valid JSON",
    "no stdo manifest": "no 'stdo' manifest", "unknown version": "version 99 is newer than this vs-stdo reads",
    "version as string": "version '1' is not supported", "labels shape vs grid": "does not match a 8x12 grid",
    "thresholds vs k": "2 chunks need 1 chunk thresholds, got [1.0, 2.0, 3.0]",
    "non-finite threshold": "manifest field thresholds[0]: expected a finite number, got nan",
    "weight shapes vs architecture": "'model.0' does not inflate to exactly",
    "absurd architecture": "'model.0' would inflate to 4833095280 bytes, more than any bundle holds",
    "unknown architecture": "manifest field models[0].name: invalid value 'edsr'",
    "missing model": "'model.1' must be a 1-dim uint8 lzma2", "extra tensor": "unexpected tensors ['surprise']",
    "labels wrong dtype": "'labels' must be a 1-dim uint8 zlib stream", "label names a missing chunk": "labels name chunk 7",
    "NaN weight": "'model.0.head.weight' holds NaN",
    "patch is a list": "manifest field patch: expected `object`, got `array`",
    "clip is a string": "manifest field clip: expected `object`, got `str`",
    "models not a list": "manifest field models: expected `array`, got `object`",
    "scale out of range": "manifest field scale: invalid value 8",
    "frames is a bool": "manifest field clip.frames: expected `int`, got `bool`",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bundle_gives_a_clear_error(good, case):
    with pytest.raises(BundleError) as e:
        bundle_io.from_bytes(HOSTILE[case](good))
    assert SAYS[case] in str(e.value)


def test_pickle_renamed_to_stdo_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    for payload in (pickle.dumps(Evil(str(marker))), b"PK" + pickle.dumps(Evil(str(marker)))):
        evil = tmp_path / "evil.stdo"
        evil.write_bytes(payload)
        with pytest.raises(BundleError):
            bundle_io.load(evil)
    torch.save({"x": Evil(str(marker))}, tmp_path / "evil2.stdo")
    with pytest.raises(BundleError):
        bundle_io.load(tmp_path / "evil2.stdo")
    assert not marker.exists()


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, pos, value in ops:
        pos %= max(len(buf), 1)
        if op == "flip" and buf:
            buf[pos] ^= 1 << (value % 8)
        elif op == "set" and buf:
            buf[pos] = value % 256
        elif op == "truncate":
            del buf[pos:]
        elif op == "insert":
            buf[pos:pos] = bytes([value % 256]) * (1 + value % 7)
        elif op == "length":
            buf[:8] = (value * 7919 % (1 << 64)).to_bytes(8, "little")
    return bytes(buf)


OPS = st.lists(st.tuples(st.sampled_from(["flip", "set", "truncate", "insert", "length"]),
                         st.integers(0, 1 << 20), st.integers(0, 1 << 62)), min_size=1, max_size=6)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_fuzzed_bundles_load_or_fail_cleanly(good, ops):
    try:
        b = bundle_io.from_bytes(mutate(good, ops))
    except BundleError:
        return
    assert b.labels.max() < b.chunks and all(torch.isfinite(t).all() for w in b.weights for t in w.values())


@pytest.mark.slow
def test_ten_thousand_mutated_bundles_load_or_fail_cleanly(good):
    """The fuzzer above at scale: 10,000 seeded mutations, every one a valid bundle or a BundleError."""
    rng = np.random.default_rng(0)
    ops = ["flip", "set", "truncate", "insert", "length"]
    crashes = []
    for i in range(10_000):
        mutations = [(ops[rng.integers(5)], int(rng.integers(1 << 20)), int(rng.integers(1 << 62)))
                     for _ in range(rng.integers(1, 7))]
        try:
            b = bundle_io.from_bytes(mutate(good, mutations))
        except BundleError:
            continue
        except Exception as e:  # anything else is a crash of the host
            crashes.append((mutations, repr(e)))
            continue
        if b.labels.max() >= b.chunks or not all(torch.isfinite(t).all() for w in b.weights for t in w.values()):
            crashes.append((mutations, "loaded an invalid bundle"))
    assert not crashes, crashes[:3]


@pytest.fixture(scope="module")
def huge_bundle(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "huge.stdo"
    return write_bundle(path, [huge_model()], np.zeros((1, 2, 2)), [torch.full((3, 24, 32), 0.5)])


@pytest.mark.parametrize("consumer", ["info", "eval", "Upscale YUV420P8", "Upscale RGBS"])
def test_huge_finite_weights_are_refused_by_every_consumer(consumer, huge_bundle, tmp_path, capsys):
    """`stdo info`, `stdo eval` and the filter refuse the bundle in one line naming the model."""
    if consumer.startswith("Upscale"):
        fmt = getattr(vs, consumer.split()[1])
        clip = vs.core.std.BlankClip(format=fmt, width=32, height=24, length=1)
        with pytest.raises(vs.Error, match="model 0 outputs non-finite values"):
            vs.core.stdo.Upscale(clip, str(huge_bundle))
        return
    argv = ["info", huge_bundle] if consumer == "info" else ["eval", huge_bundle, blank(tmp_path / "c.vpy", 64, 48)]
    code, out, err = run(argv, capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "model 0 outputs non-finite values" in err


VPY = """\
import vapoursynth as vs
clip = vs.core.std.BlankClip(format=vs.{fmt}, width={w}, height={h}, length=2, color={color})
vs.core.stdo.Upscale(clip, {bundle!r}{extra}).set_output()
"""


def run_vspipe(tmp_path: Path, bundle: Path, extra: str = "", fmt: str = "RGBS", w: int = W, h: int = H,
               color: str = "[0.5, 0.5, 0.5]") -> subprocess.CompletedProcess:
    vpy = tmp_path / "x.vpy"
    vpy.write_text(VPY.format(fmt=fmt, w=w, h=h, color=color, bundle=str(bundle), extra=extra))
    return subprocess.run([vspipe_exe(), "-c", "y4m", str(vpy), "-"], capture_output=True, timeout=120)


@pytest.mark.slow
@pytest.mark.vspipe
@pytest.mark.parametrize("case", ["truncated tensors", "absurd header length", "header not JSON",
                                  "NaN weight", "absurd architecture", "label names a missing chunk"])
def test_hostile_bundle_under_vspipe_is_an_error_not_a_crash(good, tmp_path, case):
    path = tmp_path / "bad.stdo"
    path.write_bytes(HOSTILE[case](good))
    r = run_vspipe(tmp_path, path)
    assert r.returncode == 1, (r.returncode, r.stderr)   # an error exit, not a signal
    assert b"Upscale:" in r.stderr


@pytest.mark.parametrize("extra, kwargs, message", [
    (", route='nearest'", {}, b"unknown route"),
    (", route='chunk:9'", {}, b"chunks 0..1"),
    (", pad=-1", {}, b"pad"),
    (", batch=-4", {}, b"batch"),
    (", device='tpu'", {}, b"device"),
    (", device='cuda:3'", {}, b"CUDA"),
    (", fp16=1, device='cpu'", {}, b"fp16"),
    (", route='labels'", {"w": 8, "h": 8}, b"training clip's LR size"),
    (", route='labels'", {"w": W * 2}, b"training clip's LR size"),
])
@pytest.mark.slow
@pytest.mark.vspipe
def test_bad_arguments_under_vspipe_are_errors_not_crashes(good, tmp_path, extra, kwargs, message):
    path = tmp_path / "good.stdo"
    path.write_bytes(good)
    r = run_vspipe(tmp_path, path, extra, **kwargs)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert message in r.stderr, r.stderr


def test_variable_format_clip_is_refused(good, tmp_path):
    path = tmp_path / "good.stdo"
    path.write_bytes(good)
    core = vs.core
    a = core.std.BlankClip(format=vs.RGBS, width=W, height=H, length=1)
    b = core.std.BlankClip(format=vs.RGBS, width=W * 2, height=H, length=1)
    with pytest.raises(vs.Error, match="constant format and size"):
        core.stdo.Upscale(core.std.Splice([a, b], mismatch=True), str(path))


FULL_DISK = """\
import resource, signal, sys
sys.path.insert(0, {root!r})
import msgspec, numpy as np, torch
from vs_stdo.core import bundle as bundle_io
b = bundle_io.load({path!r})
b.fingerprints = np.random.rand(20000, 256).astype(np.float32)   # ~20 MB: more than the disk allows
b.labels = np.zeros((20000,) + b.labels.shape[1:], np.uint8)
b.psnr = np.zeros(b.labels.shape, np.float32)
b.clip = msgspec.structs.replace(b.clip, frames=20000)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))   # files beyond 1 MB fail with EFBIG
try:
    bundle_io.save(b, {path!r})
except OSError as e:
    print("write failed:", e)
    sys.exit(3)
"""


@pytest.mark.slow
def test_failed_bundle_write_leaves_the_previous_bundle_intact(good, tmp_path):
    path = tmp_path / "keep.stdo"
    path.write_bytes(good)
    script = FULL_DISK.format(root=str(Path(__file__).parents[2]), path=str(path))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert "write failed" in r.stdout
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["keep.stdo"]      # no temp file left behind
    assert os.access(path, os.R_OK)


def test_a_written_bundle_gets_the_permissions_of_any_new_file(good, tmp_path):
    path = tmp_path / "shared.stdo"
    bundle_io.save(bundle_io.from_bytes(good), path)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask          # not mkstemp's 0600


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "x.ckpt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="died"):
        with atomic_write(path) as f:
            f.write(b"half of the new")
            raise RuntimeError("died while writing")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.ckpt"]
    with atomic_write(path) as f:
        torch.save({"step": 3}, f)
    assert torch.load(path, weights_only=True) == {"step": 3}
