"""The native plugin's own contract (plugin/stdo.c): every CPython failure reaches the user as the real
cause, never SystemError or a crash; the hand-off between C and Python (InternalInput, InternalOutput,
InternalFrames) refuses every misuse with a clear error and leaks nothing; its version is pyproject.toml's; its
wheel is abi3."""
from __future__ import annotations

import ctypes
import importlib.metadata
import re
import shutil
import struct
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vs_stdo
from scripts.encode import vspipe_exe
from tests.support.bundles import offset_model, write_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.filter import graph, plugin
from vs_stdo.filter.engine import Engine

ROOT = Path(__file__).resolve().parents[3]
DT_UTF8, MA_APPEND = 1, 1  # VSDataTypeHint.dtUtf8, VSMapAppendMode.maAppend in VapourSynth4.h


class CApi:
    """Just enough of VapourSynth's C API, through ctypes, to do what its Python module cannot: call filters on a
    core of one's own, as a native host can."""

    SIGNATURES = {  # name: (result, arguments), as in struct VSAPI
        "createCore": (ctypes.c_void_p, [ctypes.c_int]),
        "freeCore": (None, [ctypes.c_void_p]),
        "getPluginByNamespace": (ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_void_p]),
        "createMap": (ctypes.c_void_p, []),
        "freeMap": (None, [ctypes.c_void_p]),
        "invoke": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]),
        "mapGetError": (ctypes.c_char_p, [ctypes.c_void_p]),
        "mapSetInt": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int]),
        "mapSetData": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
                                      ctypes.c_int]),
        "mapGetNode": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]),
        "mapConsumeNode": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]),
        "freeNode": (None, [ctypes.c_void_p]),
    }

    def __init__(self) -> None:
        header = (Path(vs.get_include()) / "VapourSynth4.h").read_text()
        # The members before the first #if are the unconditional, ABI-stable API 4.0 table.
        table = header[header.index("struct VSAPI {"):].split("#if", 1)[0]
        names = re.findall(r"\(VS_CC \*(\w+)\)", table)
        lib = ctypes.CDLL(str(Path(vs.__file__).with_name("libvapoursynth.so.4")))
        lib.getVapourSynthAPI.restype = ctypes.POINTER(ctypes.c_void_p)
        api = lib.getVapourSynthAPI(4 << 16)
        for name, (result, args) in self.SIGNATURES.items():
            setattr(self, name, ctypes.CFUNCTYPE(result, *args)(api[names.index(name)]))

    def call(self, core: int, ns: str, name: str, clip: int | None = None, **args: int | bytes) -> tuple[int, str]:
        """Invoke ns.name on clip (consumed) with int or dtUtf8 data arguments: (its clip, its error)."""
        m = self.createMap()
        if clip:
            self.mapConsumeNode(m, b"clip", clip, MA_APPEND)
        for key, value in args.items():
            if isinstance(value, int):
                self.mapSetInt(m, key.encode(), value, MA_APPEND)
            else:
                self.mapSetData(m, key.encode(), value, len(value), DT_UTF8, MA_APPEND)
        ret = self.invoke(self.getPluginByNamespace(ns.encode(), core), name.encode(), m)
        error = self.mapGetError(ret)
        out = None if error else self.mapGetNode(ret, b"clip", 0, None)
        self.freeMap(ret)
        self.freeMap(m)
        return out, (error or b"").decode()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> str:
    """A valid x2 bundle for 64x48 clips: the plugin gets as far as it can, so only the bad bytes can fail it."""
    path = tmp_path_factory.mktemp("plugin") / "flat.stdo"
    return str(write_bundle(path, [offset_model(2, 0.0)], np.zeros((1, 4, 4), np.uint8), [torch.zeros(3, 48, 64)]))


BLANK = {"width": 64, "height": 48, "length": 1}  # RGBS clips of the bundle's size


def blank() -> vs.VideoNode:
    return vs.core.std.BlankClip(format=vs.RGBS, **BLANK)


def test_the_bundle_fixture_upscales(bundle):  # so that the failures below come from the bad bytes alone
    assert vs.core.stdo.Upscale(blank(), bundle).get_frame(0).width == 128


def test_upscale_on_a_core_python_does_not_use_is_a_clear_error_and_leaks_nothing(bundle, capfd):
    api = CApi()
    core = api.createCore(0)
    try:
        clip, _ = api.call(core, "std", "BlankClip", format=vs.RGBS.value, **BLANK)
        out, error = api.call(core, "stdo", "Upscale", clip, bundle=bundle.encode())
        if out:
            api.freeNode(out)
    finally:
        api.freeCore(core)
    assert out is None
    assert error == ("Upscale: InternalInput: stdo.Upscale was called on another core than Python's current one "
                     "(vs.core), which builds its graph; call it from a VapourSynth script or from Python"), error
    assert "still exist" not in capfd.readouterr().err  # VapourSynth's count of filters left when a core is freed


