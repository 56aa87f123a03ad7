"""The result of an alignment and how people see it: the `Alignment` record (mapping, pairs kept and left out
and why, frames left unpaired and why, each pair's figure), its printed lines, what stops training, its
JSON (kept for --resume), the CSV of every frame and a PNG of one pair; and the per-pair thumbnail residual that decides
which pairs differ in content."""
from __future__ import annotations

import csv
import io
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import torch
import vapoursynth as vs

from vs_stdo.core.files import write_atomic
from vs_stdo.core.mapping import Mapping, axis_matrix, resample

from .reading import read_frame
from .timeline import STEADY, offset_runs

DROP_MADS = 5.0  # a pair is left out when its residual is this many MADs (and 3 dB) below the median
PRECISION_WARN = 0.2  # HR px: a mapping this uncertain is said loudly
PRECISION_REFUSE = 0.5  # HR px: half a pixel off, models train worse than bicubic; refused
SHOWN = 8  # entries of a long list printed (the CSV has them all)


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
    dropped = [(h, l, f"content differs: thumbnail residual {residuals[i]:.1f} dB, median {med:.1f}")
               for i, (h, l) in enumerate(pairs) if i in bad]
    keep = [i for i in range(len(pairs)) if i not in bad]
    return [pairs[i] for i in keep], [float(residuals[i]) for i in keep], dropped


def _listed(items: list[str]) -> str:
    """The first SHOWN items joined, and how many more."""
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


