"""Reading video for training and evaluation: open a file or .vpy, make the HR/LR pair, get frames."""
from __future__ import annotations

import runpy
from pathlib import Path
from typing import Iterator

import numpy as np
import vapoursynth as vs

from . import colour

KERNELS = ("bicubic", "lanczos", "spline36", "bilinear", "point")


def open_clip(path: str | Path) -> vs.VideoNode:
    """A clip from a video file (through BestSource) or from output 0 of a .vpy script."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input {str(path)!r} does not exist; give the path of a video file or a .vpy script")
    if path.suffix == ".vpy":
        vs.clear_outputs()
        runpy.run_path(str(path), run_name="__vapoursynth__")
        out = vs.get_outputs().get(0)
        if not isinstance(out, vs.VideoOutputTuple):
            raise ValueError(f"{path} sets no video output 0; end the script with clip.set_output()")
        return out.clip
    if not hasattr(vs.core, "bs"):
        raise RuntimeError("the BestSource plugin is missing; install vapoursynth-bestsource (scripts/setup.sh does)")
    try:
        return vs.core.bs.VideoSource(str(path))
    except vs.Error as e:
        raise ValueError(f"cannot read {path} as video: {e}") from e


def select_frames(clip: vs.VideoNode, frames: str | None) -> vs.VideoNode:
    """Apply a `START:END` selection (Python slice semantics, END exclusive, either may be empty)."""
    if not frames:
        return clip
    try:
        start_s, end_s = frames.split(":")
        start = int(start_s) if start_s else None
        end = int(end_s) if end_s else None
    except ValueError:
        raise ValueError(f"--frames must look like START:END (e.g. 0:60), got {frames!r}") from None
    picked = clip[start:end]
    if picked.num_frames == 0:
        raise ValueError(f"--frames {frames} selects no frames of a {clip.num_frames}-frame clip")
    return picked


def resize(clip: vs.VideoNode, width: int, height: int, kernel: str) -> vs.VideoNode:
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    fn = {"bicubic": vs.core.resize.Bicubic, "lanczos": vs.core.resize.Lanczos, "spline36": vs.core.resize.Spline36,
          "bilinear": vs.core.resize.Bilinear, "point": vs.core.resize.Point}[kernel]
    return fn(clip, width=width, height=height)


def crop_to_multiple(clip: vs.VideoNode, scale: int) -> vs.VideoNode:
    """Crop right/bottom so both sides divide by the scale (at most scale-1 pixels each)."""
    w, h = clip.width - clip.width % scale, clip.height - clip.height % scale
    return clip if (w, h) == (clip.width, clip.height) else clip.std.Crop(right=clip.width - w, bottom=clip.height - h)


def hr_lr_pair(hr: vs.VideoNode, scale: int, lr: vs.VideoNode | None = None,
               kernel: str = "bicubic") -> tuple[vs.VideoNode, vs.VideoNode]:
    """RGBS HR and LR clips. Without `lr`, LR is HR downscaled by `kernel` (the paper's setting)."""
    hr_rgb = colour.clip_to_rgbs(crop_to_multiple(hr, scale))
    if lr is None:
        return hr_rgb, resize(hr_rgb, hr_rgb.width // scale, hr_rgb.height // scale, kernel)
    want = (hr_rgb.width // scale, hr_rgb.height // scale)
    if (lr.width, lr.height) != want:
        raise ValueError(f"the LR clip is {lr.width}x{lr.height} but HR {hr.width}x{hr.height} at x{scale} "
                         f"needs {want[0]}x{want[1]}; give an LR encode of that size or change --scale")
    if lr.num_frames != hr.num_frames:
        raise ValueError(f"the LR clip has {lr.num_frames} frames and HR has {hr.num_frames}; they must match")
    return hr_rgb, colour.clip_to_rgbs(lr)


def frame_array(frame: vs.VideoFrame) -> np.ndarray:
    """A (planes, H, W) float32 copy of an RGBS frame."""
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)])


def arrays(clip: vs.VideoNode) -> Iterator[np.ndarray]:
    """Frames of an RGBS clip as arrays, decoded ahead in parallel by VapourSynth."""
    for frame in clip.frames(close=True):
        yield frame_array(frame)
