"""Which chunk model each patch of a frame goes to.

Route modes (the filter's `route` argument):
  labels    the bundle's labels. The clip must show the training clip's frames at its LR size; each
            frame is found by content (fingerprint), so trims, splices and dropped frames work. A
            frame that is not found is an error naming the frame and how far it is from any.
  auto      labels where a frame is found; elsewhere the bundle's blind router when it has one,
            otherwise every patch goes to FALLBACK_CHUNK.
  blind     the bundle's blind router (blind.py) for every frame: decides from the LR patch alone,
            so any clip at any size works. A bundle without one is an error (one model: chunk 0).
  chunk:K   every patch to chunk K, for diagnosis.
A bundle of one model has nothing to route (and stores no labels): every patch goes to it, whatever the
mode but chunk:K.

"Chunk" here is a chunk model's index: the model a patch runs through. A stored label names that model; with
`stdo train --labels best` (the default) it is the model that reconstructs the patch best, which need not be the
model of the chunk the split put the patch in (train/chunks.py).

Each frame's decision (`Routing.decide`) also says how it was made; the filter puts that on the output
frame as props (docs/filter.md): STDORoute, STDOFrame and STDOChunkShare.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..core.bundle import Bundle
from ..core.fingerprint import FrameMatcher, fingerprint
from ..core.grid import Grid
from .blind import BlindRouter

# Chunk 0 holds the hardest patches; its model saw the most varied content (the paper notes it
# does about as well as one model trained on everything).
FALLBACK_CHUNK = 0


@dataclass(frozen=True)
class Route:
    mode: str          # "labels", "auto", "blind" or "chunk"
    chunk: int = 0     # for mode "chunk"

    @classmethod
    def parse(cls, text: str, chunks: int) -> "Route":
        text = text.strip().lower()
        if text in ("labels", "auto", "blind"):
            return cls(text)
        if text.startswith("chunk:"):
            try:
                k = int(text.split(":", 1)[1])
            except ValueError:
                k = -1
            if not 0 <= k < chunks:
                raise ValueError(f"route {text!r}: the bundle has chunks 0..{chunks - 1}; use chunk:0 to "
                                 f"chunk:{chunks - 1}")
            return cls("chunk", k)
        raise ValueError(f"unknown route {text!r}; use 'auto', 'labels', 'blind' or 'chunk:K'")


@dataclass(frozen=True)
class Decision:
    """The chunks of one frame's patches and how they were chosen."""
    chunks: torch.Tensor   # (grid.count,) long
    route: str             # "labels", "blind", "fallback" or "chunk"; "auto->..." under route auto
    frame: int = -1        # the matched training frame, or -1

    def props(self, count: int) -> dict[str, str | int | list[float]]:
        """Frame props naming the decision; STDOChunkShare is each of `count` chunks' share of the patches."""
        share = torch.bincount(self.chunks, minlength=count).double() / len(self.chunks)
        return {"STDORoute": self.route, "STDOFrame": self.frame, "STDOChunkShare": share.tolist()}


class Routing:
    """The routing of one clip's frames: the chunk model of every patch of a frame (a LongTensor of grid.count),
    from the route mode, the bundle's labels and its blind router (filter/blind.py)."""

    def __init__(self, bundle: Bundle, grid: Grid, route: Route,
                 blind: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.route, self.grid, self.chunks = route, grid, bundle.chunks
        self.labels = torch.from_numpy(bundle.labels.reshape(len(bundle.labels), bundle.grid.count).astype(np.int64))
        self.same_grid = grid == bundle.grid
        self.matcher = FrameMatcher(bundle.fingerprints)
        # LR patches (N, 3, h, w) in [0, 1] -> N chunks: `blind`, else the bundle's stored router
        self.blind = blind or (BlindRouter(bundle.router, bundle.scale) if bundle.router else None)
        if route.mode == "labels" and not self.same_grid:
            raise ValueError(
                f"route='labels' needs the training clip's LR size {bundle.grid.width}x{bundle.grid.height}, "
                f"but the clip is {grid.width}x{grid.height}; feed the training clip's LR or use route='auto'")
        if route.mode == "blind" and self.blind is None and self.chunks > 1:
            raise ValueError(
                "route='blind' needs a bundle with a blind router, and this one has none (bundles of format 1 "
                "carry none); retrain it with this vs-stdo (`stdo train` fits one) or use route='auto' "
                f"(labels where a frame is found, else chunk {FALLBACK_CHUNK})")

    def __call__(self, n: int, frame: torch.Tensor) -> torch.Tensor:
        """Chunks for frame n, an RGB CHW tensor in [0, 1] (n only names the frame in errors)."""
        return self.decide(n, frame).chunks

    def decide(self, n: int, frame: torch.Tensor) -> Decision:
        """The decision for frame n: its chunks, the route taken and the matched training frame."""
        mode = self.route.mode
        prefix = "auto->" if mode == "auto" else ""
        if mode == "chunk":
            return Decision(torch.full((self.grid.count,), self.route.chunk, dtype=torch.long), "chunk")
        if self.chunks == 1:
            return Decision(torch.zeros(self.grid.count, dtype=torch.long), prefix + "single")
        if self.same_grid and mode != "blind":
            found, distance = self.matcher.match(fingerprint(frame))
            if found is not None:
                return Decision(self.labels[found], prefix + "labels", int(found))
            if mode == "labels":
                raise ValueError(
                    f"frame {n} is not a frame of the training clip: its fingerprint is {distance:.3f} or more "
                    f"from all {len(self.labels)} training frames (tolerance {self.matcher.tolerance}); "
                    f"use route='auto' for clips that differ")
        if self.blind is None:
            return Decision(torch.full((self.grid.count,), FALLBACK_CHUNK, dtype=torch.long), prefix + "fallback")
        chunks = self.blind(self.grid.cut(frame, 0)).long().flatten().cpu()
        if chunks.shape != (self.grid.count,):
            raise ValueError(f"the bundle's router gave {len(chunks)} chunk indices for {self.grid.count} patches; "
                             f"the bundle is damaged")
        if chunks.min() < 0 or chunks.max() >= self.chunks:
            raise ValueError(f"the bundle's router gave chunk indices in [{int(chunks.min())}, {int(chunks.max())}] "
                             f"but the bundle has {self.chunks} chunks; the bundle is damaged")
        return Decision(chunks, prefix + "blind")
