"""Checks that run before the long work: refuse early what would destroy a file or fail hours later.

`stdo train` calls `check_bundle_output` before it opens any video, and `check_training` (through
train.check_data) once the size of the data is known and before a frame is decoded; `stdo eval`
calls `check_writable` for its report. Each refusal is one line that names the fix.

Memory: a training step's peak is estimated from the model, batch, patch and scale
(`step_bytes`, checked against real peak RSS in docs/training.md) and compared, with a safety
factor, with the memory the device has free: MemAvailable (within the cgroup's limit) on the CPU,
torch.cuda.mem_get_info on CUDA. On the CPU the decoded frames must fit too.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..core import bundle as bundle_io
from ..core.device import pick_device
from ..core.fingerprint import CELLS
from ..core.models import WDSR, Arch

if TYPE_CHECKING:
    from . import Settings

GB = 1 << 30
SAFETY = 1.2       # step_bytes is 1.3-1.7x the measured peak (docs/training.md); this adds a margin for threads
LIBRARIES = GB     # host memory that decoder caches and torch take besides the frames while training


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (same resolved path, or the same inode through a link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_writable(path: str | Path, reads: dict[str, str | Path | None], option: str) -> None:
    """Refuse an output path that is a file the run reads (`reads`: what it is -> its path, or None), a
    directory, or in a missing or unwritable folder."""
    path = Path(path)
    for what, read in reads.items():
        if read and same_file(path, Path(read)):
            raise ValueError(f"{option} {path} is {what} of this run; writing there would destroy it: "
                             f"choose another {option} file name")
    if path.is_dir():
        raise ValueError(f"{option} {path} is a directory; give a file name in it, e.g. {path / 'video.stdo'}")
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"{option} {path}: the folder {folder} does not exist; create it (mkdir -p {folder}) "
                         f"or choose another {option}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: cannot write in the folder {folder} (permission denied); "
                         f"choose a folder you can write to")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{option} {path} exists and is read-only; choose another {option} or change its permissions")


def is_bundle(path: Path) -> bool:
    """Whether a file starts with an STDO bundle's header (reads the header only)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            if not 0 < n <= bundle_io.MAX_HEADER:
                return False
            bundle_io.read_manifest(head + f.read(n))
            return True
    except (OSError, bundle_io.BundleError):
        return False


def check_bundle_output(path: str | Path, reads: dict[str, str | Path | None], force: bool) -> None:
    """`stdo train -o`: as check_writable, and never overwrite a file that is not a bundle, nor an
    existing bundle without `force`."""
    path = Path(path)
    check_writable(path, reads, "-o")
    if not path.exists():
        return
    if not is_bundle(path):
        raise ValueError(f"-o {path} exists and is not an STDO bundle; refusing to overwrite it: "
                         f"choose another -o file name")
    if not force:
        raise ValueError(f"-o {path} already holds a bundle of an earlier run; add --force to replace it, "
                         f"or choose another -o file name")


def step_bytes(arch: Arch, batch: int, patch_width: int, patch_height: int, context: int) -> int:
    """Estimated memory of one training step of a model: activations kept for the backward pass, their
    gradients and the batch tensors (float32)."""
    s2 = arch.scale ** 2
    c, wide = arch.channels, arch.channels * arch.expansion
    lr_pixels = (patch_width + 2 * context) * (patch_height + 2 * context)
    hr_pixels = patch_width * patch_height * s2
    # per LR pixel: head, each block's expansion, ReLU, reduction and sum, one wide gradient; the tail, skip,
    # bicubic base, two sums and the output (3*s^2 values each)
    per_lr_pixel = c + arch.blocks * (2 * wide + 2 * c) + 2 * wide + 6 * 3 * s2
    per_hr_pixel = 5 * 3  # target, prediction, its copy, the loss gradient, the stitched output
    return 4 * batch * (lr_pixels * per_lr_pixel + hr_pixels * per_hr_pixel)


def frames_bytes(width: int, height: int, frames: int, scale: int) -> int:
    """Memory of decoded training frames: LR float32 RGB plus HR 8-bit RGB (dataset.load_frames)."""
    return frames * 3 * width * height * (4 + scale * scale)


def free_memory(device: torch.device) -> int:
    """Bytes the device can still give: free CUDA memory, or on the CPU MemAvailable (within the cgroup's limit)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    free = meminfo_available()
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            free = min(free, int(limit) - used)
    except (OSError, ValueError):
        pass
    return free


def meminfo_available() -> int:
    """MemAvailable of /proc/meminfo in bytes (a huge number where there is none: no check then)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return sys.maxsize


def require(need: float, device: torch.device, what: str, fix: str) -> None:
    """Raise when `need` bytes exceed what `device` has free."""
    free = free_memory(device)
    if need > free:
        raise ValueError(f"{what} needs about {need / GB:.1f} GB but {device} has {free / GB:.1f} GB free; {fix}")


def check_training(s: Settings, width: int, height: int, frames: int, decoded: bool) -> None:
    """Raise when a training step at `s.batch` (with the `frames` of width x height LR, unless already `decoded`)
    cannot fit in the memory of the run's device."""
    step = SAFETY * max(step_bytes(a, s.batch, s.patch_width, s.patch_height, s.train_context()) for a in s.archs())
    host = 0 if decoded else frames_bytes(width, height, frames, s.scale) + LIBRARIES
    device = pick_device(s.device)
    require(host, torch.device("cpu"), f"decoding the {frames} frames", "lower --frame-memory or --train-frames, or select fewer --frames")
    on_host = host if device.type == "cpu" else 0
    require(step + on_host, device, f"a training step at --batch {s.batch} --patch {s.patch_width}x{s.patch_height}"
            + (" besides the decoded frames" if on_host else ""),
            "lower --batch or --patch" + (", or train with --device cpu" if device.type == "cuda" else ""))


def check_disk(s: Settings, output: str | Path, frames: int, cells: int) -> int:
    """Refuse when the folder of `output` cannot hold what the run writes there: the checkpoint (float32
    weights and two Adam moments of every model, written next to the previous one before it replaces it)
    and the bundle (weights, and per frame its labels, PSNR and fingerprint). Returns the bytes needed."""
    with torch.device("meta"):
        params = [sum(p.numel() for p in WDSR(arch).parameters()) for arch in s.chunk_archs()]
    checkpoint = 2 * 3 * 4 * (sum(params) + params[0])
    bundle = 4 * sum(params) + frames * (cells * 5 + CELLS * CELLS * 2) + (1 << 20)
    folder = Path(output).resolve().parent
    free = shutil.disk_usage(folder).free
    if checkpoint + bundle > free:
        raise ValueError(f"-o {output}: the run writes about {(checkpoint + bundle) / (1 << 20):.0f} MB to {folder} "
                         f"(checkpoint and bundle) but it has {free / (1 << 20):.0f} MB free; free some space or "
                         f"choose another -o folder")
    return checkpoint + bundle
