"""Reading video for training and evaluation: open a file or .vpy, make the HR/LR pair, get frames."""
from __future__ import annotations

import runpy
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import vapoursynth as vs

from . import colour
from .mapping import Mapping
from .usage import UsageError

# name -> (resize function, its kernel parameters). "bicubic" is Catmull-Rom (b=0, c=0.5), the cubic of
# MATLAB's imresize that made the paper's LR data; like imresize, zimg widens kernels when downscaling.
KERNELS: dict[str, tuple[str, dict[str, float]]] = {
    "bicubic": ("Bicubic", {"filter_param_a": 0, "filter_param_b": 0.5}),
    "lanczos": ("Lanczos", {"filter_param_a": 3}),
    "spline36": ("Spline36", {}),
    "bilinear": ("Bilinear", {}),
    "point": ("Point", {}),
}


def open_clip(path: str | Path, what: str = "input") -> vs.VideoNode:
    """A clip from a video file (through BestSource) or from output 0 of a .vpy script."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a directory; give the path of a video file or a .vpy script")
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist; give the path of a video file or a .vpy script")
    if path.suffix == ".vpy":
        clip = run_script(path)
    elif not hasattr(vs.core, "bs"):
        raise RuntimeError("the BestSource plugin is missing; install vapoursynth-bestsource (scripts/setup.sh does)")
    else:
        try:
            clip = vs.core.bs.VideoSource(str(path))
        except vs.Error as e:
            raise ValueError(f"cannot read {path} as video: {e}") from e
    if clip.format is None or clip.format.color_family == vs.UNDEFINED or not clip.width or not clip.height:
        raise ValueError(f"{what} {path} has a variable format or frame size (e.g. from std.Splice(mismatch=True)), "
                         f"but the clip must have a constant format and size; convert it first, e.g. with "
                         f"resize.Bicubic(format=..., width=..., height=...)")
    return clip


def run_script(path: Path) -> vs.VideoNode:
    """Output 0 of a .vpy script; an error in the script is reported at the script's own line."""
    vs.clear_outputs()
    try:
        runpy.run_path(str(path), run_name="__vapoursynth__")
    except Exception as e:
        if isinstance(e, SyntaxError) and e.filename == str(path):
            line = e.lineno
        else:
            line = next((f.lineno for f in reversed(traceback.extract_tb(e.__traceback__))
                         if f.filename == str(path)), None)
        where = f"{path}, line {line}" if line else str(path)
        raise ValueError(f"error in the script {where}: {type(e).__name__}: {e}") from e
    out = vs.get_outputs().get(0)
    if not isinstance(out, vs.VideoOutputTuple):
        raise ValueError(f"{path} sets no video output 0; end the script with clip.set_output()")
    return out.clip


def parse_frames(frames: str | None) -> slice:
    """A `START:END` selection as a slice (Python slice semantics: END exclusive, either side may be
    empty or negative; None or "" is everything)."""
    if not frames:
        return slice(None)
    try:
        start, end = frames.split(":")
        return slice(int(start) if start else None, int(end) if end else None)
    except ValueError:
        raise UsageError(f"--frames must look like START:END (e.g. 0:60), got {frames!r}") from None


def frame_range(frames: str | None, total: int) -> range:
    """The frames of a `total`-frame clip that a `START:END` selection picks; raises if none."""
    picked = range(total)[parse_frames(frames)]
    if not picked:
        raise ValueError(f"--frames {frames} selects no frames of a {total}-frame clip")
    return picked


def pick(clip: vs.VideoNode, frames: Sequence[int]) -> vs.VideoNode:
    """The given frames of `clip`, in that order, as one clip (one node, not a node per frame; a range is a slice)."""
    if isinstance(frames, range):
        return clip[frames.start:frames.stop:frames.step]
    frames = [int(f) for f in frames]
    base = vs.core.std.BlankClip(clip, length=len(frames))
    return base.std.FrameEval(lambda n: clip[frames[n]])


def select_frames(clip: vs.VideoNode, frames: str | None) -> vs.VideoNode:
    """Apply a `START:END` selection (see frame_range)."""
    picked = frame_range(frames, clip.num_frames)
    return clip[picked.start:picked.stop]


