"""The `.stdo` bundle: one safetensors file holding every model, the routing labels and a manifest.

Tensors (format 3; the manifest's "storage" entry names how each part is stored):
  model.{i}           every parameter of chunk model i (weight norm folded in), packed ("models": "lzma2"):
                      each parameter's values in state-dict order, then each integer weight's scales, as one
                      raw-LZMA2 1-dim uint8 tensor. Values are float16 (default), float32, or intN (N = 8 to 4) for
                      weights of 2+ dims with one float32 scale per output channel (biases then float16).
                      Format-3 bundles written before packing store model.{i}.{param} and qscale.{i}.{param}
                      as tensors of their own (no "models" entry); they still load
  labels              uint8 (frames, rows, cols), zlib-deflated into a 1-dim uint8 tensor: the model
                      each patch routes to (its best, or its chunk)
  psnr                float32 (frames, rows, cols): the reference scorer's PSNR of each patch (kept
                      exact: with the thresholds it gives each patch's chunk)
  fingerprints        per-frame content fingerprints of the LR frames, (frames, 256) values in [0, 1]:
                      "delta8" (written now): quantised to 1/255 (the matcher's tolerance is 0.025), each
                      frame minus the one before (mod 256), zlib-deflated into a 1-dim uint8 tensor;
                      "float16" (format-3 bundles written before delta8): float16 (frames, 256)
  router.{name}       float32 tensors of the blind router (when the bundle has one)
A bundle of one model has nothing to route, so it stores no labels, psnr or fingerprints (its storage
entry says "none" for the three; they load as arrays of zero frames): for one model they were most of
the bytes beside the weights, and on a whole film they would be megabytes.
Metadata key "stdo" holds the JSON manifest (see `Bundle.manifest`); its "colour" (absent in bundles
made before it) is how the training pair's YUV was read, which the filter uses for untagged clips.
Its "mapping" (only in bundles trained on a remaster pair, core/mapping.py) is how the training LR sits on
the HR grid: the filter puts the models' output through it, so it returns the HR's geometry.
Nothing in the file is code:
safetensors stores raw arrays, and the loader checks every field before anything uses it. Loading
turns every part back into the float32 / uint8 arrays the engine uses.

Format versions: 1 (no router), 2 (adds the optional blind router, `router_state.py`; both store every
part uncompressed in float32) and 3 (compact storage, above); all three load.
"""
from __future__ import annotations

import json
import lzma
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from .colour import Colour
from .files import write_atomic
from .fingerprint import CELLS
from .grid import Grid
from .mapping import Mapping
from .models import WDSR, Arch, from_plain
from .router_state import RouterState

