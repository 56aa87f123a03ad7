"""Black bars: the letterbox of a 16:9 picture in a 4:3 DVD, the pillars of a 4:3 show on a 16:9 Blu-ray, the
few black columns at a DVD's edges. They are no part of the picture: the alignment compares pictures, the loss
is taken inside them, and the output shows black where the HR has its bars.

Found on full frames sampled evenly over the clip: a row (or column) is a bar when its bright end (the 98th
percentile of its luma) stays below DARK in nearly every sampled frame that shows anything, so MPEG-2 noise,
a little lift and the odd subtitle in a bar do not hide it, and a dark scene does not make one. Bars are the
runs of such rows from each edge of the frame. The LR's are widened by a pixel (the soft edge a downscale
leaves) and rounded up to its chroma subsampling, so that the picture the models' output is cut to is one a
YUV clip can be cropped to as well."""
from __future__ import annotations

import numpy as np
import vapoursynth as vs

from vs_stdo.core.colour import common_luma
from vs_stdo.core.mapping import NO_BARS, Box, to_multiple

SAMPLES = 24  # full frames sampled over the clip
DARK = 0.1  # luma (0 black, 1 white) a bar's bright end stays below
SHARE = 0.9  # the share of the sampled frames (those showing anything) a bar row must be dark in
BLANK = 0.02  # a frame whose luma spans less than this (2nd to 98th percentile) shows nothing
LEAST_PICTURE = 0.25  # bars leave at least this share of each side of the frame, else none are taken


def multiple(clip: vs.VideoNode) -> tuple[int, int]:
    """The clip's chroma subsampling as (x, y) multiples its crops must be."""
    return 1 << clip.format.subsampling_w, 1 << clip.format.subsampling_h


def sample(clip: vs.VideoNode, n: int = SAMPLES) -> np.ndarray:
    """n frames' luma spread evenly over the clip (frames, height, width), float32."""
    luma = common_luma(clip)
    picks = np.unique(np.linspace(0, clip.num_frames - 1, min(n, clip.num_frames)).round().astype(int))
    return np.stack([np.asarray(luma.get_frame(int(k))[0], np.float32) for k in picks])


def showing(frames: np.ndarray) -> np.ndarray:
    """Which frames show anything (their luma is not one flat level)."""
    lo, hi = np.percentile(frames.reshape(len(frames), -1), [2, 98], axis=1)
    return hi - lo >= BLANK


def _run(dark: np.ndarray) -> int:
    """How many leading entries are True."""
    return int(np.argmin(dark)) if not dark.all() else len(dark)


def bars_of(frames: np.ndarray) -> Box:
    """The bars (left, right, top, bottom pixels) of frames (n, height, width) of one clip, sampled over it;
    none when no frame shows anything or the bars would leave under LEAST_PICTURE of a side."""
    shown = frames[showing(frames)]
    if not len(shown):
        return NO_BARS
    rows = np.quantile(np.percentile(shown, 98, axis=2), SHARE, axis=0) < DARK  # (height,)
    cols = np.quantile(np.percentile(shown, 98, axis=1), SHARE, axis=0) < DARK  # (width,)
    left, right, top, bottom = _run(cols), _run(cols[::-1]), _run(rows), _run(rows[::-1])
    h, w = frames.shape[1:]
    if w - left - right < LEAST_PICTURE * w:
        left = right = 0
    if h - top - bottom < LEAST_PICTURE * h:
        top = bottom = 0
    return left, right, top, bottom


def widened(bars: Box, step: tuple[int, int], soft: int = 1) -> Box:
    """Bars grown by `soft` pixels where there are any, each rounded up to a multiple of step (x, y)."""
    return to_multiple(tuple(b + soft if b else 0 for b in bars), step, up=True)


def check(bars: Box, clip: vs.VideoNode, side: str) -> Box:
    """Bars given for a clip, checked: ValueError unless they leave a picture."""
    left, right, top, bottom = bars
    if min(bars) < 0 or left + right >= clip.width or top + bottom >= clip.height:
        raise ValueError(f"--{side.lower()}-bars {left},{right},{top},{bottom} leave no picture in the "
                         f"{clip.width}x{clip.height} {side}")
    return tuple(bars)
