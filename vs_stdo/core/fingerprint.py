"""Per-frame content fingerprints: find a frame's place in the training clip by what it shows.

A fingerprint is the BT.709 luma mean of a 16x16 grid of cells of the LR frame. Block means survive
lossy re-encoding almost unchanged, yet tell different frames apart (measured in docs/filter.md).
"""
from __future__ import annotations

import numpy as np
import torch

CELLS = 16
COARSE = 4  # a coarse print averages COARSE x COARSE blocks of cells; its distance is a lower bound
# Mean absolute difference (on a 0..1 scale) under which two fingerprints show the same frame.
# Measured (scripts/bench/matching.py): x264 CRF 23-28 re-encodes stay below 0.004, with a BT.601/709
# mix-up below 0.016; unrelated clips are 0.10 or more away.
TOLERANCE = 0.025
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def fingerprint(frame: torch.Tensor) -> np.ndarray:
    """Fingerprint of one RGB (or 1-plane luma) CHW frame (any size, clamped to [0, 1]): float32, CELLS*CELLS values.

    Cell i spans rows floor(i*H/CELLS) to ceil((i+1)*H/CELLS), as adaptive average pooling does. Plain
    numpy on purpose: it stays single-threaded, so it does not wait on a busy torch thread pool.
    """
    planes = np.clip(frame.detach().float().cpu().numpy(), 0, 1)
    luma = planes[0] if len(planes) == 1 else np.tensordot(_LUMA, planes, 1)
    h, w = luma.shape
    table = np.zeros((h + 1, w + 1))
    table[1:, 1:] = luma.cumsum(0, dtype=np.float64).cumsum(1)
    i = np.arange(CELLS)
    r0, r1 = i * h // CELLS, -(-(i + 1) * h // CELLS)
    c0, c1 = i * w // CELLS, -(-(i + 1) * w // CELLS)
    sums = table[r1][:, c1] - table[r0][:, c1] - table[r1][:, c0] + table[r0][:, c0]
    return (sums / np.outer(r1 - r0, c1 - c0)).astype(np.float32).ravel()


def coarse(prints: np.ndarray) -> np.ndarray:
    """Block means of fingerprints (..., CELLS*CELLS) -> (..., (CELLS // COARSE)**2)."""
    n = CELLS // COARSE
    return prints.reshape(-1, n, COARSE, n, COARSE).mean(axis=(2, 4)).reshape(*prints.shape[:-1], n * n)


class FrameMatcher:
    """Finds which training frame (if any) an incoming frame shows.

    Coarse prints prune the search exactly: the mean absolute difference of block means never exceeds
    that of the cells, so a frame whose coarse distance is beyond the tolerance cannot match.
    """

    def __init__(self, prints: np.ndarray, tolerance: float = TOLERANCE) -> None:
        self.prints = np.ascontiguousarray(prints, dtype=np.float32)
        self.coarse = coarse(self.prints)
        self.tolerance = tolerance

    def match(self, frame_print: np.ndarray) -> tuple[int | None, float]:
        """(nearest training frame, its distance), or (None, a lower bound of the distance) when no
        frame is within the tolerance.

        A pure function of content: equal frames always get the same answer (the lowest index among
        exact ties), whatever their position in the clip.
        """
        bound = np.abs(self.coarse - coarse(frame_print)).mean(axis=1)
        near = np.flatnonzero(bound <= self.tolerance + 1e-6)
        if not len(near):
            return None, float(bound.min())
        dist = np.abs(self.prints[near] - frame_print).mean(axis=1)
        i = int(dist.argmin())
        return (int(near[i]) if dist[i] <= self.tolerance else None), float(dist[i])
