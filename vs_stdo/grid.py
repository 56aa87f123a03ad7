"""The patch grid: where patches lie in an LR frame and how to cut them with context.

Patches have one size so a chunk's patches form one batch. The last row and column are shifted
inwards to stay inside the frame, so they overlap their neighbours instead of dropping pixels;
when stitching, patches are written in row-major order, so the later patch owns an overlap.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Grid:
    width: int
    height: int
    patch_width: int
    patch_height: int

    def __post_init__(self) -> None:
        if self.patch_width < 1 or self.patch_height < 1:
            raise ValueError(f"patch size must be positive, got {self.patch_width}x{self.patch_height}")
        if self.width < self.patch_width or self.height < self.patch_height:
            raise ValueError(
                f"the LR frame ({self.width}x{self.height}) is smaller than one patch "
                f"({self.patch_width}x{self.patch_height}); use a smaller patch size or a larger clip")

    @property
    def cols(self) -> int:
        return -(-self.width // self.patch_width)

    @property
    def rows(self) -> int:
        return -(-self.height // self.patch_height)

    @property
    def count(self) -> int:
        return self.rows * self.cols

    @cached_property
    def origins(self) -> list[tuple[int, int]]:
        """Top-left (y, x) of each patch, row-major."""
        ys = [min(r * self.patch_height, self.height - self.patch_height) for r in range(self.rows)]
        xs = [min(c * self.patch_width, self.width - self.patch_width) for c in range(self.cols)]
        return [(y, x) for y in ys for x in xs]

    @cached_property
    def edges(self) -> tuple[list[int], list[int]]:
        """Row tops and column lefts of the patches, each followed by the frame's size: patch row r owns
        LR rows edges[0][r] to edges[0][r + 1] (a shifted last row shares its pixels with the one above,
        and the later patch wins)."""
        ys = [y for y, _ in self.origins[::self.cols]] + [self.height]
        xs = [x for _, x in self.origins[:self.cols]] + [self.width]
        return ys, xs

    def cut(self, frame: torch.Tensor, pad: int, index: torch.Tensor | None = None) -> torch.Tensor:
        """Patches of a CHW frame with `pad` pixels of real context (replicated at frame borders).

        Returns (N, C, patch_height + 2*pad, patch_width + 2*pad); `index` picks some patches.
        """
        padded = F.pad(frame[None], (pad, pad, pad, pad), mode="replicate")[0] if pad else frame
        picks = range(self.count) if index is None else index.tolist()
        h, w = self.patch_height + 2 * pad, self.patch_width + 2 * pad
        return torch.stack([padded[:, y:y + h, x:x + w] for y, x in (self.origins[i] for i in picks)])

    def hr_boxes(self, scale: int) -> list[tuple[int, int, int, int]]:
        """(y, x, h, w) of each patch in the HR frame."""
        return [(y * scale, x * scale, self.patch_height * scale, self.patch_width * scale)
                for y, x in self.origins]