INTERNAL = "this function is internal to stdo.Upscale"


def test_the_internal_functions_called_from_a_script_are_clear_errors(bundle):
    with pytest.raises(vs.Error, match=rf"^InternalInput: {INTERNAL}.*call stdo.Upscale instead"):
        vs.core.stdo.InternalInput()
    with pytest.raises(vs.Error, match=rf"^InternalOutput: {INTERNAL}"):
        vs.core.stdo.InternalOutput(blank())
    with pytest.raises(vs.Error, match=r"^InternalFrames: no engine is waiting under key 12345: stdo.InternalFrames is "
                                       r"internal to stdo.Upscale"):
        vs.core.stdo.InternalFrames(blank(), engine=12345)
    with pytest.raises(vs.Error, match=r"^InternalFrames: takes RGBS or GRAYS of a constant size only"):
        vs.core.stdo.InternalFrames(vs.core.std.BlankClip(format=vs.YUV444PS, **BLANK), engine=1)
    engine = Engine(bundle_io.load(bundle), 64, 48)
    with graph.registered(engine) as key:
        with pytest.raises(vs.Error, match=r"takes 3-plane 64x48 frames, not 1-plane 64x48 ones"):
            vs.core.stdo.InternalFrames(vs.core.std.BlankClip(format=vs.GRAYS, **BLANK), engine=key)
    with graph.registered(engine) as key:  # a key serves one filter
        assert vs.core.stdo.InternalFrames(blank(), engine=key).get_frame(0).width == 128
        with pytest.raises(vs.Error, match=f"no engine is waiting under key {key}"):
            vs.core.stdo.InternalFrames(blank(), engine=key)
    assert not graph._engines  # nothing stays registered


def test_upscale_while_an_upscale_is_being_built_is_refused(bundle, monkeypatch):
    def reentrant(clip, bundle_path, options):
        return vs.core.stdo.Upscale(clip, bundle_path)

    monkeypatch.setattr(plugin, "upscaled", reentrant)
    with pytest.raises(vs.Error, match=r"^Upscale: Upscale: called while another stdo.Upscale call on this thread "
                                       r"builds its graph"):
        vs.core.stdo.Upscale(blank(), bundle)
    monkeypatch.undo()
    assert vs.core.stdo.Upscale(blank(), bundle).width == 128  # the hand-off is free again


def test_a_build_that_hands_back_nothing_or_twice_is_an_error(bundle, monkeypatch):
    monkeypatch.setattr(plugin, "build", lambda bundle_path, args: None)
    with pytest.raises(vs.Error, match=r"^Upscale: internal error: vs_stdo returned without handing back a clip"):
        vs.core.stdo.Upscale(blank(), bundle)
    monkeypatch.undo()

    def twice(clip, bundle_path, options):
        out = graph.upscaled(clip, bundle_path, options)
        vs.core.stdo.InternalOutput(out)
        return out

    monkeypatch.setattr(plugin, "upscaled", twice)
    with pytest.raises(vs.Error, match=r"^Upscale: InternalOutput: this Upscale call has already handed back its clip"):
        vs.core.stdo.Upscale(blank(), bundle)


MISUSE = """import sys
import vapoursynth as vs
from vs_stdo.filter import graph, plugin
core = vs.core
clip = core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=1)


def half_way(clip, bundle_path, options):
    vs.core.stdo.InternalOutput(graph.upscaled(clip, bundle_path, options))
    raise RuntimeError("half-way")


def reentrant(clip, bundle_path, options):
    return vs.core.stdo.Upscale(clip, bundle_path)


for name, call in [("input", lambda: core.stdo.InternalInput()),
                   ("output", lambda: core.stdo.InternalOutput(clip)),
                   ("frames", lambda: core.stdo.InternalFrames(clip, engine=7)),
                   ("bad bundle", lambda: core.stdo.Upscale(clip, {bad!r})),
                   ("half-way", lambda: core.stdo.Upscale(clip, {bundle!r})),
                   ("re-entrant", lambda: core.stdo.Upscale(clip, {bundle!r}))]:
    plugin.upscaled = half_way if name == "half-way" else reentrant if name == "re-entrant" else graph.upscaled
    try:
        call()
    except vs.Error as e:
        print(name, "->", e, file=sys.stderr)
plugin.upscaled = graph.upscaled
core.stdo.Upscale(clip, {bundle!r}).set_output()
"""