FORMAT = "stdo-bundle"
VERSION = 3
READS = (1, 2, 3)          # format versions this code loads
ROUTER = "router."         # prefix of the router's tensors
QSCALE = "qscale."         # prefix of the per-output-channel scales of integer weights
MODEL = "model."           # prefix of the models' tensors: model.{i} (packed) or model.{i}.{param}
WEIGHTS = ("float16", "float32", "int8", "int7", "int6", "int5", "int4")  # how weights can be stored; first: default
FINGERPRINTS = ("delta8", "float16")  # how fingerprints can be stored in format 3; the first is written
PSNR = ("float32",)        # scores stay exact: with the thresholds they give each patch's chunk
LABELS = ("zlib",)
MODELS = ("lzma2",)        # how each model's parameters are packed; format-3 bundles written before have none
# Raw LZMA2 (no .xz container): the reader names the dictionary, so a stream cannot make it allocate more.
# Its range coder spends fractional bits, which deflate's Huffman codes cannot: int6 weights take 4 % less.
LZMA2 = {"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20}
READABLE = {"weights": WEIGHTS, "models": MODELS, "labels": LABELS, "psnr": PSNR, "fingerprints": FINGERPRINTS}
PER_FRAME = ("labels", "psnr", "fingerprints")  # the routing data, one entry per stored frame
PLAIN = {"weights": "float32", "labels": "raw", "psnr": "float32", "fingerprints": "float32"}  # formats 1, 2
MAX_BYTES = 1 << 30        # no honest bundle comes near this; refuse before reading it
MAX_HEADER = 16 << 20      # safetensors header (JSON) limit; ours are a few kB


class BundleError(ValueError):
    """A bundle file that cannot be used, with the reason."""


@dataclass
class Bundle:
    """A loaded, validated bundle."""

    scale: int
    patch_width: int
    patch_height: int
    archs: list[Arch]
    weights: list[dict[str, torch.Tensor]]
    labels: np.ndarray          # (frames, rows, cols) uint8
    psnr: np.ndarray            # (frames, rows, cols) float32
    fingerprints: np.ndarray    # (frames, CELLS*CELLS) float32
    thresholds: list[float]
    clip: dict[str, Any]        # LR width/height, frames, fps, source name
    training: dict[str, Any] = field(default_factory=dict)
    router: RouterState | None = None
    colour: Colour | None = None  # how the training pair was read; None in bundles made before it was recorded
    weight_storage: str = WEIGHTS[0]  # how `save` stores the weights (one of WEIGHTS)
    mapping: Mapping | None = None  # remaster bundles: the training LR on the HR grid; None: output = s x LR

    @property
    def chunks(self) -> int:
        return len(self.archs)

    @property
    def planes(self) -> int:
        """3: the models upscale RGB; 1: they upscale luma (Y, read with the bundle's colour matrix)."""
        return self.archs[0].planes

    @property
    def grid(self) -> Grid:
        return Grid(self.clip["width"], self.clip["height"], self.patch_width, self.patch_height)

    def manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "scale": self.scale,
            "patch": {"width": self.patch_width, "height": self.patch_height},
            "grid": {"rows": int(self.labels.shape[1]), "cols": int(self.labels.shape[2])},
            "chunks": self.chunks,
            "models": [a.to_dict() for a in self.archs],
            "thresholds": self.thresholds,
            "clip": self.clip,
            "fingerprint": {"kind": "luma-block-mean", "cells": CELLS},
            "training": self.training,
            "router": self.router.manifest() if self.router else None,
            "storage": storage(self.weight_storage, per_frame=self.chunks > 1),
        } | ({"colour": self.colour.to_manifest()} if self.colour else {}) | (
            {"mapping": self.mapping.to_dict()} if self.mapping else {})

    def build_models(self) -> list[WDSR]:
        return [from_plain(arch, state).eval() for arch, state in zip(self.archs, self.weights)]


def save(bundle: Bundle, path: str | Path) -> None:
    """Write the bundle atomically: a temp file in the same folder, fsync, then rename over `path`."""
    write_atomic(Path(path), to_bytes(bundle))


def to_bytes(bundle: Bundle) -> bytes:
    """The bundle file's bytes."""
    manifest = bundle.manifest()  # checks weight_storage first, and says whether routing data is stored
    tensors: dict[str, np.ndarray] = {}
    if manifest["storage"]["labels"] != "none":
        tensors = {"labels": _deflated(np.ascontiguousarray(bundle.labels, dtype=np.uint8).tobytes()),
                   "psnr": np.ascontiguousarray(bundle.psnr, dtype=np.float32),
                   "fingerprints": _delta8(bundle.fingerprints)}
    for i, (arch, state) in enumerate(zip(bundle.archs, bundle.weights)):
        shapes = param_shapes(arch)
        if {name: tuple(t.shape) for name, t in state.items()} != shapes:
            raise ValueError(f"model {i}'s weights do not match its architecture {arch}")
        stored: dict[str, np.ndarray] = {}
        for name, t in state.items():
            stored |= _stored_weight(f"{MODEL}{i}.{name}", f"{QSCALE}{i}.{name}", t.detach().cpu().float().numpy(),
                                     bundle.weight_storage)
        stream = b"".join(stored[key].tobytes() for key, _, _ in _layout(i, shapes, bundle.weight_storage))
        tensors[f"{MODEL}{i}"] = np.frombuffer(lzma.compress(stream, lzma.FORMAT_RAW, filters=[
            LZMA2 | {"preset": 9 | lzma.PRESET_EXTREME}]), np.uint8)
    if bundle.router:
        tensors |= {f"{ROUTER}{name}": t for name, t in bundle.router.state().items()}
    return st_save(tensors, metadata={"stdo": json.dumps(manifest)})


