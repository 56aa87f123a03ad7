"""What the alignment reads of a clip: its picture (the luma less any black bars), every frame of it as a small
normalised thumbnail (one pass), and the full-size picture of the frames the spatial refinement fits and the
pairs' figures measure. Luma on a common footing (`colour.common_luma`), so that a BT.601 DVD and a BT.709
Blu-ray compare like for like."""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import vapoursynth as vs
from tqdm import tqdm

from vs_stdo.core.colour import common_luma
from vs_stdo.core.mapping import NO_BARS, Box


def normalise(x: np.ndarray) -> np.ndarray:
    """Each frame (last two axes) to zero mean and unit variance (flat frames stay zero)."""
    x = x.astype(np.float32)
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    return x / np.maximum(x.std(axis=(-2, -1), keepdims=True), 1e-6)


def picture(clip: vs.VideoNode, bars: Box = NO_BARS) -> vs.VideoNode:
    """The clip's luma (GRAYS, `common_luma`) less its bars (left, right, top, bottom pixels)."""
    luma = common_luma(clip)
    return luma.std.Crop(*bars) if bars != NO_BARS else luma


def read_thumbnails(pic: vs.VideoNode, width: int, height: int, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """All frames of a `picture` as normalised thumbnails (frames, height, width), float16 to spare memory, and
    each thumbnail's spread before normalising (the standard deviation of its luma: near zero for a blank
    frame)."""
    node = pic.resize.Bicubic(width, height)
    out = np.empty((pic.num_frames, height, width), np.float16)
    spread = np.empty(pic.num_frames, np.float32)
    for n, frame in enumerate(tqdm(node.frames(), total=pic.num_frames, desc=desc, unit="fr", leave=False)):
        a = np.asarray(frame[0])
        spread[n] = a.std()
        out[n] = normalise(a)
    return out, spread


def picture_frame(pic: vs.VideoNode, n: int) -> np.ndarray:
    """One frame of a `picture` at full size (float32)."""
    return np.array(pic.get_frame(n)[0], np.float32)


def read_frame(clip: vs.VideoNode, n: int, bars: Box = NO_BARS) -> np.ndarray:
    """One frame of a clip's picture (less `bars`) at full size (float32)."""
    return picture_frame(picture(clip, bars), n)


def read_frames(pic: vs.VideoNode, frames: Sequence[int]) -> Iterator[np.ndarray]:
    """The given frames of a `picture` at full size (float32), in that order, read ahead in parallel."""
    if not frames:
        return
    base = vs.core.std.BlankClip(pic, length=len(frames))
    picked = base.std.FrameEval(lambda n: pic[frames[n]])
    for frame in picked.frames():
        yield np.array(frame[0], np.float32)
