"""How a remaster bundle does on scenes it never saw, and each model's residual scaled to do no harm there.

A remaster bundle plays on episodes it never saw. A remaster run therefore holds out stretches of whole scenes of
its training range (scenes.py) and, once the models are trained and routed, plays those frames as the filter plays
an unseen frame: the blind router sends each patch to a model. Each model's residual (what it adds to bicubic:
its tail and skip convolutions, so the residual scales exactly with their weights) is then scaled by the factor in
[0, 1] that fits the held-out frames best (least squares on the HR grid, over the patches routed to it): a model
that only helps keeps 1, one that overshoots on new content is damped, one that does harm there becomes bicubic
(0). The bundle's held-out gain over bicubic through the mapping, before and after, goes into its training record.
Where the run trained a shared model before its chunk models, the held-out scenes also choose between them: the
chunk models ship only if they beat the shared model there by more than TIE (one model plays faster and is smaller).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..core.bundle import Bundle
from ..core.metrics import mse_to_psnr
from ..filter.routing import Route, Routing
from .data import Frames
from .scoring import bicubic, model_upscaler
from .target import Target

RESIDUAL = ("tail.weight", "tail.bias", "skip.weight", "skip.bias")  # the weights a model's residual scales with
TIE = 0.05  # dB: chunk models that beat the shared model by no more than this on held-out scenes do not ship


@dataclass(frozen=True)
class Heldout:
    """What the held-out scenes say of a bundle: the HR frames held out (stretches, inclusive), how many were
    played, the gain over bicubic through the mapping before and after scaling the residuals, and the scales."""
    stretches: list[tuple[int, int]]
    frames: int
    undamped_db: float
    gain_db: float
    scales: list[float]

    kept: str = "the chunk models"  # what ships, of what the held-out scenes compared

    def record(self) -> dict:
        """The bundle's training record entry (`stdo info` shows it)."""
        return {"stretches": [list(s) for s in self.stretches], "frames": self.frames,
                "undamped_gain_db": round(self.undamped_db, 3), "gain_db": round(self.gain_db, 3),
                "residual_scales": [round(a, 3) for a in self.scales], "kept": self.kept}

    def line(self) -> str:
        """One line for people."""
        where = ", ".join(f"{a}-{b}" for a, b in self.stretches)
        scales = ", ".join(f"{a:.2f}" for a in self.scales)
        return (f"held-out scenes (HR frames {where}; {self.frames} frames never trained on): {self.kept}, "
                f"{self.gain_db:+.2f} dB over bicubic through the mapping ({self.undamped_db:+.2f} dB before the "
                f"models' residuals were scaled by {scales})")


def settle(b: Bundle, shared: dict | None, frames: Frames, target: Target, device: torch.device,
           stretches: list[tuple[int, int]]) -> tuple[Bundle, Heldout]:
    """The bundle to ship and what the held-out scenes say of it: `b` with its residuals scaled (`damp`), or,
    where `shared` (the plain weights of the run's shared model, of the main preset) does as well there within
    TIE, a bundle of that one model, scaled likewise."""
    chunks = damp(b, frames, target, device, stretches)
    if shared is None or b.chunks == 1:
        return b, chunks
    arch = b.archs[0] if all(a == b.archs[0] for a in b.archs) else None
    if arch is None:
        return b, chunks
    alone = replace(b, archs=[arch], weights=[dict(shared)], labels=np.zeros_like(b.labels), thresholds=[],
                    router=None)
    one = damp(alone, frames, target, device, stretches)
    if one.gain_db >= chunks.gain_db - TIE:
        return alone, replace(one, kept=f"the shared model ({b.chunks} chunk models: {chunks.gain_db:+.2f} dB)")
    return b, replace(chunks, kept=f"{b.chunks} chunk models (the shared model: {one.gain_db:+.2f} dB)")


def damp(b: Bundle, frames: Frames, target: Target, device: torch.device,
         stretches: list[tuple[int, int]]) -> Heldout:
    """Play the held-out `frames` through the bundle as unseen frames play, scale each model's residual in
    `b.weights` to fit them best, and say how the bundle does there before and after."""
    models = b.build_models()
    upscalers = [model_upscaler(m, device) for m in models]
    routing = Routing(b, target.grid, Route("blind"))
    k = len(models)
    plays = []  # per frame: the patches' models, and per patch |w|^2, <w, r>, |r|^2 and pixels (w = HR - bicubic)
    for n in range(len(frames)):
        lr, hr = frames.lr[n], frames.hr[n].float() / 255
        base = target.on_hr(bicubic(lr, b.scale))
        want = hr - base
        chunks = routing(n, lr.clamp(0, 1))
        wr, rr = (torch.zeros(target.grid.count, dtype=torch.float64) for _ in range(2))
        for i in chunks.unique().tolist():
            residual = target.on_hr(upscalers[i](n, lr)) - base
            mine = chunks == i
            wr[mine] = target.per_patch(residual * want)[mine].double()
            rr[mine] = target.per_patch(residual * residual)[mine].double()
        plays.append((chunks, target.per_patch(want * want).double(), wr, rr,
                      target.per_patch(torch.ones_like(hr)).double()))
    scales = []
    for i in range(k):  # least squares over the patches routed to model i, within [0, 1]
        dot = sum(float(wr[chunks == i].sum()) for chunks, _, wr, _, _ in plays)
        norm = sum(float(rr[chunks == i].sum()) for chunks, _, _, rr, _ in plays)
        scales.append(float(np.clip(dot / norm, 0.0, 1.0)) if norm > 0 else 0.0)
    for i, scale in enumerate(scales):
        for name in RESIDUAL:
            b.weights[i][name] = b.weights[i][name] * scale
    ones = [1.0] * k
    before = np.mean([_gain(play, ones) for play in plays])
    after = np.mean([_gain(play, scales) for play in plays])
    return Heldout(stretches, len(frames), float(before), float(after), scales)


def _gain(play: tuple, scales: list[float]) -> float:
    """A held-out frame's PSNR gain (dB) over bicubic with each model's residual scaled: per patch the error is
    |w - a r|^2 = |w|^2 - 2 a <w, r> + a^2 |r|^2."""
    chunks, ww, wr, rr, pixels = play
    a = torch.tensor(scales, dtype=torch.float64)[chunks]
    err = ww - 2 * a * wr + a * a * rr
    total = pixels.sum()
    return float(mse_to_psnr(max(float(err.sum() / total), 1e-12)) - mse_to_psnr(float(ww.sum() / total)))
