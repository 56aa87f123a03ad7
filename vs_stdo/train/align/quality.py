"""How well each pair fits the one mapping, at full size: the figure people read and the shift that tells a pair
framed otherwise.

The figure is the PSNR (dB, luma) of the HR picture put on the LR grid through the mapping against the LR, after
a gain and offset fit (a BT.601 DVD against a BT.709 Blu-ray, other grading): the error the refinement
minimises, over the whole area both show. A lossless exact pair reads 50 dB and more, a DVD-like MPEG-2 one
the 30s to 40s; the same pair half an HR pixel off reads several dB lower. The shift is where phase correlation
puts the LR against that resampled HR, in HR pixels: a tenth of a pixel or so for a pair the mapping fits,
the displacement itself for a scene framed otherwise (pan and scan, another crop). Runs of pairs that sit
more than FRAMED_PX off are what `framing` reports: scenes framed otherwise, which one mapping cannot serve,
and a few frames off (a fade paired a frame wrong, a flash), which are merely left out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import vapoursynth as vs
from skimage.registration import phase_cross_correlation

from vs_stdo.core.mapping import Mapping

from .reading import read_frames
from .registration import hann, valid_range, warp

FRAMED_PX = 1.0  # a run of pairs sitting this many HR px off the mapping is framed otherwise
RUN = 5  # pairs in the running median of the shift (a lone pair's noisy correlation flags nothing)
LEAST_RUN = 3  # pairs a run framed otherwise must span to be reported
FLAT = 0.01  # a pair whose LR picture varies less than this (luma std) has no shift worth measuring
SCENE = 24  # a run of this many pairs or more framed otherwise is a scene (about a second), refused
SCENE_SHARE = 0.2  # as is a run of this share of the pairs; shorter runs are left out


@dataclass(frozen=True)
class Fit:
    """Per pair measured: the figure (dB) and the shift: how far (HR px, x and y) the mapping puts the LR from
    where it sits (NaN where the picture is flat)."""

    figure: np.ndarray
    shift: np.ndarray  # (pairs, 2)

    def offness(self) -> np.ndarray:
        """Each pair's distance from the mapping in HR px (NaN where not measured)."""
        return np.hypot(self.shift[:, 0], self.shift[:, 1])


def measure(hr_pic: vs.VideoNode, lr_pic: vs.VideoNode, mapping: Mapping, pairs: Sequence[tuple[int, int]]) -> Fit:
    """The figure and shift of each pair of full-size pictures (`reading.picture`) through `mapping` (between
    the pictures)."""
    m = mapping
    ylo, yhi = valid_range(m.ratio_y, m.offset_y, m.lr_height, m.hr_height, margin=2, least=8)
    xlo, xhi = valid_range(m.ratio_x, m.offset_x, m.lr_width, m.hr_width, margin=2, least=8)
    my = warp(m.ratio_y, m.offset_y, m.hr_height, m.lr_height)[ylo:yhi]
    mx = warp(m.ratio_x, m.offset_x, m.hr_width, m.lr_width)[xlo:xhi]
    win = hann(yhi - ylo, xhi - xlo)
    figure = np.full(len(pairs), np.nan, np.float32)
    shift = np.full((len(pairs), 2), np.nan, np.float32)
    frames = zip(read_frames(hr_pic, [h for h, _ in pairs]), read_frames(lr_pic, [l for _, l in pairs]))
    for i, (hr, lr) in enumerate(frames):
        pred = (my @ torch.from_numpy(hr) @ mx.T).numpy()
        target = lr[ylo:yhi, xlo:xhi]
        pc, tc = pred - pred.mean(), target - target.mean()
        gain = float((pc * tc).sum() / max(float((pc * pc).sum()), 1e-12))
        mse = float(((tc - gain * pc) ** 2).mean())
        figure[i] = 10 * math.log10(1 / max(mse, 1e-10))
        if tc.std() >= FLAT:
            (dy, dx), _, _ = phase_cross_correlation(tc * win, pc * win, upsample_factor=10, normalization="phase")
            shift[i] = dx * m.ratio_x, dy * m.ratio_y
    return Fit(figure, shift)


def framing(hr_frames: Sequence[int], fit: Fit) -> list[tuple[int, int, float, int]]:
    """Runs of pairs off the mapping: (first HR frame, last HR frame, median HR px off, pairs), where the running
    median (over RUN measured pairs) of the distance from the mapping exceeds FRAMED_PX for LEAST_RUN pairs
    or more."""
    off = fit.offness()
    measured = np.flatnonzero(np.isfinite(off))
    if len(measured) < LEAST_RUN:
        return []
    values = off[measured]
    half = RUN // 2
    smooth = np.array([np.median(values[max(0, i - half):i + half + 1]) for i in range(len(values))])
    runs: list[tuple[int, int, float, int]] = []
    start = None
    for k, bad in enumerate(np.append(smooth > FRAMED_PX, False)):
        if bad and start is None:
            start = k
        elif not bad and start is not None:
            if k - start >= LEAST_RUN:
                runs.append((hr_frames[measured[start]], hr_frames[measured[k - 1]],
                             float(np.median(values[start:k])), k - start))
            start = None
    return runs


def is_scene(run: tuple[int, int, float, int], pairs: int) -> bool:
    """Whether a run of `framing` is a scene framed otherwise (refused), not a few frames off (left out)."""
    return run[3] >= SCENE or run[3] >= SCENE_SHARE * pairs