def storage(weights: str, per_frame: bool = True) -> dict[str, str]:
    """The manifest's "storage" entry of a bundle written now, its weights stored as `weights`; without
    `per_frame` (one model) the routing data is not stored at all."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights can be stored as {', '.join(WEIGHTS)}, not {weights!r}")
    routing = dict(zip(PER_FRAME, (LABELS[0], PSNR[0], FINGERPRINTS[0])) if per_frame else zip(PER_FRAME, ["none"] * 3))
    return {"weights": weights, "models": MODELS[0]} | routing


def _read_storage(st: Any) -> dict[str, str]:
    """A format-3 manifest's storage entry, checked: every part stored in a form this code reads."""
    if isinstance(st, dict) and set(st) - {"models"} == {"weights", *PER_FRAME}:
        forms = dict(READABLE) | ({n: ("none",) for n in PER_FRAME} if st["labels"] == "none" else {})
        if all(st[n] in forms[n] for n in st):
            return st
    raise BundleError(f"manifest field storage {st!r} is not one this vs-stdo reads (weights {', '.join(WEIGHTS)}; "
                      f"models {' or '.join(MODELS)} or absent; labels {' or '.join(LABELS)}; psnr "
                      f"{' or '.join(PSNR)}; fingerprints {' or '.join(FINGERPRINTS)}; or, with one model, none of "
                      f"the three)")


def _delta8(prints: np.ndarray) -> np.ndarray:
    """Fingerprints as stored ("delta8"): 1/255 steps, frame-to-frame differences (consecutive frames are
    alike, so these are mostly zeros), deflated."""
    q = np.rint(np.clip(prints, 0, 1) * 255).astype(np.uint8)
    diff = np.diff(q, axis=0, prepend=np.zeros((1, q.shape[1]), np.uint8))  # uint8: wraps mod 256
    return _deflated(diff.tobytes())


def _deflated(data: bytes) -> np.ndarray:
    """Bytes zlib-deflated into a 1-dim uint8 tensor (see `_inflated`)."""
    return np.frombuffer(zlib.compress(data, 9), np.uint8)


def param_shapes(arch: Arch) -> dict[str, tuple[int, ...]]:
    """The shape of each parameter of a model of `arch`, in its state-dict order: the order of a packed
    stream, whatever order the saved state came in (training's folded weights come biases first)."""
    with torch.device("meta"):  # shapes only: a hostile manifest must not make us allocate
        return {name: tuple(t.shape) for name, t in WDSR(arch).state_dict().items()}


def _layout(i: int, shapes: dict[str, tuple[int, ...]], weights: str) -> list[tuple[str, np.dtype, tuple[int, ...]]]:
    """The arrays model i's parameters are stored as, in the order of its packed stream: each parameter's
    values (state-dict order), then, for integer weights, each 2+-dim parameter's scales. Names are those of the
    per-tensor layout, so both layouts load through `_loaded_weight`."""
    values = [(f"{MODEL}{i}.{n}", _stored_dtype(weights, len(shape)), shape) for n, shape in shapes.items()]
    scales = [(f"{QSCALE}{i}.{n}", np.dtype(np.float32), shape[:1]) for n, shape in shapes.items()
              if weights.startswith("int") and len(shape) > 1]
    return values + scales


def _stored_dtype(weights: str, ndim: int) -> np.dtype:
    """intN weights of 2+ dims are int8 values within +-(2^(N-1) - 1); the rest of an integer bundle is float16."""
    return np.dtype(np.int8 if weights.startswith("int") and ndim > 1 else np.float32 if weights == "float32"
                    else np.float16)


def _levels(weights: str) -> int:
    """The largest magnitude an intN weight is stored as: 127 for int8 ... 7 for int4."""
    return 2 ** (int(weights[3:]) - 1) - 1


def _unpacked(tensors: dict[str, np.ndarray], i: int, shapes: dict[str, tuple[int, ...]],
              weights: str) -> dict[str, np.ndarray]:
    """Model i's packed stream (tensor `model.{i}`) as the per-tensor arrays `_layout` names."""
    layout = _layout(i, shapes, weights)
    clash = sorted(key for key, _, _ in layout if key in tensors)
    if clash:
        raise BundleError(f"unexpected tensors {clash[:5]}; the file does not match its manifest")
    sizes = [dtype.itemsize * math.prod(shape) for _, dtype, shape in layout]
    stream = _inflated(tensors.pop(f"{MODEL}{i}", None), (sum(sizes),), f"{MODEL}{i}", "lzma2").tobytes()
    ends = np.cumsum(sizes)
    return {key: np.frombuffer(stream[end - size:end], dtype).reshape(shape)
            for (key, dtype, shape), size, end in zip(layout, sizes, ends)}


