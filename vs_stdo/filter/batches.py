"""Patch batches for GPUs: all of a frame's patches cut with context in one gather, one model call
per chunk, and the outputs written into the frame with one gather per plane.

The CPU engine merges patches into regions so that context is only paid at chunk borders; that
saves arithmetic, which is what a CPU is short of. A GPU is short of launches instead: regions of
many sizes mean hundreds of small calls per frame, each a chain of kernels too small to fill it
(measured on an H100: 2 fps against 27 fps for one model on the whole frame, 1080p -> 4K).
Here each patch pays its full context (more arithmetic) but a frame is a handful of large calls.
The pixels are the same: each patch gets its model's output on exactly its receptive field.
"""
from __future__ import annotations

import torch

from ..core.grid import Grid


class PatchBatches:
    """Gather indices of one grid, scale and context on one device, built once per filter."""

    def __init__(self, grid: Grid, scale: int, context: int, device: torch.device, planes: int = 3) -> None:
        ph, pw, s, c = grid.patch_height, grid.patch_width, scale, context
        self.context, self.scale = c, s
        rows, cols = grid.spans(c)                  # each patch with its context, replicated beyond the frame
        self.rows, self.cols = rows.to(device), cols.to(device)
        # each LR pixel's owning patch (Grid.owner) and its place in that patch
        owner = grid.owner()
        ys = torch.tensor([y for y, _ in grid.origins])
        xs = torch.tensor([x for _, x in grid.origins])
        local_y = torch.arange(grid.height)[:, None] - ys[owner]
        local_x = torch.arange(grid.width)[None, :] - xs[owner]
        # HR pixel (Y, X) of plane 0 in the flattened (N, planes*s*s, ph, pw) model outputs
        Y, X = torch.arange(grid.height * s), torch.arange(grid.width * s)
        lr_y, lr_x = Y // s, X // s
        phase = (Y % s)[:, None] * s + (X % s)[None, :]
        within = local_y[lr_y][:, lr_x] * pw + local_x[lr_y][:, lr_x]
        self.index = ((owner[lr_y][:, lr_x] * planes * s * s + phase) * ph * pw + within).to(device)
        self.plane_step = s * s * ph * pw

    def cut(self, frame: torch.Tensor, index: torch.Tensor, radius: int) -> torch.Tensor:
        """Patches `index` of a (P, H, W) frame with `radius` <= context pixels of context:
        (n, P, ph + 2*radius, pw + 2*radius)."""
        trim = self.context - radius
        rows = self.rows[index][:, trim:self.rows.shape[1] - trim]
        cols = self.cols[index][:, trim:self.cols.shape[1] - trim]
        return frame[:, rows[:, :, None], cols[:, None, :]].transpose(0, 1)

    def stitch(self, outs: torch.Tensor, planes: list[torch.Tensor]) -> None:
        """Write the (N, P*s*s, ph, pw) outputs of all patches into P (H*s, W*s) planes, clamped: each
        HR pixel from the patch that owns its LR pixel."""
        flat = outs.reshape(-1)
        for colour, plane in enumerate(planes):
            plane.copy_(torch.take(flat, self.index + colour * self.plane_step).clamp_(0, 1))
