"""The PNG report of `stdo eval --report`: what the bundle learnt about one frame, and how it looks.

Top row, over the HR frame: the reference scorer's per-patch PSNR (the paper's Figure 1), the chunk of
each patch (chunk 0 the hardest), and the per-patch gain of the bundle over bicubic. Bottom row: the
patch the scorer found hardest, cut from the bicubic output, the bundle's output and the HR frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.patheffects import withStroke

from ..core.bundle import Bundle
from ..core.files import atomic_write
from ..core.metrics import psnr
from ..train.chunks import label
from ..train.target import patch_psnr

MAX_NUMBERS = 300  # write each patch's value in its cell up to this many patches
NAMES = {"bicubic": "bicubic", "stdo": "bundle", "hr": "HR"}


def image(t: torch.Tensor) -> np.ndarray:
    """CHW RGB tensor in [0, 1] -> HWC array for imshow."""
    return t.permute(1, 2, 0).numpy()


def overlay(ax: Axes, hr: torch.Tensor, values: np.ndarray, bundle: Bundle, fmt: str, ticks: list[int] | None = None,
            **style: object) -> None:
    """A per-patch map drawn over the greyed HR frame, one cell per patch over the pixels it owns in the
    stitched output (a shifted last row or column owns only what it adds)."""
    grid = bundle.grid
    ys, xs = ([e * bundle.scale for e in edges] for edges in grid.edges)
    ax.imshow(image(hr).mean(-1), cmap="gray", vmin=0, vmax=1)
    mesh = ax.pcolormesh(xs, ys, values, alpha=0.55, edgecolors="white", linewidth=0.3, **style)
    ax.figure.colorbar(mesh, ax=ax, fraction=0.03, pad=0.01, ticks=ticks)
    if values.size <= MAX_NUMBERS:
        size = max(4.0, min(9.0, 600 / max(grid.cols, grid.rows) / 8))
        for r in range(grid.rows):
            for c in range(grid.cols):
                ax.text((xs[c] + xs[c + 1]) / 2, (ys[r] + ys[r + 1]) / 2, format(values[r, c], fmt),
                        ha="center", va="center", fontsize=size, color="white",
                        path_effects=[withStroke(linewidth=2, foreground="black")])
    ax.set_axis_off()


def write_report(path: Path, bundle: Bundle, bundle_frame: int, images: dict[str, torch.Tensor], title: str) -> None:
    """images: "hr", "stdo", "bicubic" (CHW in [0, 1]) of the frame that is `bundle_frame` in the bundle."""
    g, s = bundle.grid, bundle.scale
    hr = images["hr"]
    each = {name: patch_psnr(images[name], hr, g, s).numpy().reshape(g.rows, g.cols) for name in ("stdo", "bicubic")}
    scorer, thresholds = bundle.training.scorer or "reference", bundle.training.thresholds
    if len(bundle.psnr):
        f0 = bundle.psnr[bundle_frame]
    else:  # a one-model bundle stores no scores: show bicubic's, measured here, and no split
        f0, scorer, thresholds = each["bicubic"], "bicubic", []
    chunks = bundle.labels[bundle_frame] if bundle.chunks > 1 else label(f0, thresholds)
    k = bundle.chunks if bundle.chunks > 1 else len(thresholds) + 1  # the split's k
    gain = each["stdo"] - each["bicubic"]

    fig = Figure(figsize=(18, 10.5), layout="constrained")  # no pyplot: PNG through Agg, no global state
    axes = fig.subplots(2, 3)
    fig.suptitle(title)
    overlay(axes[0, 0], hr, f0, bundle, ".1f", cmap="magma")
    axes[0, 0].set_title(f"per-patch PSNR of f0 ({scorer}), dB")
    overlay(axes[0, 1], hr, chunks.astype(np.float32), bundle, ".0f", list(range(k)), cmap="viridis",
            norm=BoundaryNorm(np.arange(k + 1) - 0.5, 256))
    best = bundle.chunks > 1 and bundle.training.labels == "best"
    what = "routing labels, best model per patch" if best else "chunk map"
    axes[0, 1].set_title(f"{what} (k={k}, 0 = hardest chunk)"
                         + ("" if bundle.chunks > 1 else f"; one model ({bundle.training.mode})"))
    lim = max(float(np.abs(gain).max()), 0.1)
    overlay(axes[0, 2], hr, gain, bundle, "+.1f", cmap="RdBu", vmin=-lim, vmax=lim)
    axes[0, 2].set_title("per-patch gain of the bundle over bicubic, dB")

    i = int(np.argmin(f0))
    y, x, h, w = g.hr_boxes(s)[i]
    for ax, name in zip(axes[1], ("bicubic", "stdo", "hr")):
        crop = images[name][:, y:y + h, x:x + w]
        ax.imshow(image(crop), interpolation="nearest")
        note = "" if name == "hr" else f", {psnr(crop, hr[:, y:y + h, x:x + w]):.2f} dB"
        ax.set_title(f"{NAMES[name]}: hardest patch{note}")
        ax.set_axis_off()
    for ax in axes[0]:
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="cyan", linewidth=1.5))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        fig.savefig(f, dpi=80, format=path.suffix.lstrip(".").lower() or None)