def _stored_weight(name: str, scale_name: str, w: np.ndarray, weights: str) -> dict[str, np.ndarray]:
    """One weight tensor as stored: cast, or intN (int8 values) with one float32 scale per output channel (dim 0)."""
    dtype = _stored_dtype(weights, w.ndim)
    if dtype != np.int8:
        return {name: w.astype(dtype)}
    levels = _levels(weights)
    peak = np.abs(w.reshape(len(w), -1)).max(axis=1)
    scale = np.where(peak > 0, peak / levels, 1).astype(np.float32)
    q = np.clip(np.rint(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -levels, levels).astype(np.int8)
    return {name: q, scale_name: scale}


def part_bytes(data: bytes) -> dict[str, int]:
    """Bytes of each part of a bundle file: weights, labels, psnr, fingerprints, router, and manifest
    (the safetensors header with the JSON manifest); they add up to the file's size."""
    read_manifest(data)  # checks the header is there and sane
    n = int.from_bytes(data[:8], "little")
    parts = dict.fromkeys(("weights", *PER_FRAME, "router"), 0) | {"manifest": 8 + n}
    for name, entry in json.loads(data[8:8 + n]).items():
        if name != "__metadata__":
            start, end = entry["data_offsets"]
            part = ("weights" if name.startswith((MODEL, QSCALE)) else "router" if name.startswith(ROUTER)
                    else name)
            parts[part] = parts.get(part, 0) + end - start
    return parts


def read_manifest(data: bytes) -> dict[str, Any]:
    """The JSON manifest from a safetensors header, read without touching the tensors."""
    if len(data) < 8:
        raise BundleError("file too short to be a bundle")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8 or n > MAX_HEADER:
        raise BundleError(f"header length {n} does not fit the file ({len(data)} bytes); the file is damaged "
                          f"or is not a safetensors bundle")
    try:
        header = json.loads(data[8:8 + n])
        meta = header.get("__metadata__", {}) if isinstance(header, dict) else {}
        manifest = json.loads(meta["stdo"]) if isinstance(meta, dict) and isinstance(meta.get("stdo"), str) else None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise BundleError(f"header is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError("not an STDO bundle: the safetensors metadata has no 'stdo' manifest")
    return manifest


def read_file(path: str | Path) -> bytes:
    """The bytes of a bundle file; raises BundleError (or FileNotFoundError) when `path` cannot be one."""
    path = Path(path)
    if path.is_dir():
        raise BundleError(f"bundle {str(path)!r} is a directory; give the path of a .stdo file")
    if not path.is_file():
        raise FileNotFoundError(f"bundle {str(path)!r} does not exist; train one with `stdo train`")
    if path.stat().st_size > MAX_BYTES:
        raise BundleError(f"{path} is {path.stat().st_size} bytes, larger than any bundle; refusing to read it")
    return path.read_bytes()


def load(path: str | Path) -> Bundle:
    """Load and validate a bundle; raises BundleError (or FileNotFoundError) naming the problem."""
    data = read_file(path)
    try:
        return from_bytes(data)
    except BundleError as e:
        raise BundleError(f"{path}: {e}") from None


def from_bytes(data: bytes) -> Bundle:
    m = read_manifest(data)
    version = m.get("version")
    if type(version) is not int or version not in READS:
        raise BundleError(f"bundle format version {version!r} is not supported by this vs-stdo "
                          f"(it reads versions {', '.join(map(str, READS))}); update vs-stdo or retrain the bundle")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, TypeError) as e:
        raise BundleError(f"tensor data is damaged: {e}") from None
    try:
        return _validated(m, tensors)
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as e:
        # The manifest is untrusted input: any shape it takes that _validated did not foresee is
        # still a damaged bundle, not a crash.
        raise BundleError(f"manifest is inconsistent: {type(e).__name__}: {e}") from None


def _int(value: Any, name: str, lo: int = 1, hi: int = 1 << 20) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise BundleError(f"manifest field {name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _tensor(tensors: dict[str, np.ndarray], name: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    if name not in tensors:
        raise BundleError(f"tensor {name!r} is missing")
    t = tensors[name]
    if t.dtype != dtype or t.shape != shape:
        raise BundleError(f"tensor {name!r} is {t.dtype}{list(t.shape)}, expected {np.dtype(dtype)}{list(shape)}")
    if t.dtype.kind == "f" and not np.isfinite(t).all():
        raise BundleError(f"tensor {name!r} holds NaN or infinite values")
    return t


def _validated(m: dict[str, Any], tensors: dict[str, np.ndarray]) -> Bundle:
    scale = _int(m["scale"], "scale", 2, 4)
    pw = _int(m["patch"]["width"], "patch.width", 1, 4096)
    ph = _int(m["patch"]["height"], "patch.height", 1, 4096)
    clip = m["clip"]
    if not isinstance(clip, dict):
        raise BundleError("manifest field clip must be an object")
    frames = _int(clip["frames"], "clip.frames", 1, 10_000_000)
    sample = clip.get("sample")  # the stored frames' numbers in the training range, when the run sampled
    if sample is not None and (not isinstance(sample, list) or len(sample) != frames
                               or not all(type(v) is int and v >= 0 for v in sample) or sample != sorted(set(sample))):
        raise BundleError(f"manifest field clip.sample must list {frames} increasing frame numbers")
    grid = Grid(_int(clip["width"], "clip.width", 1, 65536), _int(clip["height"], "clip.height", 1, 65536), pw, ph)
    if (m["grid"]["rows"], m["grid"]["cols"]) != (grid.rows, grid.cols):
        raise BundleError(f"manifest grid {m['grid']} does not match a {pw}x{ph} grid on "
                          f"{grid.width}x{grid.height} ({grid.rows} rows, {grid.cols} cols)")
    k = _int(m["chunks"], "chunks", 1, 255)
    if not isinstance(m["models"], list) or len(m["models"]) != k:
        raise BundleError(f"manifest lists {len(m['models'])} models for {k} chunks")
    thresholds = m["thresholds"]
    if (not isinstance(thresholds, list) or len(thresholds) != k - 1
            or not all(isinstance(t, (int, float)) and math.isfinite(t) for t in thresholds)):
        raise BundleError(f"manifest needs {k - 1} finite chunk thresholds, got {thresholds!r}")

    if m["version"] >= 3:
        st = _read_storage(m["storage"])
    else:
        st = PLAIN
    labels, psnr, prints = _per_frame(tensors, st, frames, grid, k)

    archs, weights = [], []
    for i, spec in enumerate(m["models"]):
        try:
            arch = Arch.from_dict(spec)
        except ValueError as e:
            raise BundleError(f"models[{i}]: {e}") from None
        if archs and arch.planes != archs[0].planes:
            raise BundleError(f"model {i} has {arch.planes} plane(s) but model 0 has {archs[0].planes}; "
                              f"all models of a bundle work on the same planes")
        if arch.scale != scale:
            raise BundleError(f"model {i} is for x{arch.scale} but the bundle is x{scale}")
        _int(arch.blocks, f"models[{i}].blocks", 1, 64)
        _int(arch.channels, f"models[{i}].channels", 1, 256)
        _int(arch.expansion, f"models[{i}].expansion", 1, 16)
        expected = param_shapes(arch)
        if "models" in st:
            tensors |= _unpacked(tensors, i, expected, st["weights"])
        state = {name: torch.from_numpy(_loaded_weight(tensors, i, name, shape, st["weights"]))
                 for name, shape in expected.items()}
        archs.append(arch)
        weights.append(state)
    router = None
    if m.get("router") is not None:
        try:
            router = RouterState.from_state(m["router"], {n[len(ROUTER):]: t for n, t in tensors.items()
                                                          if n.startswith(ROUTER)}, k)
        except ValueError as e:
            raise BundleError(f"blind router: {e}") from None
    known = {f"{MODEL}{i}.{n}" for i, w in enumerate(weights) for n in w}
    known |= set(PER_FRAME if st["labels"] != "none" else ())
    if st["weights"].startswith("int"):
        known |= {f"{QSCALE}{i}.{n}" for i, w in enumerate(weights) for n, t in w.items() if t.ndim > 1}
    known |= {f"{ROUTER}{n}" for n in (router.tensors if router else ())}
    extra = sorted(set(tensors) - known)
    if extra:
        raise BundleError(f"unexpected tensors {extra[:5]}; the file does not match its manifest")
    try:
        colour = Colour.from_manifest(m["colour"]) if "colour" in m else None
    except ValueError as e:
        raise BundleError(f"manifest field {e}") from None
    training = m.get("training", {})
    return Bundle(scale, pw, ph, archs, weights, labels, psnr, prints, [float(t) for t in thresholds],
                  clip, training if isinstance(training, dict) else {}, router, colour=colour,
                  weight_storage=st["weights"], mapping=_mapping(m, grid, scale))


def _mapping(m: dict[str, Any], grid: Grid, scale: int) -> Mapping | None:
    """The manifest's mapping (None where there is none), checked: for the clip's LR size, ratios the
    models' scale reaches."""
    if "mapping" not in m:
        return None
    try:
        mapping = Mapping.from_dict(m["mapping"])
    except ValueError as e:
        raise BundleError(f"manifest: {e}") from None
    if (mapping.lr_width, mapping.lr_height) != (grid.width, grid.height):
        raise BundleError(f"the mapping is for an LR of {mapping.lr_width}x{mapping.lr_height} but the clip is "
                          f"{grid.width}x{grid.height}")
    if mapping.scale() > scale:
        raise BundleError(f"the mapping's ratios {mapping.ratio_x:.3f} x {mapping.ratio_y:.3f} are beyond the "
                          f"models' x{scale}")
    return mapping


def _per_frame(tensors: dict[str, np.ndarray], st: dict[str, str], frames: int, grid: Grid,
               k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The routing data (labels, psnr, fingerprints) as stored by `st`; zero frames where none is stored."""
    if st["labels"] == "none":
        if k > 1:
            raise BundleError(f"the bundle has {k} models but stores no labels to route between them")
        none = (0, grid.rows, grid.cols)
        return np.zeros(none, np.uint8), np.zeros(none, np.float32), np.zeros((0, CELLS * CELLS), np.float32)
    shape = (frames, grid.rows, grid.cols)
    if st["labels"] == "zlib":
        labels = _inflated(tensors.get("labels"), shape, "labels")
    else:
        labels = _tensor(tensors, "labels", np.uint8, shape)
    if labels.size and labels.max() >= k:
        raise BundleError(f"labels name chunk {int(labels.max())} but the bundle has {k} chunks")
    psnr = _tensor(tensors, "psnr", np.float32, shape).copy()
    if st["fingerprints"] == "delta8":
        diff = _inflated(tensors.get("fingerprints"), (frames, CELLS * CELLS), "fingerprints")
        prints = np.cumsum(diff, axis=0, dtype=np.uint8).astype(np.float32) / 255  # the sum wraps mod 256 too
    else:
        prints = _tensor(tensors, "fingerprints", np.dtype(st["fingerprints"]),
                         (frames, CELLS * CELLS)).astype(np.float32)
    return labels, psnr, prints


def _inflated(t: np.ndarray | None, shape: tuple[int, ...], name: str, codec: str = "zlib") -> np.ndarray:
    """A compressed uint8 tensor ("zlib" or "lzma2") back to `shape`; the stream must hold exactly that many
    bytes, and no more is decompressed, so a bomb is refused."""
    if t is None or t.dtype != np.uint8 or t.ndim != 1:
        raise BundleError(f"tensor {name!r} must be a 1-dim uint8 {codec} stream")
    n = math.prod(shape)
    if n > MAX_BYTES:
        raise BundleError(f"tensor {name!r} would inflate to {n} bytes, more than any bundle holds")
    d = zlib.decompressobj() if codec == "zlib" else lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[LZMA2])
    try:
        out = d.decompress(t.tobytes(), n + 1)
    except (zlib.error, lzma.LZMAError) as e:
        raise BundleError(f"tensor {name!r} is not a valid {codec} stream: {e}") from None
    if len(out) != n or not d.eof or d.unused_data:
        raise BundleError(f"tensor {name!r} does not inflate to exactly {list(shape)} values")
    return np.frombuffer(out, np.uint8).reshape(shape).copy()


def _loaded_weight(tensors: dict[str, np.ndarray], i: int, name: str, shape: tuple[int, ...],
                   weights: str) -> np.ndarray:
    """Weight `name` of model i as float32, from its stored form (see `_stored_weight`)."""
    key = f"{MODEL}{i}.{name}"
    dtype = _stored_dtype(weights, len(shape))
    if dtype != np.int8:
        return _tensor(tensors, key, dtype, shape).astype(np.float32)  # a copy: the engine owns it
    scale = _tensor(tensors, f"{QSCALE}{i}.{name}", np.float32, shape[:1])
    q = _tensor(tensors, key, np.int8, shape)
    if np.abs(q.astype(np.int16)).max() > _levels(weights):
        raise BundleError(f"tensor {key} holds values beyond +-{_levels(weights)}, the range of {weights} weights")
    with np.errstate(over="ignore"):  # an absurd scale overflows to inf, refused below
        w = q.astype(np.float32) * scale.reshape(-1, *[1] * (len(shape) - 1))
    if (scale < 0).any() or not np.isfinite(w).all():
        raise BundleError(f"tensor {QSCALE}{i}.{name} holds negative or overflowing scales")
    return w
