"""How a bundle's parts are encoded: weights cast or quantised to intN with a scale per output channel, each model's
parameters packed into one raw-LZMA2 stream, routing data deflated, fingerprints delta-coded. Every decoder checks
what it reads (dtype, shape, range, exact stream length), because a bundle file is untrusted input.
"""
from __future__ import annotations

import lzma
import math
import zlib

import numpy as np
import torch

from .models import WDSR, Arch

MODEL = "model."           # prefix of the models' tensors: model.{i} (packed) or model.{i}.{param}
QSCALE = "qscale."         # prefix of the per-output-channel scales of integer weights
WEIGHTS = ("float16", "float32", "int8", "int7", "int6", "int5", "int4")  # how weights can be stored; first: default
MAX_BYTES = 1 << 30        # no honest bundle comes near this; refuse before reading it
# Raw LZMA2 (no .xz container): the reader names the dictionary, so a stream cannot make it allocate more.
# Its range coder spends fractional bits, which deflate's Huffman codes cannot: int6 weights take 4 % less.
LZMA2 = {"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20}


class BundleError(ValueError):
    """A bundle file that cannot be used, with the reason."""


def packed(i: int, arch: Arch, state: dict[str, torch.Tensor], weights: str) -> np.ndarray:
    """Model i's parameters as stored: one raw-LZMA2 1-dim uint8 tensor of its `layout` (see `unpacked`)."""
    shapes = param_shapes(arch)
    if {name: tuple(t.shape) for name, t in state.items()} != shapes:
        raise ValueError(f"model {i}'s weights do not match its architecture {arch}")
    stored: dict[str, np.ndarray] = {}
    for name, t in state.items():
        stored |= stored_weight(f"{MODEL}{i}.{name}", f"{QSCALE}{i}.{name}", t.detach().cpu().float().numpy(), weights)
    stream = b"".join(stored[key].tobytes() for key, _, _ in layout(i, shapes, weights))
    return np.frombuffer(lzma.compress(stream, lzma.FORMAT_RAW, filters=[LZMA2 | {"preset": 9 | lzma.PRESET_EXTREME}]),
                         np.uint8)


def delta8(prints: np.ndarray) -> np.ndarray:
    """Fingerprints as stored ("delta8"): 1/255 steps, frame-to-frame differences (consecutive frames are
    alike, so these are mostly zeros), deflated."""
    q = np.rint(np.clip(prints, 0, 1) * 255).astype(np.uint8)
    diff = np.diff(q, axis=0, prepend=np.zeros((1, q.shape[1]), np.uint8))  # uint8: wraps mod 256
    return deflated(diff.tobytes())


def deflated(data: bytes) -> np.ndarray:
    """Bytes zlib-deflated into a 1-dim uint8 tensor (see `inflated`)."""
    return np.frombuffer(zlib.compress(data, 9), np.uint8)


def param_shapes(arch: Arch) -> dict[str, tuple[int, ...]]:
    """The shape of each parameter of a model of `arch`, in its state-dict order: the order of a packed
    stream, whatever order the saved state came in (training's folded weights come biases first)."""
    with torch.device("meta"):  # shapes only: a hostile manifest must not make us allocate
        return {name: tuple(t.shape) for name, t in WDSR(arch).state_dict().items()}


def layout(i: int, shapes: dict[str, tuple[int, ...]], weights: str) -> list[tuple[str, np.dtype, tuple[int, ...]]]:
    """The arrays model i's parameters are stored as, in the order of its packed stream: each parameter's
    values (state-dict order), then, for integer weights, each 2+-dim parameter's scales. Names are those of the
    per-tensor layout, so both layouts load through `loaded_weight`."""
    values = [(f"{MODEL}{i}.{n}", stored_dtype(weights, len(shape)), shape) for n, shape in shapes.items()]
    scales = [(f"{QSCALE}{i}.{n}", np.dtype(np.float32), shape[:1]) for n, shape in shapes.items()
              if weights.startswith("int") and len(shape) > 1]
    return values + scales


def stored_dtype(weights: str, ndim: int) -> np.dtype:
    """intN weights of 2+ dims are int8 values within +-(2^(N-1) - 1); the rest of an integer bundle is float16."""
    return np.dtype(np.int8 if weights.startswith("int") and ndim > 1 else np.float32 if weights == "float32"
                    else np.float16)


def levels(weights: str) -> int:
    """The largest magnitude an intN weight is stored as: 127 for int8 ... 7 for int4."""
    return 2 ** (int(weights[3:]) - 1) - 1


def unpacked(tensors: dict[str, np.ndarray], i: int, shapes: dict[str, tuple[int, ...]],
              weights: str) -> dict[str, np.ndarray]:
    """Model i's packed stream (tensor `model.{i}`) as the per-tensor arrays `layout` names."""
    parts = layout(i, shapes, weights)
    clash = sorted(key for key, _, _ in parts if key in tensors)
    if clash:
        raise BundleError(f"unexpected tensors {clash[:5]}; the file does not match its manifest")
    sizes = [dtype.itemsize * math.prod(shape) for _, dtype, shape in parts]
    stream = inflated(tensors.pop(f"{MODEL}{i}", None), (sum(sizes),), f"{MODEL}{i}", "lzma2").tobytes()
    ends = np.cumsum(sizes)
    return {key: np.frombuffer(stream[end - size:end], dtype).reshape(shape)
            for (key, dtype, shape), size, end in zip(parts, sizes, ends)}


def stored_weight(name: str, scale_name: str, w: np.ndarray, weights: str) -> dict[str, np.ndarray]:
    """One weight tensor as stored: cast, or intN (int8 values) with one float32 scale per output channel (dim 0)."""
    dtype = stored_dtype(weights, w.ndim)
    if dtype != np.int8:
        return {name: w.astype(dtype)}
    top = levels(weights)
    peak = np.abs(w.reshape(len(w), -1)).max(axis=1)
    scale = np.where(peak > 0, peak / top, 1).astype(np.float32)
    q = np.clip(np.rint(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -top, top).astype(np.int8)
    return {name: q, scale_name: scale}


def tensor(tensors: dict[str, np.ndarray], name: str, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    if name not in tensors:
        raise BundleError(f"tensor {name!r} is missing")
    t = tensors[name]
    if t.dtype != dtype or t.shape != shape:
        raise BundleError(f"tensor {name!r} is {t.dtype}{list(t.shape)}, expected {np.dtype(dtype)}{list(shape)}")
    if t.dtype.kind == "f" and not np.isfinite(t).all():
        raise BundleError(f"tensor {name!r} holds NaN or infinite values")
    return t


def inflated(t: np.ndarray | None, shape: tuple[int, ...], name: str, codec: str = "zlib") -> np.ndarray:
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


def loaded_weight(tensors: dict[str, np.ndarray], i: int, name: str, shape: tuple[int, ...],
                   weights: str) -> np.ndarray:
    """Weight `name` of model i as float32, from its stored form (see `stored_weight`)."""
    key = f"{MODEL}{i}.{name}"
    dtype = stored_dtype(weights, len(shape))
    if dtype != np.int8:
        return tensor(tensors, key, dtype, shape).astype(np.float32)  # a copy: the engine owns it
    scale = tensor(tensors, f"{QSCALE}{i}.{name}", np.float32, shape[:1])
    q = tensor(tensors, key, np.int8, shape)
    if np.abs(q.astype(np.int16)).max() > levels(weights):
        raise BundleError(f"tensor {key} holds values beyond +-{levels(weights)}, the range of {weights} weights")
    with np.errstate(over="ignore"):  # an absurd scale overflows to inf, refused below
        w = q.astype(np.float32) * scale.reshape(-1, *[1] * (len(shape) - 1))
    if (scale < 0).any() or not np.isfinite(w).all():
        raise BundleError(f"tensor {QSCALE}{i}.{name} holds negative or overflowing scales")
    return w


def undelta8(diff: np.ndarray) -> np.ndarray:
    """Fingerprints from their "delta8" form (already inflated): the running sum, which wraps mod 256 too."""
    return np.cumsum(diff, axis=0, dtype=np.uint8).astype(np.float32) / 255
