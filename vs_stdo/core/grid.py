"""Patch geometry, in one place: where the patches of an LR frame lie, which pixels each one owns, how
to cut a patch or a box with context, and where its output goes.

Patches have one size so a chunk's patches form one batch. The last row and column are shifted
inwards to stay inside the frame, so they overlap their neighbours instead of dropping pixels; the
later patch (row-major) owns an overlap, so the owned boxes tile the frame. Context beyond the frame
is the border pixel replicated. A frame narrower (or shorter) than a patch has one patch column (row)
at 0 reaching past the frame, replicated like context; it owns the whole frame along that axis.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1) in LR pixels, end exclusive


def span(start: int, end: int, pad: int, size: int) -> torch.Tensor:
    """Indices start - pad .. end + pad - 1 along an axis of `size` pixels, clamped (replicated border)."""
    return torch.arange(start - pad, end + pad).clamp_(0, size - 1)


def window(frame: torch.Tensor, box: Box, pad: int) -> torch.Tensor:
    """The box of a (..., H, W) frame with `pad` pixels of context, replicated beyond the frame."""
    y0, x0, y1, x1 = box
    h, w = frame.shape[-2:]
    return frame[..., span(y0, y1, pad, h)[:, None], span(x0, x1, pad, w)]


@dataclass(frozen=True)
class Grid:
    width: int
    height: int
    patch_width: int
    patch_height: int

    def __post_init__(self) -> None:
        if self.patch_width < 1 or self.patch_height < 1:
            raise ValueError(f"patch size must be positive, got {self.patch_width}x{self.patch_height}")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"the LR frame must be at least 1x1, got {self.width}x{self.height}")

    @property
    def covered(self) -> bool:
        """Whether the frame holds whole patches (training needs it; playback replicates the border)."""
        return self.width >= self.patch_width and self.height >= self.patch_height

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
        ys = [max(0, min(r * self.patch_height, self.height - self.patch_height)) for r in range(self.rows)]
        xs = [max(0, min(c * self.patch_width, self.width - self.patch_width)) for c in range(self.cols)]
        return [(y, x) for y in ys for x in xs]

    @cached_property
    def edges(self) -> tuple[list[int], list[int]]:
        """Row tops and column lefts of the patches, each followed by the frame's size: patch row r owns
        LR rows edges[0][r] to edges[0][r + 1] (a shifted last row shares its pixels with the one above,
        and the later patch wins)."""
        ys = [y for y, _ in self.origins[::self.cols]] + [self.height]
        xs = [x for _, x in self.origins[:self.cols]] + [self.width]
        return ys, xs

    def owned(self, r0: int, c0: int, r1: int, c1: int) -> Box:
        """The LR pixels owned by patch rows r0..r1-1 x cols c0..c1-1 (a rectangle: owned boxes tile the frame)."""
        ys, xs = self.edges
        return ys[r0], xs[c0], ys[r1], xs[c1]

    def owner(self) -> torch.Tensor:
        """(height, width) LongTensor: the index of the patch that owns each LR pixel."""
        ys, xs = self.edges
        rows = torch.repeat_interleave(torch.arange(self.rows), torch.tensor(ys).diff())
        cols = torch.repeat_interleave(torch.arange(self.cols), torch.tensor(xs).diff())
        return rows[:, None] * self.cols + cols[None, :]

    def box(self, i: int) -> Box:
        """Patch i's own LR box (it may reach past a frame smaller than a patch)."""
        y, x = self.origins[i]
        return y, x, y + self.patch_height, x + self.patch_width

    def spans(self, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame rows (count, patch_height + 2*pad) and columns (count, patch_width + 2*pad) of every patch
        with `pad` pixels of context, clamped to the frame (replicated beyond it)."""
        boxes = [self.box(i) for i in range(self.count)]
        return (torch.stack([span(y0, y1, pad, self.height) for y0, _, y1, _ in boxes]),
                torch.stack([span(x0, x1, pad, self.width) for _, x0, _, x1 in boxes]))

    def cut(self, frame: torch.Tensor, pad: int, index: torch.Tensor | None = None) -> torch.Tensor:
        """Patches of a CHW frame with `pad` pixels of context (replicated beyond the frame).

        Returns (N, C, patch_height + 2*pad, patch_width + 2*pad); `index` picks some patches.
        """
        rows, cols = self.spans(pad)
        if index is not None:
            rows, cols = rows[index], cols[index]
        return frame[:, rows[:, :, None], cols[:, None, :]].transpose(0, 1).contiguous()

    def hr_boxes(self, scale: int) -> list[tuple[int, int, int, int]]:
        """(y, x, h, w) of each patch in the HR frame (a patch may reach past a frame smaller than it)."""
        return [(y * scale, x * scale, self.patch_height * scale, self.patch_width * scale)
                for y, x in self.origins]


def paste(out: torch.Tensor, box: Box, planes: list[torch.Tensor], scale: int) -> None:
    """Stitch: pixel-shuffle a box's (P*s*s, h, w) model output into its place in P HR planes, clamped."""
    s = scale
    y0, x0, y1, x1 = box
    h, w = y1 - y0, x1 - x0
    for i, plane in enumerate(planes):
        part = out[i * s * s:(i + 1) * s * s].view(s, s, h, w).permute(2, 0, 3, 1)
        torch.clamp(part, 0, 1, out=plane[y0 * s:y1 * s, x0 * s:x1 * s].view(h, s, w, s))