@dataclass
class Alignment:
    """How an LR clip maps onto an HR clip: the mapping, the frame pairs kept, those left out and why, the frames
    of either clip left unpaired and why, and how well each pair fits the mapping."""

    mapping: Mapping
    pairs: list[tuple[int, int]]  # (hr_frame, lr_frame), kept
    residuals: list[float]  # dB per kept pair (see thumb_residuals)
    dropped: list[tuple[int, int, str]] = field(default_factory=list)  # (hr_frame, lr_frame, reason)
    hr_frames: int = 0
    lr_frames: int = 0
    precision: float | None = None  # HR px, standard error of the mapping's edges
    refined_on: list[tuple[int, int]] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)  # HR frames where a scene starts (train/scenes.py)
    figures: dict[int, float] = field(default_factory=dict)  # HR frame -> its pair's figure (dB, quality.py)
    shifts: dict[int, tuple[float, float]] = field(default_factory=dict)  # HR frame -> its pair's HR px off (x, y)
    unpaired_hr: dict[int, str] = field(default_factory=dict)  # HR frame -> why no LR frame pairs with it
    unpaired_lr: dict[int, str] = field(default_factory=dict)
    framed_otherwise: list[tuple[int, int, float]] = field(default_factory=list)  # (first, last HR frame, px off)
    notes: list[str] = field(default_factory=list)  # what was decided about the mapping (a snap to a whole one)

    @property
    def unpaired(self) -> tuple[int, int]:
        """How many frames of (HR, LR) no pair uses."""
        return len(self.unpaired_hr), len(self.unpaired_lr)

    def all_pairs(self) -> list[tuple[int, int]]:
        """Every pair, kept or left out, in order."""
        return sorted(self.pairs + [(h, l) for h, l, _ in self.dropped])

    def frame_offset(self) -> int:
        """The most common lr_frame - hr_frame over the kept pairs (over all pairs when none is kept)."""
        return Counter(l - h for h, l in (self.pairs or self.all_pairs())).most_common(1)[0][0]

    def offsets(self) -> list[tuple[int, int, int]]:
        """The frame offset where it holds: (first HR frame, last HR frame, lr_frame - hr_frame) per run of
        pairs (kept or left out) at one offset."""
        pairs = self.all_pairs()
        return [(pairs[a][0], pairs[b - 1][0], d) for a, b, d in offset_runs(pairs)]

    def describe_offsets(self) -> str:
        """The frame offset for people: one number, or per run of HR frames where it changes (runs of under
        STEADY pairs, a held frame paired with its twin, folded into the run before; the CSV has every pair)."""
        runs: list[tuple[int, int, int]] = []
        for a, b, d in self.offsets():
            if runs and (b - a + 1 < STEADY or runs[-1][2] == d):
                runs[-1] = (runs[-1][0], b, runs[-1][2])
            else:
                runs.append((a, b, d))
        if len(runs) <= 1:
            return f"frame offset {self.frame_offset():+d} (LR frame = HR frame {self.frame_offset():+d})"
        return "frame offset (LR frame = HR frame + offset) " + _listed([f"HR {a}-{b}: {d:+d}" for a, b, d in runs])

    def kept_figures(self) -> np.ndarray:
        """The figures of the kept pairs that were measured, in pair order."""
        return np.array([self.figures[h] for h, _ in self.pairs if h in self.figures], np.float64)

    def lines(self, scale: int | None) -> list[str]:
        """The human report printed before training, for models at `scale` (None: no scale reaches the ratio)."""
        m = self.mapping
        uh, ul = self.unpaired
        bh, bl = (sum(why.startswith("blank") for why in side.values()) for side in (self.unpaired_hr, self.unpaired_lr))
        whys = Counter(why.split(":")[0] for _, _, why in self.dropped)
        out = [f"mapping: {m.describe()}",
               "models: no scale the models have fits the ratio" if scale is None else
               f"models at x{scale}" + (", no resampling (whole ratio)" if m.whole() and m.scale() == scale else
                                        ", then resampled onto the HR grid"),
               *self.notes,
               f"frames: {len(self.pairs)} pairs kept of {self.hr_frames} HR / {self.lr_frames} LR frames"
               + (f", {len(self.dropped)} left out (" + ", ".join(f"{n} {w}" for w, n in whys.items()) + ")"
                  if self.dropped else "")
               + f"; {self.describe_offsets()}; unpaired {uh} HR, {ul} LR"
               + (f" ({bh} HR, {bl} LR blank)" if bh or bl else "")]
        figures = self.kept_figures()
        if len(figures):
            worst = min((self.figures[h], h) for h, _ in self.pairs if h in self.figures)
            out.append(f"alignment figure (PSNR of the HR on the LR grid through the mapping, luma, levels fitted): "
                       f"median {np.median(figures):.2f} dB, worst kept {worst[0]:.2f} dB (HR {worst[1]})")
        if self.precision is not None:
            out.append(f"precision of the mapping: +-{self.precision:.3f} HR px "
                       f"(spread of {len(self.refined_on)} pairs refined alone)")
            if PRECISION_WARN < self.precision <= PRECISION_REFUSE:
                out.append(f"WARNING: the mapping is uncertain to +-{self.precision:.2f} HR px (a consistent framing "
                           f"gives under 0.1): the pairs may be framed differently in places, or show too little "
                           f"detail to tell; see the alignment figures per pair")
        if self.dropped:
            out.append(f"left out: {len(self.dropped)} pairs: "
                       + _listed([f"HR {h}/LR {l} ({why})" for h, l, why in self.dropped]))
        if self.framed_otherwise:
            out.append("framed otherwise: " + _listed([f"HR {a}-{b} ({off:.1f} HR px off)"
                                                       for a, b, off in self.framed_otherwise]))
        return out

    def problems(self, hr_frames: range) -> str | None:
        """Why training on the pairs of `hr_frames` must not go ahead, or None: a framing that changes there, a
        mapping too uncertain to train through, or both."""
        out = []
        runs = [(a, b, off) for a, b, off in self.framed_otherwise if a < hr_frames.stop and b >= hr_frames.start]
        if runs:
            ranges = _listed([f"{a}-{b} ({off:.1f} HR px off)" for a, b, off in runs])
            out.append(f"the framing changes: HR frames {ranges} do not sit where the mapping puts the pairs "
                       f"(a pan and scan, scenes cropped otherwise, or frames paired wrongly in time)")
        if self.precision is not None and self.precision > PRECISION_REFUSE:
            out.append(f"the mapping is uncertain to +-{self.precision:.2f} HR px (a consistent framing gives under "
                       f"0.1, and models trained through a mapping half a pixel off do worse than bicubic): the "
                       f"framing changes from scene to scene, or the pictures show too little detail to align")
        if not out:
            return None
        return ("; and ".join(out) + ". One mapping cannot serve such a pair: split it into parts framed alike and "
                "train on each, or cut the frames framed otherwise from both clips (see the pairs CSV)")

    def to_json(self) -> bytes:
        """The whole alignment as JSON: kept beside a run's checkpoint, so that --resume need not align again."""
        return msgspec.json.encode(self, enc_hook=lambda o: o.item() if isinstance(o, np.generic) else o)

    @classmethod
    def from_json(cls, data: bytes) -> "Alignment":
        """An alignment `to_json` wrote, checked field by field: ValueError when the data is not one."""
        try:
            return msgspec.json.decode(data, type=cls, strict=False)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise ValueError(f"not an alignment: {e}") from None

    def csv_rows(self) -> list[list[Any]]:
        """One row per frame: [hr_frame, lr_frame, figure_db, off_px, status, why], in the clips' order (an
        unpaired LR frame after the pair before it); empty cells where there is nothing."""
        dropped = {h: (l, why) for h, l, why in self.dropped}
        rows: list[tuple[float, list[Any]]] = []

        def measured(h: int) -> list[Any]:
            off = self.shifts.get(h)
            return [f"{self.figures[h]:.2f}" if h in self.figures else "",
                    f"{math.hypot(*off):.2f}" if off is not None and np.isfinite(off).all() else ""]

        for h, l in self.pairs:
            rows.append((h, [h, l, *measured(h), "kept", ""]))
        for h, (l, why) in dropped.items():
            rows.append((h, [h, l, *measured(h), "left out", why]))
        for h, why in self.unpaired_hr.items():
            rows.append((h, [h, "", "", "", "unpaired", why]))
        pairs = self.all_pairs()
        lrs = [l for _, l in pairs]
        for l, why in self.unpaired_lr.items():
            before = int(np.searchsorted(lrs, l)) - 1
            rows.append(((pairs[before][0] if before >= 0 else -1) + 0.5, ["", l, "", "", "unpaired", why]))
        return [row for _, row in sorted(rows, key=lambda r: (r[0], r[1][1] if r[1][1] != "" else -1))]

    def save_csv(self, path: str | Path) -> Path:
        """Every frame's pairing (`csv_rows`) as a CSV file with a header, written atomically."""
        text = io.StringIO()
        w = csv.writer(text, lineterminator="\n")
        w.writerow(["hr_frame", "lr_frame", "figure_db", "off_px", "status", "why"])
        w.writerows(self.csv_rows())
        write_atomic(path, text.getvalue().encode())
        return Path(path)

    def save_png(self, path: str | Path, hr: vs.VideoNode, lr: vs.VideoNode) -> Path:
        """A PNG of one representative pair: the HR (the part both pictures show), the LR picture put on the HR
        grid through the mapping, and their difference (after a gain/offset fit), with the numbers in the
        title."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        pairs = self.refined_on or self.pairs
        h_n, l_n = pairs[len(pairs) // 2]
        m = self.mapping
        h, l = read_frame(hr, h_n), read_frame(lr, l_n)
        x0, y0, x1, y1 = m.overlap()
        lx0, ly0, lx1, ly1 = m.lr_picture()
        (ry, oy), (rx, ox) = m.axes()
        up = resample(torch.from_numpy(l[ly0:ly1, lx0:lx1]), axis_matrix(ry, oy, 1, ly0, ly1 - ly0, y0, y1 - y0),
                      axis_matrix(rx, ox, 1, lx0, lx1 - lx0, x0, x1 - x0)).numpy()
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
        figure = f", alignment figure {self.figures[h_n]:.2f} dB" if h_n in self.figures else ""
        fig.suptitle(f"{m.describe()}\n{self.describe_offsets()}, {len(self.pairs)} pairs kept, "
                     f"{len(self.dropped)} left out; this pair: PSNR {psnr:.2f} dB on the HR grid (luma, bicubic "
                     f"LR vs HR){figure}", fontsize=10)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=80)
        plt.close(fig)
        return path
