"""What the alignment reads of a clip: every frame as a small normalised luma thumbnail (one pass), and the
full-size luma of the few frames the spatial refinement fits. Luma on a common footing (`colour.common_luma`),
so that a BT.601 DVD and a BT.709 Blu-ray compare like for like."""
from __future__ import annotations

import numpy as np
import vapoursynth as vs
from tqdm import tqdm

from vs_stdo.core.colour import common_luma


def normalise(x: np.ndarray) -> np.ndarray:
    """Each frame (last two axes) to zero mean and unit variance (flat frames stay zero)."""
    x = x.astype(np.float32)
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    return x / np.maximum(x.std(axis=(-2, -1), keepdims=True), 1e-6)


def read_thumbnails(clip: vs.VideoNode, width: int, height: int, desc: str) -> np.ndarray:
    """All frames of `clip` as normalised luma thumbnails (frames, height, width), float16 to spare memory."""
    node = common_luma(clip, width, height)
    out = np.empty((clip.num_frames, height, width), np.float16)
    for n, frame in enumerate(tqdm(node.frames(), total=clip.num_frames, desc=desc, unit="fr", leave=False)):
        out[n] = normalise(np.asarray(frame[0]))
    return out


def read_frame(clip: vs.VideoNode, n: int) -> np.ndarray:
    """One frame's luma at full size (float32)."""
    return np.array(common_luma(clip).get_frame(n)[0], np.float32)
