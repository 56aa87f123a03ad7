"""Per-frame content fingerprints: find a frame's place in the training clip by what it shows.

A fingerprint is the mean luma of a 16x16 grid of cells of the LR frame. Block means survive lossy
re-encoding almost unchanged (differences of a few 1/1000), yet tell different frames apart.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CELLS = 16
# Mean absolute difference (on a 0..1 scale) under which two fingerprints are the same frame.
TOLERANCE = 0.01
_LUMA = torch.tensor([0.2126, 0.7152, 0.0722]).view(3, 1, 1)


def fingerprint(frame: torch.Tensor) -> np.ndarray:
    """Fingerprint of one RGB CHW frame in [0, 1] (any size): float32, CELLS*CELLS values."""
    luma = (frame.float().cpu() * _LUMA).sum(0, keepdim=True)
    return F.adaptive_avg_pool2d(luma[None], CELLS).flatten().numpy().astype(np.float32)


class FrameMatcher:
    """Finds which training frame (if any) an incoming frame is."""

    def __init__(self, prints: np.ndarray, tolerance: float = TOLERANCE) -> None:
        self.prints = prints.astype(np.float32)
        self.tolerance = tolerance

    def match(self, n: int, frame_print: np.ndarray) -> int | None:
        """Index of the training frame that `frame_print` shows, or None.

        The nearest fingerprint wins; frame n wins ties, so untrimmed clips of near-static scenes
        keep their own labels.
        """
        dist = np.abs(self.prints - frame_print).mean(axis=1)
        best = int(dist.argmin())
        if dist[best] > self.tolerance:
            return None
        if n < len(dist) and dist[n] <= dist[best] + 1e-6:
            return n
        return best
