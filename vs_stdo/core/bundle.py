"""The `.stdo` bundle: one safetensors file holding every model, the routing labels and a manifest.

Tensors (format 4; the manifest's "storage" record names how each part is stored, packing.py encodes them):
  model.{i}           every parameter of chunk model i (weight norm folded in), packed ("models": "lzma2"):
                      each parameter's values in state-dict order, then each integer weight's scales, as one
                      raw-LZMA2 1-dim uint8 tensor. Values are float16 (default), float32, or intN (N = 8 to 4) for
                      weights of 2+ dims with one float32 scale per output channel (biases then float16)
  labels              uint8 (frames, rows, cols), zlib-deflated into a 1-dim uint8 tensor: the model
                      each patch routes to (its best, or its chunk)
  psnr                float32 (frames, rows, cols): the reference scorer's PSNR of each patch (kept
                      exact: with the thresholds it gives each patch's chunk)
  fingerprints        per-frame content fingerprints of the LR frames, (frames, 256) values in [0, 1],
                      "delta8": quantised to 1/255 (the matcher's tolerance is 0.025), each frame minus the one
                      before (mod 256), zlib-deflated into a 1-dim uint8 tensor
  router.{name}       float32 tensors of the blind router (when the bundle has one; router_state.py)
A bundle of one model has nothing to route, so it stores no labels, psnr or fingerprints (its storage
record says "none" for the three; they load as arrays of zero frames): for one model they were most of
the bytes beside the weights, and on a whole film they would be megabytes.
Metadata key "stdo" holds the JSON manifest: one typed record per part (manifest.py), read strictly (schema.py).
Its "colour" (absent in bundles made before it) is how the training pair's YUV was read, which the filter uses for
untagged clips. Its "mapping" (core/mapping.py) is how the training LR sits on the HR grid: the filter puts the
models' output through it, so it returns the HR's geometry. A whole-scale bundle's mapping is the plain one
(ratio = scale, no offset: the output is the models' own); bundles made before every bundle recorded one load with
that.
Nothing in the file is code: safetensors stores raw arrays, and the loader checks every field before anything
uses it, then runs each model once on a probe patch. Loading turns every part back into the float32 / uint8
arrays the engine uses.

Format versions 1 to 3 were written only by pre-release builds of vs-stdo 0.1 (no release, and no shipped generic
model, stored them): they are refused with "made by a pre-release vs-stdo ...: retrain the bundle" rather than read
by code kept alive for them; a version from the future asks for an update.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from . import manifest as manifest_io
from . import packing, schema
from .clip_record import ClipRecord
from .colour import Colour
from .files import write_atomic
from .fingerprint import CELLS
from .grid import Grid
from .manifest import FORMAT, PER_FRAME, VERSION, GridRecord, Manifest, PatchRecord, Storage
from .mapping import Mapping
from .models import WDSR, Arch, from_plain
from .packing import MAX_BYTES, MODEL, QSCALE, WEIGHTS, BundleError
from .router_state import RouterState
from .training_record import TrainingRecord

ROUTER = "router."         # prefix of the router's tensors
MAX_HEADER = 16 << 20      # safetensors header (JSON) limit; ours are a few kB
PROBE = 16                 # side of the test patch every model is run on when a bundle is loaded
MAX_OUTPUT = 1e4           # a model's output on it beyond this (pixels are 0 to 1) is a broken model


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
    clip: ClipRecord            # the training clip: LR size, frames, fps, source
    training: TrainingRecord = field(default_factory=TrainingRecord)
    router: RouterState | None = None
    colour: Colour | None = None  # how the training pair was read; None in bundles made before it was recorded
    weight_storage: str = WEIGHTS[0]  # how `save` stores the weights (one of WEIGHTS)
    mapping: Mapping | None = None  # the training LR on the HR grid; None given: the plain one (HR = s x LR)

    def __post_init__(self) -> None:
        if self.mapping is None:
            w, h = self.clip.width, self.clip.height
            self.mapping = Mapping.plain(w, h, w * self.scale, h * self.scale)

    @property
    def chunks(self) -> int:
        return len(self.archs)

    @property
    def planes(self) -> int:
        """3: the models upscale RGB; 1: they upscale luma (Y, read with the bundle's colour matrix)."""
        return self.archs[0].planes

    @property
    def grid(self) -> Grid:
        return Grid(self.clip.width, self.clip.height, self.patch_width, self.patch_height)

    def manifest(self) -> Manifest:
        """The manifest this bundle is written with."""
        return Manifest(
            scale=self.scale, patch=PatchRecord(self.patch_width, self.patch_height),
            grid=GridRecord(int(self.labels.shape[1]), int(self.labels.shape[2])), chunks=self.chunks,
            models=list(self.archs), thresholds=[float(t) for t in self.thresholds], clip=self.clip,
            training=self.training, router=self.router.manifest() if self.router else None,
            storage=Storage.of(self.weight_storage, per_frame=self.chunks > 1), mapping=self.mapping,
            colour=self.colour.to_manifest() if self.colour else None)

    def build_models(self) -> list[WDSR]:
        return [from_plain(arch, state).eval() for arch, state in zip(self.archs, self.weights)]


def save(bundle: Bundle, path: str | Path) -> None:
    """Write the bundle atomically: a temp file in the same folder, fsync, then rename over `path`."""
    write_atomic(Path(path), to_bytes(bundle))


def to_bytes(bundle: Bundle) -> bytes:
    """The bundle file's bytes; its manifest is first read back as a loader reads it, so that no bundle is written
    that would not load (ValueError naming the field)."""
    try:
        m = bundle.manifest()  # checks the rules between the parts (and the weight storage) as it is built
        text = json.dumps(schema.builtins(m))
        manifest_io.parse(json.loads(text))  # and the ranges of every field, as a loader reads them
    except ValueError as e:
        raise ValueError(f"refusing to write a bundle that would not load: {e}") from None
    tensors: dict[str, np.ndarray] = {}
    if m.storage.per_frame:
        tensors = {"labels": packing.deflated(np.ascontiguousarray(bundle.labels, dtype=np.uint8).tobytes()),
                   "psnr": np.ascontiguousarray(bundle.psnr, dtype=np.float32),
                   "fingerprints": packing.delta8(bundle.fingerprints)}
    for i, (arch, state) in enumerate(zip(bundle.archs, bundle.weights)):
        tensors[f"{MODEL}{i}"] = packing.packed(i, arch, state, bundle.weight_storage)
    if bundle.router:
        tensors |= {f"{ROUTER}{name}": t for name, t in bundle.router.state().items()}
    return st_save(tensors, metadata={"stdo": text})


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
    """The JSON manifest from a safetensors header, read without touching the tensors (not yet checked: see
    manifest.parse)."""
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
    if not str(path):  # Path("") is ".", the current folder
        raise BundleError("no bundle path given; give the path of a .stdo file")
    path = Path(path)
    if path.is_dir():
        raise BundleError(f"bundle {str(path)!r} is a directory; give the path of a .stdo file")
    if path.exists() and not path.is_file():
        raise BundleError(f"bundle {str(path)!r} is not a regular file (a device, FIFO or socket); give the path "
                          f"of a .stdo file")
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
    try:
        m = manifest_io.parse(read_manifest(data))
    except BundleError:
        raise
    except ValueError as e:
        raise BundleError(str(e)) from None
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, TypeError) as e:
        raise BundleError(f"tensor data is damaged: {e}") from None
    grid = Grid(m.clip.width, m.clip.height, m.patch.width, m.patch.height)
    labels, psnr, prints = _per_frame(tensors, m.storage, m.clip.frames, grid, m.chunks)
    weights = []
    for i, arch in enumerate(m.models):
        expected = packing.param_shapes(arch)
        tensors |= packing.unpacked(tensors, i, expected, m.storage.weights)
        weights.append({name: torch.from_numpy(packing.loaded_weight(tensors, i, name, shape, m.storage.weights))
                        for name, shape in expected.items()})
    router = None
    if m.router is not None:
        try:
            router = RouterState.from_state(m.router, {n[len(ROUTER):]: t for n, t in tensors.items()
                                                       if n.startswith(ROUTER)}, m.chunks)
        except ValueError as e:
            raise BundleError(f"blind router: {e}") from None
    known = {f"{MODEL}{i}.{n}" for i, w in enumerate(weights) for n in w}
    known |= set(PER_FRAME if m.storage.per_frame else ())
    if m.storage.weights.startswith("int"):
        known |= {f"{QSCALE}{i}.{n}" for i, w in enumerate(weights) for n, t in w.items() if t.ndim > 1}
    known |= {f"{ROUTER}{n}" for n in (router.tensors if router else ())}
    extra = sorted(set(tensors) - known)
    if extra:
        raise BundleError(f"unexpected tensors {extra[:5]}; the file does not match its manifest")
    for i, (arch, state) in enumerate(zip(m.models, weights)):
        check_output(i, arch, state)
    return Bundle(m.scale, m.patch.width, m.patch.height, m.models, weights, labels, psnr, prints, m.thresholds,
                  m.clip, m.training, router, colour=Colour.from_manifest(m.colour) if m.colour else None,
                  weight_storage=m.storage.weights, mapping=m.mapping)


