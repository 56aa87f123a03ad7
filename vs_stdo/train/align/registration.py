"""Where the LR frame lies on the HR grid (`core.mapping.Mapping`: ratio and offset per axis), from a few pairs
of full-size luma frames already paired in time.

A coarse search (ratios near "the frames cover each other", offsets by phase correlation) is refined to a
fraction of a pixel by minimising the error of the HR resampled onto the LR grid (the same Catmull-Rom resampler
the models use, as zimg applies it) over tiles of the pairs, each tile with its own gain and offset (a BT.601
DVD against a BT.709 Blu-ray, different grading). The frame offset the pairs came with is checked at full size
(`best_shift`), and thumbnails are put through the mapping to pair them again (`aligned_thumbnails`).
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Iterable

import numpy as np
import torch
from skimage.registration import phase_cross_correlation

from vs_stdo.core.mapping import Mapping, axis_matrix, resample, weights

from .reading import normalise

TILE = 64  # LR pixels per side of a refinement tile (3 x 3 tiles per pair, spread over the overlap)
SEARCH = 0.04  # the coarse search covers ratios within +-4 % of "the frames cover each other"
SHIFT_REACH = 16  # frames either way the full-size check of the frame offset looks


def warp(q: float, a0: float, src_len: int, dst_len: int) -> torch.Tensor:
    """Axis matrix putting a source grid on a destination grid whose pixel position x lies at a0 + q * x."""
    return axis_matrix(1 / q, -a0 / q, 1, 0, src_len, 0, dst_len)


def hann(h: int, w: int) -> np.ndarray:
    """A 2-D Hann window: frames faded to zero at their edges, so that phase correlation sees no wrap-around seam."""
    return np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)


def coarse_mapping(hr_frames: list[np.ndarray], lr_frames: list[np.ndarray], search: float = SEARCH,
                   width: int = 128) -> Mapping:
    """A first estimate at low resolution (`width` pixels wide): ratios within +-`search` of the frames covering
    each other, in steps of 0.5 %; the ratio pair whose phase correlation surfaces, summed over the given pairs,
    peak highest wins. Its offset is each pair's shift to a twentieth of a pixel (scikit-image's upsampled DFT
    around the peak), the median taken."""
    hr_h, hr_w = hr_frames[0].shape
    lr_h, lr_w = lr_frames[0].shape
    f = max(1.0, lr_w / width)
    gw, gh = max(8, round(lr_w / f)), max(8, round(lr_h / f))
    win = hann(gh, gw)
    lows = [normalise(resample(torch.from_numpy(x), warp(f, 0, lr_h, gh), warp(f, 0, lr_w, gw)).numpy()) * win
            for x in lr_frames]
    spectra = [np.conj(np.fft.rfft2(x)) for x in lows]
    hrs = [torch.from_numpy(x) for x in hr_frames]
    steps = np.arange(-search, search + 1e-9, 0.005)
    best = (-np.inf, (0.0, 0.0, 0.0, 0.0), [])
    for sy in steps:
        ry = hr_h / lr_h * (1 + sy)
        oy = (hr_h - ry * lr_h) / 2
        my = warp(ry * f, oy, hr_h, gh)
        rows = [my @ h for h in hrs]
        for sx in steps:
            rx = hr_w / lr_w * (1 + sx)
            ox = (hr_w - rx * lr_w) / 2
            mx = warp(rx * f, ox, hr_w, gw)
            lows_hr = [normalise((r @ mx.T).numpy()) * win for r in rows]
            crosses = [np.fft.rfft2(x) * spec for x, spec in zip(lows_hr, spectra)]
            peak = float(np.fft.irfft2(sum(c / np.maximum(np.abs(c), 1e-9) for c in crosses), s=(gh, gw)).max())
            if peak > best[0]:
                best = (peak, (rx, ry, ox, oy), lows_hr)
    _, (rx, ry, ox, oy), lows_hr = best
    # shift d: the LR shows at x what the mapped HR shows at x - d
    dy, dx = np.median([phase_cross_correlation(lr, hr, upsample_factor=20, normalization="phase")[0]
                        for lr, hr in zip(lows, lows_hr)], axis=0)
    return Mapping(lr_w, lr_h, hr_w, hr_h, rx, ry, ox - rx * f * dx, oy - ry * f * dy)


def valid_range(ratio: float, offset: float, lr_len: int, hr_len: int, margin: int = 4,
                 least: int = 16) -> tuple[int, int]:
    """LR pixels whose resampling footprint lies inside the HR frame, less `margin` at each edge."""
    reach = 2 * max(1.0, ratio) + 1
    lo = math.ceil((reach - offset) / ratio)
    hi = math.floor((hr_len - reach - offset) / ratio)
    lo, hi = max(lo, margin), min(hi, lr_len - margin)
    if hi - lo < least:
        raise ValueError(f"the LR and HR frames overlap too little to align them (under {least} LR pixels)")
    return lo, hi


def _tiles(lo: int, hi: int, n: int = 3, tile: int = TILE) -> list[tuple[int, int]]:
    """n windows of at most `tile` pixels spread evenly over [lo, hi)."""
    t = min(tile, (hi - lo) // n)
    return [(round(lo + k * (hi - lo - t) / (n - 1)), round(lo + k * (hi - lo - t) / (n - 1)) + t) for k in range(n)]


@functools.lru_cache(maxsize=64)
def _blur_matrix(n: int, sigma: float) -> torch.Tensor:
    """(n, n) Gaussian blur of one axis, edges replicated; rows sum to 1."""
    r = math.ceil(3 * sigma)
    taps = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (taps / sigma) ** 2)
    k = k / k.sum()
    out = torch.zeros(n, n, dtype=torch.float64)
    rows = torch.arange(n)
    for t, w in zip(taps.long().tolist(), k.tolist()):
        out[rows, (rows + t).clamp(0, n - 1)] += w
    return out


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (..., H, W) with replicated edges (no blur for sigma 0): two small
    matmuls, cheaper here than convolutions and as differentiable."""
    if sigma <= 0:
        return x
    by, bx = _blur_matrix(x.shape[-2], sigma).to(x.dtype), _blur_matrix(x.shape[-1], sigma).to(x.dtype)
    return by @ x @ bx.T


