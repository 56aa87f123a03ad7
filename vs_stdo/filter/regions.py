"""Grouping a frame's patches into rectangles of one chunk, so context is paid only at chunk borders.

Patches are cut with context so that each one's output equals whole-frame inference of its chunk's
model. Neighbouring patches of the same chunk share that context, so one model call on their union
gives the same pixels for far less work: a 48x54 patch with 34 pixels of context costs 5.5 times
its own area, a whole row of such patches 2.3 times. Runs of equal labels along a grid row are
merged, then runs with the same columns in consecutive rows.

A rectangle of patches owns a rectangle of pixels (`Grid.owned`: the later patch owns an overlap).

`calls` plans a frame's model calls from its regions: a large region is cut into tiles and small
same-size ones of one chunk share a call, so every call stays near CALL_PIXELS LR pixels. A whole-frame
call is slower per multiply-accumulate than the same frame in tiles (the activations of one layer
then no longer fit the cache when the next layer reads them); with valid convolutions a tile's output is
the same pixels (docs/speed.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.grid import Box, Grid


@dataclass(frozen=True)
class Region:
    """Patches rows r0..r1-1 x cols c0..c1-1 of the grid, all of one chunk."""

    chunk: int
    r0: int
    c0: int
    r1: int
    c1: int

    @property
    def patches(self) -> int:
        return (self.r1 - self.r0) * (self.c1 - self.c0)


def owned_box(grid: Grid, region: Region) -> Box:
    """(y0, x0, y1, x1), end exclusive: the LR pixels a region's patches own."""
    return grid.owned(region.r0, region.c0, region.r1, region.c1)


def cover(grid: Grid, labels: torch.Tensor, max_patches: int = 0) -> list[Region]:
    """Rectangles of equal labels covering the grid (labels: one chunk per patch, row-major), each of
    at most `max_patches` patches (0: no limit)."""
    cap = max_patches or grid.count
    lab = labels.reshape(grid.rows, grid.cols).tolist()
    done: list[Region] = []
    open_: dict[tuple[int, int, int], Region] = {}  # (c0, c1, chunk) -> rectangle ending at the previous row
    for r, row in enumerate(lab):
        runs, c = [], 0
        while c < grid.cols:
            end = c + 1
            while end < grid.cols and row[end] == row[c] and end - c < cap:
                end += 1
            runs.append((c, end, row[c]))
            c = end
        grown: dict[tuple[int, int, int], Region] = {}
        for c0, c1, k in runs:
            above = open_.pop((c0, c1, k), None)
            if above is not None and above.patches + (c1 - c0) <= cap:
                grown[(c0, c1, k)] = Region(k, above.r0, c0, r + 1, c1)
            else:
                if above is not None:
                    done.append(above)
                grown[(c0, c1, k)] = Region(k, r, c0, r + 1, c1)
        done.extend(open_.values())
        open_ = grown
    return done + list(open_.values())


# The LR pixels (owned, context not counted) that one CPU model call covers at most, and the widest tile.
# Measured on 2 cores with 32 MiB of L3 (tiny, x2 and x4, bf16 and float32): tiles of 48k-96k pixels at
# most 480 wide ran 1.1-1.45x faster than the whole frame in one call, smaller ones lost to context.
CALL_PIXELS = 65536
TILE_COLS = 480
Call = tuple[int, list[Box]]  # (chunk, same-size boxes run as one batch)


def split(length: int, most: int) -> list[int]:
    """Cut points 0 = p0 < ... < pn = length of the fewest near-equal parts of at most `most`."""
    parts = max(1, math.ceil(length / most))
    return [length * i // parts for i in range(parts + 1)]


def tiles(box: Box, pixels: int = CALL_PIXELS, cols: int = TILE_COLS) -> list[Box]:
    """A box cut into near-equal tiles of at most `cols` columns and `pixels` pixels."""
    y0, x0, y1, x1 = box
    xs = split(x1 - x0, cols)
    ys = split(y1 - y0, max(1, pixels // max(b - a for a, b in zip(xs, xs[1:]))))
    return [(y0 + ya, x0 + xa, y0 + yb, x0 + xb) for ya, yb in zip(ys, ys[1:]) for xa, xb in zip(xs, xs[1:])]


def calls(grid: Grid, regions: list[Region], pixels: int = CALL_PIXELS, cols: int = TILE_COLS) -> list[Call]:
    """Model calls for a frame's regions: each region's owned box in tiles (`tiles`), tiles of one chunk and
    size batched while the batch covers at most `pixels` (a tile larger than that alone)."""
    groups: dict[tuple[int, int, int], list[Box]] = {}
    for g in regions:
        for y0, x0, y1, x1 in tiles(owned_box(grid, g), pixels, cols):
            groups.setdefault((g.chunk, y1 - y0, x1 - x0), []).append((y0, x0, y1, x1))
    out: list[Call] = []
    for (k, h, w), boxes in groups.items():
        per = max(1, pixels // (h * w))
        out += [(k, boxes[i:i + per]) for i in range(0, len(boxes), per)]
    return out