def probe(planes: int) -> torch.Tensor:
    """The patch every loaded model is run on once: mid-grey plus a diagonal ramp, (1, planes, 16, 16)."""
    ramp = torch.linspace(-0.25, 0.25, PROBE)
    return (0.5 + ramp[:, None] / 2 + ramp[None, :] / 2).expand(1, planes, PROBE, PROBE).contiguous()


def check_output(i: int, arch: Arch, state: dict[str, torch.Tensor]) -> None:
    """Refuse a model whose output on the probe patch is not finite or absurd (beyond +-MAX_OUTPUT): weights can
    be finite each and still overflow float32 together (huge values), which would play as black or NaN frames."""
    with torch.inference_mode():
        out = from_plain(arch, state).eval()(probe(arch.planes))
    if not torch.isfinite(out).all() or out.abs().max() > MAX_OUTPUT:
        peak = out.abs().max().item()
        raise BundleError(f"model {i} outputs {'non-finite values' if not math.isfinite(peak) else f'{peak:.3g}'} "
                          f"on a grey test patch (pixel values are 0 to 1): its weights are damaged or its "
                          f"training diverged; retrain the bundle")


def _per_frame(tensors: dict[str, np.ndarray], st: Storage, frames: int, grid: Grid,
               k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The routing data (labels, psnr, fingerprints) as stored; zero frames where none is stored."""
    if not st.per_frame:
        none = (0, grid.rows, grid.cols)
        return np.zeros(none, np.uint8), np.zeros(none, np.float32), np.zeros((0, CELLS * CELLS), np.float32)
    shape = (frames, grid.rows, grid.cols)
    labels = packing.inflated(tensors.get("labels"), shape, "labels")
    if labels.size and labels.max() >= k:
        raise BundleError(f"labels name chunk {int(labels.max())} but the bundle has {k} chunks")
    psnr = packing.tensor(tensors, "psnr", np.float32, shape).copy()
    prints = packing.undelta8(packing.inflated(tensors.get("fingerprints"), (frames, CELLS * CELLS), "fingerprints"))
    return labels, psnr, prints