class _Problem:
    """The refinement's error: HR tiles resampled onto the LR grid through (ratio_x, ratio_y, offset_x,
    offset_y), each tile fitted with its own gain and offset, against the LR tiles; normalised by the
    LR tiles' variance."""

    def __init__(self, hr_frames: list[np.ndarray], lr_frames: list[np.ndarray], start: Mapping) -> None:
        m = start
        ylo, yhi = valid_range(m.ratio_y, m.offset_y, m.lr_height, m.hr_height)
        xlo, xhi = valid_range(m.ratio_x, m.offset_x, m.lr_width, m.hr_width)
        # LR tiles and the HR window each needs (room for the kernel and for the refinement's moves)
        self.rows = [(lo, hi, self._window(m.ratio_y, m.offset_y, lo, hi, m.hr_height)) for lo, hi in _tiles(ylo, yhi)]
        self.cols = [(lo, hi, self._window(m.ratio_x, m.offset_x, lo, hi, m.hr_width)) for lo, hi in _tiles(xlo, xhi)]
        self.hr = [torch.from_numpy(x).float() for x in hr_frames]  # float32 matmuls: twice as fast
        self.lr = [torch.from_numpy(x).float() for x in lr_frames]
        self._cache: dict[tuple[float, tuple[int, ...]], tuple[torch.Tensor, torch.Tensor]] = {}

    @staticmethod
    def _window(ratio: float, offset: float, lo: int, hi: int, hr_len: int) -> tuple[int, int]:
        pad = 4 * max(1.0, ratio) + 12
        a = max(0, math.floor(offset + ratio * lo - pad))
        b = min(hr_len, math.ceil(offset + ratio * hi + pad))
        return a, b - a

    def _targets(self, sigma: float, pairs: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """The LR tiles of `pairs`, blurred and centred (tiles, pixels), and their variances; cached."""
        key = (sigma, pairs)
        if key not in self._cache:
            tiles = torch.stack([self.lr[k][ylo:yhi, xlo:xhi] for k in pairs for ylo, yhi, _ in self.rows
                                 for xlo, xhi, _ in self.cols])
            t = _blur(tiles, sigma).flatten(1)
            t = t - t.mean(1, keepdim=True)
            self._cache[key] = (t, t.pow(2).mean(1).clamp_min(1e-12))
        return self._cache[key]

    def loss(self, p: torch.Tensor, sigma: float, pairs: Iterable[int] | None = None) -> torch.Tensor:
        """Mean normalised squared error over tiles and pairs for parameters p = (rx, ry, ox, oy)."""
        pairs = tuple(range(len(self.hr)) if pairs is None else pairs)
        rx, ry, ox, oy = p
        mys = [(weights(1 / ry, -oy / ry, 1, *win, lo, hi - lo).float(), win) for lo, hi, win in self.rows]
        mxs = [(weights(1 / rx, -ox / rx, 1, *win, lo, hi - lo).float(), win) for lo, hi, win in self.cols]
        pred = torch.stack([my @ self.hr[k][ya:ya + yn, xa:xa + xn] @ mx.T for k in pairs
                            for my, (ya, yn) in mys for mx, (xa, xn) in mxs])
        pred = _blur(pred, sigma).flatten(1)
        pred = pred - pred.mean(1, keepdim=True)
        target, variance = self._targets(sigma, pairs)
        gain = (pred * target).sum(1) / pred.pow(2).sum(1).clamp_min(1e-12)
        return ((target - gain[:, None] * pred).pow(2).mean(1) / variance).mean()


def _params(m: Mapping) -> torch.Tensor:
    return torch.tensor([m.ratio_x, m.ratio_y, m.offset_x, m.offset_y], dtype=torch.float64)


def _solve(problem: _Problem, start: Mapping, sigma: float, pairs: Iterable[int] | None = None,
           iterations: int = 40) -> Mapping:
    """Minimise the problem's error from `start` with L-BFGS. Unknowns are scaled to HR pixels of movement
    at the frame's far edge, so that all four are alike for the optimiser."""
    base = _params(start)
    scale = torch.tensor([1 / start.lr_width, 1 / start.lr_height, 1.0, 1.0], dtype=torch.float64)
    u = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([u], lr=1, max_iter=iterations, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-12)
    pairs = list(pairs) if pairs is not None else None

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = problem.loss(base + u * scale, sigma, pairs)
        loss.backward()
        return loss

    opt.step(closure)
    rx, ry, ox, oy = (base + u.detach() * scale).tolist()
    return Mapping(start.lr_width, start.lr_height, start.hr_width, start.hr_height, rx, ry, ox, oy)


def refine(hr_frames: list[np.ndarray], lr_frames: list[np.ndarray], start: Mapping,
           sigmas: tuple[float, ...] = (4.0, 2.0, 0.8, 0.0), spread: bool = True
           ) -> tuple[Mapping, float | None]:
    """Refine `start` to a fraction of a pixel over the given frame pairs (full-size luma), coarse to fine
    (Gaussian blurs of `sigmas` LR pixels widen the basin first). Returns the mapping and its precision:
    the spread (HR px, standard error) of the estimates from each pair alone, or None for a single pair
    or without `spread`."""
    m = start
    for sigma in sigmas:
        m = _solve(_Problem(hr_frames, lr_frames, m), m, sigma)
    if len(hr_frames) < 2 or not spread:
        return m, None
    problem = _Problem(hr_frames, lr_frames, m)
    alone = [m.distance(_solve(problem, m, 0.0, [k], iterations=15)) for k in range(len(hr_frames))]
    return m, float(np.sqrt(np.mean(np.square(alone)) / (len(alone) - 1)))


def aligned_thumbnails(hr_thumbs: np.ndarray, lr_thumbs: np.ndarray, mapping: Mapping
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(HR, LR) thumbnails of the part both show, the HR's resampled onto the LR's grid through `mapping`,
    each normalised again (float16, as they are kept)."""
    th, tw = lr_thumbs.shape[1:]
    hh, hw = hr_thumbs.shape[1:]
    m = mapping
    # LR thumbnail pixel x lies at LR x * lr_w / tw, HR ox + rx * lr_w / tw * x, HR thumbnail (that) * hw / hr_w
    qx, ax = m.ratio_x * m.lr_width / tw * hw / m.hr_width, m.offset_x * hw / m.hr_width
    qy, ay = m.ratio_y * m.lr_height / th * hh / m.hr_height, m.offset_y * hh / m.hr_height
    ylo, yhi = valid_range(qy, ay, th, hh, margin=1, least=4)
    xlo, xhi = valid_range(qx, ax, tw, hw, margin=1, least=4)
    my, mx = warp(qy, ay, hh, th)[ylo:yhi], warp(qx, ax, hw, tw)[xlo:xhi]
    hr = np.concatenate([normalise(resample(torch.from_numpy(hr_thumbs[k:k + 512].astype(np.float32)), my, mx).numpy())
                         for k in range(0, len(hr_thumbs), 512)]).astype(np.float16)
    return hr, normalise(lr_thumbs[:, ylo:yhi, xlo:xhi]).astype(np.float16)


def best_shift(hr_frames: list[np.ndarray], lr_frame: Callable[[int], np.ndarray], lr_index: list[int],
               lr_count: int, mapping: Mapping, reach: int = SHIFT_REACH) -> tuple[int, Mapping]:
    """The time shift d (LR frame l + d instead of l, for every given pair) whose pairs fit best at full
    size after a quick refinement, with that refinement's mapping; d = 0 unless another fits better.

    Framing-blind thumbnails can pair frames a few apart when the shot zooms or pans: the HR a few frames
    on is framed like the LR. The mapping then absorbs the motion, and only the full-size error tells
    the true twins (coding noise alone) from the near ones (parallax, motion, new content at the edges).
    Shifts are tried at 0, +-2, +-4, ... up to +-reach, then one frame at a time around the best."""
    def fit(d: int, m: Mapping, sigma: float) -> tuple[float, Mapping]:
        lrs = [lr_frame(l + d) for l in lr_index]
        m = _solve(_Problem(hr_frames, lrs, m), m, sigma, iterations=15)
        return float(_Problem(hr_frames, lrs, m).loss(_params(m), sigma)), m

    ok = lambda d: all(0 <= l + d < lr_count for l in lr_index) and abs(d) <= reach  # noqa: E731
    # screen blurred (a wide basin, cheap), one frame at a time around the best, then the best few sharp
    coarse: dict[int, tuple[float, Mapping]] = {}
    for d in [0] + [k * sign for k in (2, 4, 8, 16, 32) for sign in (1, -1)]:
        if ok(d):
            coarse[d] = fit(d, mapping, 3.0)
    best = None
    while best != (best := min(coarse, key=lambda d: coarse[d][0])):
        for d in (best - 1, best + 1):
            if d not in coarse and ok(d):
                coarse[d] = fit(d, mapping, 3.0)
    sharp = {d: fit(d, coarse[d][1], 0.0) for d in sorted(coarse, key=lambda d: coarse[d][0])[:3]}
    best = min(sharp, key=lambda d: sharp[d][0])
    return best, sharp[best][1]