@pytest.mark.slow
@pytest.mark.vspipe
def test_misuse_under_vspipe_is_errors_and_leaks_no_filter(bundle, tmp_path):
    """Every misuse of the hand-off in a real vspipe script is a vs.Error, the script still renders, and when
    vspipe frees the core no filter instance is left (VapourSynth counts them; a node the hand-off forgot to free
    shows there)."""
    bad = tmp_path / "bad.stdo"
    bad.write_bytes(b"not a bundle")
    vpy = tmp_path / "misuse.vpy"
    vpy.write_text(MISUSE.format(bundle=bundle, bad=str(bad)))
    r = subprocess.run([vspipe_exe(), str(vpy), "-"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    said = dict(line.split(" -> ", 1) for line in r.stderr.splitlines() if " -> " in line)
    assert said["input"].startswith(f"InternalInput: {INTERNAL}")
    assert said["output"].startswith(f"InternalOutput: {INTERNAL}")
    assert said["frames"].startswith("InternalFrames: no engine is waiting under key 7")
    assert said["bad bundle"].startswith("Upscale: ") and "bad.stdo" in said["bad bundle"]
    assert said["half-way"] == "Upscale: half-way"
    assert said["re-entrant"].startswith("Upscale: Upscale: called while another stdo.Upscale call")
    assert "still exist" not in r.stderr, r.stderr
    assert "Segmentation" not in r.stderr


@pytest.mark.parametrize("arg", ["bundle", "route", "device"])
def test_text_arguments_holding_invalid_utf8_are_named_in_the_error(bundle, arg):
    args = {"bundle": bundle, arg: b"\xff"}
    with pytest.raises(vs.Error, match=rf"^Upscale: {arg} is not valid UTF-8 \('utf-8' codec can't decode byte 0xff"):
        vs.core.stdo.Upscale(blank(), **args)


def test_a_frame_view_kept_by_python_is_a_frame_error_and_every_other_view_is_released(bundle, monkeypatch):
    views = []

    class KeepsAView(Engine):
        """An engine with a bug: it keeps a buffer export of the input frame's green plane."""

        def process(self, n, srcs, dsts, src_stride, dst_stride):
            props = super().process(n, srcs, dsts, src_stride, dst_stride)
            views.extend(srcs + dsts)
            self.kept = struct.iter_unpack("f", srcs[1])  # never read: the frame is freed after this call
            return props

    monkeypatch.setattr(graph, "Engine", KeepsAView)
    with pytest.raises(vs.Error, match=r"^Upscale: memoryview has 1 exported buffer"):
        vs.core.stdo.Upscale(blank(), bundle).get_frame(0)
    for i, view in enumerate(views):
        if i != 1:
            with pytest.raises(ValueError, match="released"):
                len(view)


@pytest.mark.slow
def test_invalid_utf8_argument_under_vspipe_is_an_error_not_a_crash(bundle, tmp_path):
    vpy = tmp_path / "bad.vpy"
    vpy.write_text(f"import vapoursynth as vs\nvs.core.stdo.Upscale(vs.core.std.BlankClip(format=vs.RGBS, **{BLANK!r}), {bundle!r}, route=b'\\xff').set_output()\n")
    r = subprocess.run([vspipe_exe(), "-i", str(vpy), "-"], capture_output=True, timeout=120)
    assert r.returncode == 1, (r.returncode, r.stderr)  # an error exit, not a signal
    assert b"Upscale: route is not valid UTF-8" in r.stderr and b"SystemError" not in r.stderr, r.stderr


def test_one_version_from_pyproject_reaches_python_and_the_plugin():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert vs_stdo.__version__ == importlib.metadata.version("vs-stdo") == version
    assert vs.core.stdo.Version() == version
    plugin = vs.core.stdo.version
    assert f"{plugin.major}.{plugin.minor}" == ".".join(version.split(".")[:2])


@pytest.mark.slow
def test_the_wheel_is_tagged_abi3_and_carries_the_plugin(tmp_path):
    src = tmp_path / "src"  # a copy, so that the build leaves nothing in the checkout
    for name in ("plugin", "vs_stdo"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
                    "-w", str(tmp_path)], check=True, capture_output=True, timeout=300)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    [wheel] = tmp_path.glob("*.whl")
    assert re.fullmatch(rf"vs_stdo-{re.escape(version)}-cp312-abi3-\w+\.whl", wheel.name), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert {"vapoursynth/plugins/stdo/libstdo.so", "vapoursynth/plugins/stdo/manifest.vs"} <= set(names)


def test_the_plugin_registers_the_arguments_options_owns():
    from vs_stdo.filter.options import signature

    assert vs.core.stdo.Upscale.signature.replace(" ", "") == signature()


def test_upscale_refuses_unknown_and_mistyped_arguments(tmp_path):
    b = str(write_bundle(tmp_path / "one.stdo", [offset_model(2, 0.0)], np.zeros((1, 2, 2), np.uint8),
                         [torch.zeros(3, 24, 32)]))
    clip = vs.core.std.BlankClip(format=vs.RGBS, width=32, height=24, length=1)
    with pytest.raises(vs.Error, match="unknown argument"):
        vs_stdo.upscale(clip, b, routes="auto")
    with pytest.raises(vs.Error, match="route must be a string"):
        vs_stdo.upscale(clip, b, route=3)
    assert vs_stdo.upscale(clip, b, bf16=False, batch=2).width == 64
