"""Which chunk model each patch of a frame goes to.

Route modes (the filter's `route` argument):
  labels    the bundle's labels; the clip must be the training clip (frames found by content,
            so trims and splices work). A frame that is not in the bundle is an error.
  auto      labels where a frame is found; elsewhere every patch goes to chunk 0, the model trained
            on the hardest content (the paper notes it does about as well as one model on all).
  chunk:K   every patch to chunk K, for diagnosis.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .bundle import Bundle
from .fingerprint import FrameMatcher, fingerprint
from .grid import Grid

FALLBACK_CHUNK = 0


@dataclass(frozen=True)
class Route:
    mode: str          # "labels", "auto" or "chunk"
    chunk: int = 0     # for mode "chunk"

    @classmethod
    def parse(cls, text: str, chunks: int) -> "Route":
        text = text.strip().lower()
        if text in ("labels", "auto"):
            return cls(text)
        if text.startswith("chunk:"):
            try:
                k = int(text.split(":", 1)[1])
            except ValueError:
                k = -1
            if not 0 <= k < chunks:
                raise ValueError(f"route {text!r}: the bundle has chunks 0..{chunks - 1}")
            return cls("chunk", k)
        raise ValueError(f"unknown route {text!r}; use 'auto', 'labels' or 'chunk:K'")


class Router:
    """Gives the chunk of every patch of a frame (a LongTensor of grid.count)."""

    def __init__(self, bundle: Bundle, grid: Grid, route: Route) -> None:
        self.route = route
        self.count = grid.count
        self.labels = torch.from_numpy(bundle.labels.reshape(len(bundle.labels), -1).astype(np.int64))
        self.same_grid = grid == bundle.grid
        self.matcher = FrameMatcher(bundle.fingerprints)
        if route.mode == "labels" and not self.same_grid:
            raise ValueError(
                f"route='labels' needs the training clip's LR size {bundle.grid.width}x{bundle.grid.height}, "
                f"but the clip is {grid.width}x{grid.height}; use route='auto' or feed the training clip")

    def __call__(self, n: int, frame: torch.Tensor) -> torch.Tensor:
        if self.route.mode == "chunk":
            return torch.full((self.count,), self.route.chunk, dtype=torch.long)
        found = self.matcher.match(n, fingerprint(frame)) if self.same_grid else None
        if found is not None:
            return self.labels[found]
        if self.route.mode == "labels":
            raise ValueError(f"frame {n} does not match any frame of the training clip "
                             f"({len(self.labels)} frames); use route='auto' for clips that differ")
        return torch.full((self.count,), FALLBACK_CHUNK, dtype=torch.long)
