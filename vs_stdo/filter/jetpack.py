"""`STDOScaler`: a bundle as a vs-jetpack scaler (`vskernels.Scaler`), for `vsscale.Rescale` and every other
vs-jetpack function that takes an upscaler. Needs the optional `vsjetpack` package (`pip install vs-stdo[jetpack]`).

Like vs-jetpack's own neural scalers, the model runs at its own scale and a kernel (Catrom unless told otherwise)
goes the rest of the way to the requested size and shift. A scaler's output covers its input's own frame, so a
remaster bundle's output is taken on the models' grid (the clip's frame at s times its size), not on the HR
grid its mapping frames differently: one kernel step, for either kind of bundle.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import vapoursynth as vs
from vskernels import Catrom, Scaler, ScalerLike

from ..core import bundle as bundle_io
from .graph import upscaled
from .options import UpscaleOptions

__all__ = ["STDOScaler"]


class STDOScaler(Scaler):
    """Upscale with a `.stdo` bundle (the graph of `core.stdo.Upscale`), then a kernel to the exact size and shift
    asked for.

    `STDOScaler("video.stdo", route="blind").scale(clip, 1920, 1080)`; every keyword but `scaler` goes to
    `vs_stdo.upscale` (route, device, fp16, pad, batch, bf16).
    """

    def __init__(self, bundle: str | Path, *, scaler: ScalerLike = Catrom, **upscale_args: Any) -> None:
        """bundle: a `.stdo` file (read now, so a bad one fails here); scaler: the kernel for the remaining
        resize and shift (a vskernels name, class or instance); upscale_args: arguments of `vs_stdo.upscale`
        (checked now)."""
        loaded = bundle_io.load(bundle)
        self.bundle = str(bundle)
        self.model_scale = loaded.scale
        self.options = UpscaleOptions.from_keywords(upscale_args)
        self._radius = max(a.radius for a in loaded.archs)
        self.scaler = Scaler.ensure_obj(scaler, self.__class__)
        self.upscale_args = upscale_args
        super().__init__()

    @property
    def kernel_radius(self) -> int:
        """The models' receptive radius in input pixels."""
        return self._radius

    def scale(self, clip: vs.VideoNode, width: int | None = None, height: int | None = None,
              shift: tuple[float, float] = (0, 0), **kwargs: Any) -> vs.VideoNode:
        """Upscale `clip` to width x height (default: its own size), its source grid moved by shift = (top, left)
        input pixels, as vskernels scalers do. The bundle's output is returned untouched when it already is
        that size with no shift; otherwise `scaler` resizes it, kwargs going to that call."""
        width, height = self._wh_norm(clip, width, height)
        try:
            hr = upscaled(clip, self.bundle, self.options, hr_grid=False)
        except ValueError as e:
            raise vs.Error(f"STDOScaler: {e}") from None
        if (hr.width, hr.height) == (width, height) and not any(shift) and not kwargs:
            return hr
        # the model's output pixel X sits at input position (X + 0.5) / s - 0.5, so an input shift is s times
        # as many of its pixels
        s = self.model_scale
        return self.scaler.scale(hr, width, height, (shift[0] * s, shift[1] * s), **kwargs)

    @property
    def pretty_string(self) -> str:
        return self._pretty_string(bundle=self.bundle, scaler=self.scaler, **self.upscale_args)
