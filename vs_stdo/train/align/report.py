"""The result of an alignment and how people see it: the `Alignment` record (mapping, pairs kept and left out,
each kept pair's residual), its printed lines, its manifest entry and a PNG of one pair; and the per-pair
residual that decides which pairs are left out."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import vapoursynth as vs

from vs_stdo.core.mapping import Mapping, axis_matrix, resample

from .reading import read_frame

DROP_MADS = 5.0  # a pair is left out when its residual is this many MADs (and 3 dB) below the median


def thumb_residuals(hr_aligned: np.ndarray, lr_aligned: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """Each pair's match after alignment, in dB, from `aligned_thumbnails`: the HR's fitted with a gain and
    offset, as 10 log10(LR variance / error)."""
    out = np.empty(len(pairs), np.float32)
    for start in range(0, len(pairs), 512):
        chunk = pairs[start:start + 512]
        pred = torch.from_numpy(hr_aligned[[p[0] for p in chunk]].astype(np.float32)).flatten(1)
        target = torch.from_numpy(lr_aligned[[p[1] for p in chunk]].astype(np.float32)).flatten(1)
        pc, tc = pred - pred.mean(1, keepdim=True), target - target.mean(1, keepdim=True)
        gain = (pc * tc).sum(1) / (pc * pc).sum(1).clamp_min(1e-12)
        err = ((tc - gain[:, None] * pc) ** 2).mean(1)
        out[start:start + len(chunk)] = (10 * torch.log10(tc.pow(2).mean(1).clamp_min(1e-12)
                                                          / err.clamp_min(1e-12))).numpy()
    return out


def outliers(residuals: np.ndarray, mads: float = DROP_MADS) -> np.ndarray:
    """Indices of residuals far below the rest: more than `mads` MADs (scaled to a standard deviation)
    and 3 dB under the median."""
    med = float(np.median(residuals))
    mad = 1.4826 * float(np.median(np.abs(residuals - med)))
    return np.flatnonzero(residuals < med - max(mads * mad, 3.0))


def leave_out(pairs: list[tuple[int, int]], residuals: np.ndarray
              ) -> tuple[list[tuple[int, int]], list[float], list[tuple[int, int, str]]]:
    """The pairs kept and their residuals, and the `outliers` left out with the reason: (kept, residuals, dropped)."""
    bad = set(outliers(residuals).tolist())
    med = float(np.median(residuals))
    dropped = [(h, l, f"residual {residuals[i]:.1f} dB, median {med:.1f}") for i, (h, l) in enumerate(pairs) if i in bad]
    keep = [i for i in range(len(pairs)) if i not in bad]
    return [pairs[i] for i in keep], [float(residuals[i]) for i in keep], dropped


@dataclass
class Alignment:
    """How an LR clip maps onto an HR clip: the mapping, the frame pairs kept, those left out and why."""

    mapping: Mapping
    pairs: list[tuple[int, int]]  # (hr_frame, lr_frame), kept
    residuals: list[float]  # dB per kept pair (see thumb_residuals)
    dropped: list[tuple[int, int, str]] = field(default_factory=list)  # (hr_frame, lr_frame, reason)
    hr_frames: int = 0
    lr_frames: int = 0
    precision: float | None = None  # HR px, standard error of the mapping's edges
    refined_on: list[tuple[int, int]] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)  # HR frames where a scene starts (train/scenes.py)

    @property
    def unpaired(self) -> tuple[int, int]:
        """Frames of (HR, LR) that no pair uses (those of dropped pairs not counted)."""
        n = len(self.pairs) + len(self.dropped)
        return self.hr_frames - n, self.lr_frames - n

    def frame_offset(self) -> int:
        """The most common lr_frame - hr_frame over the kept pairs."""
        return Counter(l - h for h, l in self.pairs).most_common(1)[0][0]

    def lines(self) -> list[str]:
        """The human report printed before training."""
        m = self.mapping
        uh, ul = self.unpaired
        res = np.array(self.residuals)
        out = [f"mapping: {m.describe()}",
               f"models at x{m.scale()}" + (", no resampling (whole ratio)" if m.whole() else
                                             ", then resampled onto the HR grid"),
               f"frames: {len(self.pairs)} pairs kept of {self.hr_frames} HR / {self.lr_frames} LR frames; "
               f"frame offset {self.frame_offset():+d} (LR frame = HR frame {self.frame_offset():+d}); "
               f"unpaired {uh} HR, {ul} LR",
               f"residual after alignment (thumbnails, dB): median {np.median(res):.1f}, "
               f"worst kept {res.min():.1f}"]
        if self.precision is not None:
            out.append(f"precision of the mapping: +-{self.precision:.3f} HR px "
                       f"(spread of {len(self.refined_on)} pairs refined alone)")
        if self.dropped:
            shown = ", ".join(f"HR {h}/LR {l} ({why})" for h, l, why in self.dropped[:8])
            more = f" and {len(self.dropped) - 8} more" if len(self.dropped) > 8 else ""
            out.append(f"left out: {len(self.dropped)} pairs: {shown}{more}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """For the bundle manifest."""
        uh, ul = self.unpaired
        return {"mapping": self.mapping.to_dict(), "frame_offset": self.frame_offset(),
                "pairs": [list(p) for p in self.pairs], "residuals_db": [round(float(r), 2) for r in self.residuals],
                "dropped": [[h, l, why] for h, l, why in self.dropped], "unpaired_hr": uh, "unpaired_lr": ul,
                "hr_frames": self.hr_frames, "lr_frames": self.lr_frames, "precision_px": self.precision,
                "refined_on": [list(p) for p in self.refined_on]}

    def save_png(self, path: str | Path, hr: vs.VideoNode, lr: vs.VideoNode) -> Path:
        """A PNG of one representative pair: the HR (the part both show), the LR put on the HR grid through
        the mapping, and their difference (after a gain/offset fit), with the numbers in the title."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        pairs = self.refined_on or self.pairs
        h_n, l_n = pairs[len(pairs) // 2]
        m = self.mapping
        h, l = read_frame(hr, h_n), read_frame(lr, l_n)
        x0, y0, x1, y1 = m.overlap()
        (ry, oy), (rx, ox) = m.axes()
        up = resample(torch.from_numpy(l), axis_matrix(ry, oy, 1, 0, m.lr_height, y0, y1 - y0),
                      axis_matrix(rx, ox, 1, 0, m.lr_width, x0, x1 - x0)).numpy()
        ref = h[y0:y1, x0:x1]
        uc, rc = up - up.mean(), ref - ref.mean()
        fitted = uc * float((uc * rc).sum() / max((uc * uc).sum(), 1e-12)) + ref.mean()
        diff = ref - fitted
        psnr = 10 * math.log10(1 / max(float((diff ** 2).mean()), 1e-12))
        fig, axes = plt.subplots(1, 3, figsize=(18, 6 * (y1 - y0) / (x1 - x0) + 1.2))
        grey = {"cmap": "gray", "vmin": 0, "vmax": 1}
        for ax, img, name, kw in ((axes[0], ref, f"HR frame {h_n}", grey),
                                  (axes[1], fitted, f"LR frame {l_n} on the HR grid", grey),
                                  (axes[2], diff, "difference (scale +-0.1)",
                                   {"cmap": "coolwarm", "vmin": -0.1, "vmax": 0.1})):
            ax.imshow(img, interpolation="nearest", **kw)
            ax.set_title(name)
            ax.axis("off")
        fig.suptitle(f"{m.describe()}\nframe offset {self.frame_offset():+d}, {len(self.pairs)} pairs kept, "
                     f"{len(self.dropped)} left out; this pair: PSNR {psnr:.2f} dB (luma, bicubic LR vs HR)",
                     fontsize=10)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=80)
        plt.close(fig)
        return path