def resize(clip: vs.VideoNode, width: int, height: int, kernel: str) -> vs.VideoNode:
    """Resize with one of KERNELS."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    name, params = KERNELS[kernel]
    return getattr(vs.core.resize, name)(clip, width=width, height=height, **params)


def crop_to_multiple(clip: vs.VideoNode, scale: int) -> vs.VideoNode:
    """Crop right/bottom so both sides divide by the scale (at most scale-1 pixels each)."""
    w, h = clip.width - clip.width % scale, clip.height - clip.height % scale
    return clip if (w, h) == (clip.width, clip.height) else clip.std.Crop(right=clip.width - w, bottom=clip.height - h)


def hr_lr_pair(hr: vs.VideoNode, scale: int, lr: vs.VideoNode | None = None, kernel: str = "bicubic",
               pair_colour: colour.Colour | None = None,
               scale_option: str | None = "--scale") -> tuple[vs.VideoNode, vs.VideoNode]:
    """RGBS HR and LR clips, both read with the pair's one colour (`colour.pair_colour`, computed when
    not given). Without `lr`, LR is HR downscaled by `kernel` (the paper's setting). `scale_option`: the
    option an LR of the wrong size may change instead (None: the scale is fixed)."""
    if hr.width < scale or hr.height < scale:
        raise ValueError(f"the input ({hr.width}x{hr.height}) is too small for x{scale}: its LR would be "
                         f"{hr.width // scale}x{hr.height // scale} pixels; give a larger clip"
                         + (f" or a smaller {scale_option}" if scale_option else ""))
    if lr is not None:
        want = (hr.width // scale, hr.height // scale)
        if (lr.width, lr.height) != want:
            raise ValueError(f"the LR clip is {lr.width}x{lr.height} but HR {hr.width}x{hr.height} at x{scale} "
                             f"needs {want[0]}x{want[1]}; give an LR encode of that size"
                             + (f" or change {scale_option}" if scale_option else ""))
        if lr.num_frames != hr.num_frames:
            raise ValueError(f"the LR clip has {lr.num_frames} frames and HR has {hr.num_frames}; they must match")
    c = pair_colour or colour.pair_colour(hr, lr)
    hr_rgb = crop_to_multiple(colour.clip_to_rgbs(hr, c), scale)  # RGB: any crop, even where chroma is subsampled
    if lr is None:
        return hr_rgb, resize(hr_rgb, hr_rgb.width // scale, hr_rgb.height // scale, kernel)
    return hr_rgb, colour.clip_to_rgbs(lr, c)


def check_lengths(hr: vs.VideoNode, lr: vs.VideoNode) -> None:
    """Refuse an HR/LR pair of whole clips whose frame counts differ: frame n of one must be frame n of the
    other, and a cut (--frames) of both would pair other frames without a word."""
    if lr.num_frames != hr.num_frames:
        raise ValueError(f"the LR file has {lr.num_frames} frames and the input has {hr.num_frames}; they must "
                         f"match frame for frame (trim the longer one, e.g. with std.Trim in a .vpy)")


def check_progressive(clip: vs.VideoNode, what: str) -> None:
    """Refuse a clip whose first frame is tagged interlaced (_FieldBased 1 or 2): its fields would be upscaled
    as one picture."""
    fields = clip.get_frame(0).props.get("_FieldBased", 0)
    if fields in (1, 2):
        raise ValueError(f"the {what} is interlaced (_FieldBased={fields}, "
                         f"{'bottom' if fields == 1 else 'top'} field first); deinterlace (or IVTC) it first, e.g. "
                         f"with QTGMC or vivtc.VFM + VDecimate in a .vpy")


@dataclass
class Pair:
    """What a command line's input and optional LR file give: `source` (the whole input), `hr` and
    `lr` (RGBS, the paired frames), `colour` (how the LR is read: the pair's one colour, or a remaster LR's
    own), `lr_clip` (the LR file's frames in their own format, or `lr` where there is no LR file), `mapping`
    (where the LR lies on the HR grid: plain for a whole-scale pair) and `frames` (the input's frame number of
    each pair)."""

    source: vs.VideoNode
    hr: vs.VideoNode
    lr: vs.VideoNode
    colour: colour.Colour
    lr_clip: vs.VideoNode
    mapping: Mapping
    frames: list[int]


def open_pair(input: str | Path, lr: str | Path | None, frames: str | None, scale: int, kernel: str = "bicubic",
              scale_option: str | None = "--scale") -> Pair:
    """The whole-scale HR/LR pair of a command line: the input and optional LR file cut to `frames`."""
    src = open_clip(input)
    check_progressive(src, "input")
    lr_whole = open_clip(lr, "LR file") if lr else None
    if lr_whole is not None:
        check_progressive(lr_whole, "LR file")
    return whole_pair(src, lr_whole, frames, scale, kernel, scale_option)


def whole_pair(src: vs.VideoNode, lr_whole: vs.VideoNode | None, frames: str | None, scale: int,
               kernel: str = "bicubic", scale_option: str | None = "--scale") -> Pair:
    """The pair of an opened input and optional LR clip that is `scale` times smaller, frame for frame (without
    one, the input downscaled by `kernel`), both cut to `frames`; its mapping is the plain one."""
    hr = select_frames(src, frames)
    lr_src = select_frames(lr_whole, frames) if lr_whole is not None else None
    c = colour.pair_colour(hr, lr_src)
    hr_clip, lr_clip = hr_lr_pair(hr, scale, lr_src, kernel, c, scale_option)
    if lr_whole is not None:
        check_lengths(src, lr_whole)  # on the whole clips: a cut of both could pair other frames
    mapping = Mapping.plain(lr_clip.width, lr_clip.height, hr_clip.width, hr_clip.height)
    return Pair(src, hr_clip, lr_clip, c, lr_clip if lr_src is None else lr_src, mapping,
                list(frame_range(frames, src.num_frames)))


def frame_array(frame: vs.VideoFrame) -> np.ndarray:
    """A (planes, H, W) float32 copy of an RGBS frame."""
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)])


def arrays(clip: vs.VideoNode) -> Iterator[np.ndarray]:
    """Frames of an RGBS clip as arrays, decoded ahead in parallel by VapourSynth."""
    for frame in clip.frames(close=True):
        yield frame_array(frame)
