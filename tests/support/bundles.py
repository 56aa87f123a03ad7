"""Bundles and clips with known content for tests: hand-built models (bicubic + an offset, random weights), bundles
around them, flat clips, and a bundle's bytes edited in place."""
from __future__ import annotations

import json
import lzma
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import vapoursynth as vs
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from vs_stdo.core import bundle as bundle_io
from vs_stdo.core import packing
from vs_stdo.core.clip_record import ClipRecord
from vs_stdo.core.fingerprint import fingerprint
from vs_stdo.core.grid import Grid
from vs_stdo.core.models import WDSR, Arch, preset
from vs_stdo.filter.runner import bf16_runs

core = vs.core


def gray_clip(values: list[float], width: int, height: int) -> vs.VideoNode:
    """An RGBS clip of flat frames, one value per frame."""
    return core.std.Splice([core.std.BlankClip(format=vs.RGBS, width=width, height=height, length=1,
                                               color=[v] * 3) for v in values])


needs_bf16 = pytest.mark.skipif(not bf16_runs(), reason="this CPU cannot run bfloat16 convolutions (it has no "
                                                            "AVX-512, AVX-NE-CONVERT or AMX)")


def write_bundle(path: Path, models: list[WDSR], labels: np.ndarray, frames: list[torch.Tensor],
                 patch: tuple[int, int] = (16, 12)) -> Path:
    """A bundle around given models, labels (frames, rows, cols) and the LR frames they belong to."""
    h, w = frames[0].shape[-2:]
    grid = Grid(w, h, *patch)
    assert labels.shape == (len(frames), grid.rows, grid.cols)
    k = len(models)
    b = bundle_io.Bundle(
        scale=models[0].arch.scale, patch_width=patch[0], patch_height=patch[1], archs=[m.arch for m in models],
        weights=[{n: t.detach().clone() for n, t in m.state_dict().items()} for m in models],
        labels=labels.astype(np.uint8), psnr=np.zeros(labels.shape, np.float32),
        fingerprints=np.stack([fingerprint(f) for f in frames]), thresholds=[float(i) for i in range(k - 1)],
        clip=ClipRecord(w, h, len(frames), 25, 1, "test"),
        weight_storage="float32")  # the given models exactly, so that tests can compare with them
    bundle_io.save(b, path)
    return path


def rebuild(data: bytes, manifest: Callable[[dict], object] | None = None,
            tensors: Callable[[dict], object] | None = None) -> bytes:
    """A bundle's bytes re-saved after editing its manifest and/or its tensors in place."""
    m, t = bundle_io.read_manifest(data), st_load(data)
    if manifest:
        manifest(m)
    if tensors:
        tensors(t)
    return st_save(t, metadata={"stdo": json.dumps(m)})


def repacked(data: bytes, edit: Callable[[dict], object], model: int = 0) -> bytes:
    """A bundle's bytes with one model's packed stream edited: unpacked into the arrays `packing.layout` names
    (model.{i}.{param}, and qscale.{i}.{param} for integer weights), edited in place, packed again."""
    b, arrays = bundle_io.from_bytes(data), st_load(data)
    shapes = {n: tuple(t.shape) for n, t in b.weights[model].items()}
    parts = {k: v.copy() for k, v in packing.unpacked(dict(arrays), model, shapes, b.weight_storage).items()}
    edit(parts)
    stream = b"".join(parts[key].astype(dtype).tobytes() for key, dtype, _ in
                      packing.layout(model, shapes, b.weight_storage))
    arrays[f"{packing.MODEL}{model}"] = np.frombuffer(
        lzma.compress(stream, lzma.FORMAT_RAW, filters=[packing.LZMA2]), np.uint8)
    return st_save(arrays, metadata={"stdo": json.dumps(bundle_io.read_manifest(data))})


def offset_model(scale: int, offset: float) -> WDSR:
    """A model whose output is bicubic + offset everywhere (through the skip conv's bias)."""
    m = WDSR(preset("tiny", scale))
    with torch.no_grad():
        m.skip.bias.fill_(offset)
    return m


def huge_model(scale: int = 2) -> WDSR:
    """A model whose weights are each finite but whose sums overflow float32: it outputs inf."""
    m = offset_model(scale, 0.0)
    with torch.no_grad():
        m.head.weight.fill_(3e38)
        m.tail.weight.fill_(1.0)
    return m


def random_model(arch: Arch | int, seed: int = 0) -> WDSR:
    """A model with every weight random (no zero layers), so it really mixes its receptive field; `arch` is an
    architecture or a scale (the tiny preset)."""
    torch.manual_seed(seed)
    m = WDSR(preset("tiny", arch) if isinstance(arch, int) else arch)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.05)
    return m.eval()



def micro(scale: int, offset: float = 0.0, channel: int | None = None) -> WDSR:
    """A cheap model whose output is bicubic + offset, on one RGB channel or on all three."""
    m = WDSR(Arch(scale=scale, blocks=1, channels=4, expansion=1))
    with torch.no_grad():
        bias = m.skip.bias.view(3, scale * scale)
        (bias if channel is None else bias[channel]).fill_(offset)
    return m
