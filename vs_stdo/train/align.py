"""Estimate how an LR clip (a DVD, say) maps onto an HR clip (a Blu-ray) of the same show, from their content.

In time: frames are paired on small normalised luma thumbnails by a monotonic alignment with gaps (a
banded dynamic programme), so an offset, missing or repeated frames and cuts leave frames unpaired rather
than mismatched. In space: a coarse search (ratios near "the frames cover each other", offsets by phase
correlation) is refined to a fraction of a pixel by minimising the error of the HR resampled onto the LR
grid (the same Catmull-Rom resampler the models use, as zimg applies it) over tiles of a few well-textured
pairs, each tile with its own gain and offset (a BT.601 DVD against a BT.709 Blu-ray, different grading).
Each pair's residual after alignment is measured on the thumbnails; pairs far worse than the rest are left
out and listed.
"""
from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
import vapoursynth as vs
from tqdm import tqdm

from vs_stdo.core.mapping import Mapping, axis_matrix, resample, weights

core = vs.core

THUMB_WIDTH = 64  # thumbnails: plenty to tell frames apart, small enough for a whole episode in memory
GAP = 0.4  # cost of leaving a frame unpaired; a pair costs 1 - correlation (so unrelated frames stay apart)
GAP_RELATIVE = 1.0  # the same once thumbnails are aligned, in units of an HR frame's step to its neighbour
MIN_UNIT = 1e-3  # the least unit (1 - correlation): frames closer than this are alike even when lossless
COST_CAP = 4.0  # there a pair never costs more than this (an unrelated one: as much as two gaps and more)
BAND = 160  # frames either side of the coarse offset the time alignment considers on long clips
FULL_DP = 4_000_000  # up to this many frame pairs the time alignment considers all of them
MIN_PAIRED = 0.5  # below this share of the shorter clip's frames paired, the clips are not the same show
MIN_CORRELATION = 0.6  # nor when the median paired thumbnails correlate less than this
REFINE_PAIRS = 6  # pairs the refinement fits at full size
TILE = 64  # LR pixels per side of a refinement tile (3 x 3 tiles per pair, spread over the overlap)
SEARCH = 0.04  # the coarse search covers ratios within +-4 % of "the frames cover each other"
SHIFT_REACH = 16  # frames either way the full-size check of the frame offset looks
DROP_MADS = 5.0  # a pair is left out when its residual is this many MADs (and 3 dB) below the median


def default_matrix(width: int, height: int) -> int:
    """The matrix an untagged YUV clip is read with: BT.601 (SMPTE 170M) up to 1024x576, else BT.709."""
    return 6 if width <= 1024 and height <= 576 else 1


def to_luma(clip: vs.VideoNode, width: int | None = None, height: int | None = None) -> vs.VideoNode:
    """GRAYS BT.709 luma of any clip, read with its own matrix (or its size's default), optionally resized.

    Both sides end in the same luma so that a BT.601 DVD and a BT.709 Blu-ray compare like for like."""
    fmt = clip.format
    if fmt is None:
        raise ValueError("the clip has a variable format; convert it to one format first")
    size = {} if width is None else {"width": width, "height": height}
    if fmt.color_family == vs.GRAY:
        return core.resize.Bicubic(clip, **size, format=vs.GRAYS)
    if fmt.color_family == vs.YUV:
        props = clip.get_frame(0).props
        matrix = int(props.get("_Matrix", 2))
        if matrix in (2, 0):  # unspecified (or RGB, which a YUV clip cannot be)
            matrix = default_matrix(clip.width, clip.height)
        clip = core.resize.Bicubic(clip, **size, format=vs.RGBS, matrix_in=matrix)
    else:
        clip = core.resize.Bicubic(clip, **size, format=vs.RGBS)
    return core.resize.Bicubic(clip, format=vs.GRAYS, matrix=1)


def normalise(x: np.ndarray) -> np.ndarray:
    """Each frame (last two axes) to zero mean and unit variance (flat frames stay zero)."""
    x = x.astype(np.float32)
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    return x / np.maximum(x.std(axis=(-2, -1), keepdims=True), 1e-6)


def read_thumbnails(clip: vs.VideoNode, width: int, height: int, desc: str) -> np.ndarray:
    """All frames of `clip` as normalised luma thumbnails (frames, height, width), float16 to spare memory."""
    node = to_luma(clip, width, height)
    out = np.empty((clip.num_frames, height, width), np.float16)
    for n, frame in enumerate(tqdm(node.frames(), total=clip.num_frames, desc=desc, unit="fr", leave=False)):
        out[n] = normalise(np.asarray(frame[0]))
    return out


def read_frame(clip: vs.VideoNode, n: int) -> np.ndarray:
    """One frame's luma at full size (float32)."""
    return np.array(to_luma(clip).get_frame(n)[0], np.float32)


# ---------------------------------------------------------------- time ----------------------------------

def _flat(thumbs: np.ndarray) -> np.ndarray:
    """Thumbnails as rows whose dot products are correlations."""
    f = thumbs.reshape(len(thumbs), -1).astype(np.float32)
    return f / math.sqrt(f.shape[1])


def _pooled(thumbs: np.ndarray, k: int = 4) -> np.ndarray:
    """Thumbnails averaged over k x k blocks, as rows whose dot products are correlations."""
    n, h, w = thumbs.shape
    k = max(1, min(k, h, w))
    small = thumbs[:, :h - h % k, :w - w % k].astype(np.float32).reshape(n, h // k, k, w // k, k).mean((2, 4))
    return _flat(normalise(small))


def _band_starts(hr_thumbs: np.ndarray, lr_thumbs: np.ndarray, band: int) -> np.ndarray:
    """Per HR frame, the first LR frame of its band: centred on the offset that nearest-neighbour
    matches of every 8th HR frame agree on locally (a running median, so cuts move it). On thumbnails
    pooled 4 x 4, so that a whole episode against another takes seconds."""
    hr, lr = _pooled(hr_thumbs), _pooled(lr_thumbs)
    probe = np.arange(0, len(hr), 8)
    sims = np.concatenate([hr[probe[i:i + 256]] @ lr.T for i in range(0, len(probe), 256)])
    shifts = sims.argmax(1) - probe
    local = np.array([np.median(shifts[max(0, i - 12):i + 13]) for i in range(len(probe))])
    centre = np.interp(np.arange(len(hr)), probe, local)
    return np.clip(np.round(np.arange(len(hr)) + centre).astype(int) - band, 0, max(0, len(lr) - 2 * band))


def match_frames(hr_thumbs: np.ndarray, lr_thumbs: np.ndarray, floor: float | None = None,
                 band: int | None = None) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Pair HR and LR frames by content: ([(hr_frame, lr_frame), ...] increasing in both, their correlations).

    A global alignment with gaps: a pair costs 1 - the correlation of the normalised thumbnails, a frame
    left unpaired costs GAP. Runs of identical frames (a still) keep the offset of their neighbours, since
    any other choice pays extra gaps. That finds the offset on thumbnails framed differently, but slow
    motion makes neighbouring frames nearly as alike as twins; so once the thumbnails are aligned (the
    HR's put on the LR's grid through the mapping), given a `floor` (`noise_floor`: what twins differ by)
    a pair's cost is measured in units of how far the HR frame is from its nearest neighbour, but no less
    than the floor (so stills do not blow it up), and a gap as GAP_RELATIVE such units: a run of
    off-by-one pairs then loses to the two gaps of a missing and a repeated frame. Long clips are aligned
    within `band` frames of a coarse offset (by default all pairs are considered up to FULL_DP of them)."""
    hr, lr = _flat(hr_thumbs), _flat(lr_thumbs)
    nh, nl = len(hr), len(lr)
    if nh == 0 or nl == 0:
        raise ValueError("both clips need at least one frame")
    if band is None and nh * nl > FULL_DP:
        band = BAND
    if band is None or 2 * band + 1 >= nl + 1:
        width, starts = nl + 1, np.zeros(nh + 1, int)
    else:
        width = 2 * band + 1
        s = _band_starts(hr_thumbs, lr_thumbs, band)
        starts = np.concatenate([s[:1], s])  # row i (i HR frames used) covers LR prefix counts [start, start+width)
    if floor is not None and nh > 1:
        step = 1.0 - (hr[1:] * hr[:-1]).sum(1)
        nearest = np.minimum(np.concatenate([[np.inf], step]), np.concatenate([step, [np.inf]]))
        unit, gap, cap = np.maximum(nearest, max(floor, MIN_UNIT)), GAP_RELATIVE, COST_CAP
    else:
        unit, gap, cap = np.ones(nh, np.float32), GAP, np.inf
    inf = np.inf
    d = np.full((nh + 1, width), inf)
    j0 = np.arange(width) + starts[0]
    d[0] = np.where(j0 <= nl, j0 * gap, inf)
    cost_rows = []
    for i in range(1, nh + 1):
        lo, plo = starts[i], starts[i - 1]
        j = np.arange(lo, lo + width)  # LR prefix counts of this row
        valid = j <= nl
        prev = d[i - 1]
        # up: D[i-1][j] + gap; diag: D[i-1][j-1] + cost(i-1, j-1)
        up_idx, diag_idx = j - plo, j - 1 - plo
        up = np.where((up_idx >= 0) & (up_idx < width), prev[np.clip(up_idx, 0, width - 1)], inf) + gap
        jj = np.clip(j - 1, 0, nl - 1)
        corr = lr[jj] @ hr[i - 1]
        cost = np.minimum((1.0 - corr) / unit[i - 1], cap)
        cost_rows.append((cost, corr))
        diag = np.where((diag_idx >= 0) & (diag_idx < width) & (j >= 1),
                        prev[np.clip(diag_idx, 0, width - 1)] + cost, inf)
        a = np.minimum(up, diag)
        a = np.where(j == 0, i * gap, a)
        a = np.where(valid, a, inf)
        row = gap * j + np.minimum.accumulate(a - gap * j)  # left moves: D[i][j-1] + gap
        d[i] = np.where(valid, row, inf)
    # the end: all HR frames consumed, the LR frames beyond the last in the band left unpaired
    last = starts[nh] + np.arange(width)
    total = np.where(last <= nl, d[nh] + (nl - last) * gap, inf)
    i, k = nh, int(np.argmin(total))
    j = starts[i] + k
    pairs, corr = [], []
    while i > 0 and j > 0:
        k = j - starts[i]
        cost, corr_row = cost_rows[i - 1]
        cost = cost[k]
        pk = j - 1 - starts[i - 1]
        if 0 <= pk < width and np.isclose(d[i][k], d[i - 1][pk] + cost, rtol=0, atol=1e-9):
            pairs.append((int(i - 1), int(j - 1)))
            corr.append(corr_row[k])
            i, j = i - 1, j - 1
            continue
        pk = j - starts[i - 1]
        if 0 <= pk < width and np.isclose(d[i][k], d[i - 1][pk] + gap, rtol=0, atol=1e-9):
            i -= 1
        else:
            j -= 1
    return pairs[::-1], np.array(corr[::-1], np.float32)


def noise_floor(hr_thumbs: np.ndarray, lr_thumbs: np.ndarray, pairs: list[tuple[int, int]]) -> float:
    """Twice the median dissimilarity (1 - correlation) of the given pairs: what true twins differ by
    (coding noise, resampling), the least unit `match_frames` measures a pair's cost in."""
    hr, lr = _flat(hr_thumbs[[h for h, _ in pairs]]), _flat(lr_thumbs[[l for _, l in pairs]])
    return 2 * float(np.median(1.0 - (hr * lr).sum(1)))


# ---------------------------------------------------------------- space ---------------------------------

def _warp(q: float, a0: float, src_len: int, dst_len: int) -> torch.Tensor:
    """Axis matrix putting a source grid on a destination grid whose pixel position x lies at a0 + q * x."""
    return axis_matrix(1 / q, -a0 / q, 1, 0, src_len, 0, dst_len)


def _hann(h: int, w: int) -> np.ndarray:
    return np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)


def coarse_mapping(hr_frames: list[np.ndarray], lr_frames: list[np.ndarray], search: float = SEARCH,
                   width: int = 128) -> Mapping:
    """A first estimate at low resolution: ratios within +-`search` of the frames covering each other, in
    steps of 0.5 %, each with its offset from phase correlation summed over the given pairs; the ratio
    pair with the sharpest correlation peak wins."""
    hr_h, hr_w = hr_frames[0].shape
    lr_h, lr_w = lr_frames[0].shape
    f = max(1.0, lr_w / width)
    gw, gh = max(8, round(lr_w / f)), max(8, round(lr_h / f))
    win = _hann(gh, gw)
    lows = [normalise(resample(torch.from_numpy(x), _warp(f, 0, lr_h, gh), _warp(f, 0, lr_w, gw)).numpy())
            for x in lr_frames]
    spectra = [np.conj(np.fft.rfft2(x * win)) for x in lows]
    hrs = [torch.from_numpy(x) for x in hr_frames]
    steps = np.arange(-search, search + 1e-9, 0.005)
    best = (-np.inf, None)
    for sy in steps:
        ry = hr_h / lr_h * (1 + sy)
        oy = (hr_h - ry * lr_h) / 2
        my = _warp(ry * f, oy, hr_h, gh)
        rows = [my @ h for h in hrs]
        for sx in steps:
            rx = hr_w / lr_w * (1 + sx)
            ox = (hr_w - rx * lr_w) / 2
            mx = _warp(rx * f, ox, hr_w, gw)
            surface = 0
            for r, spec in zip(rows, spectra):
                a = np.fft.rfft2(normalise((r @ mx.T).numpy()) * win)
                cross = a * spec
                surface = surface + np.fft.irfft2(cross / np.maximum(np.abs(cross), 1e-9), s=(gh, gw))
            peak = np.unravel_index(int(np.argmax(surface)), surface.shape)
            if surface[peak] > best[0]:
                best = (surface[peak], (rx, ry, ox, oy, peak, surface))
    _, (rx, ry, ox, oy, (py, px), surface) = best
    # peak at d: the LR shows at x what the mapped HR shows at x - d (sub-pixel by a parabola)
    def sub(c: int, n: int, get) -> float:
        d = c if c <= n // 2 else c - n
        l, m, r = get((c - 1) % n), get(c), get((c + 1) % n)
        den = l - 2 * m + r
        return d + (0.5 * (l - r) / den if abs(den) > 1e-12 else 0.0)
    dy = sub(py, gh, lambda k: surface[k, px])
    dx = sub(px, gw, lambda k: surface[py, k])
    return Mapping(lr_w, lr_h, hr_w, hr_h, rx, ry, ox - rx * f * dx, oy - ry * f * dy)


def _valid_range(ratio: float, offset: float, lr_len: int, hr_len: int, margin: int = 4,
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
        ylo, yhi = _valid_range(m.ratio_y, m.offset_y, m.lr_height, m.hr_height)
        xlo, xhi = _valid_range(m.ratio_x, m.offset_x, m.lr_width, m.hr_width)
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
    ylo, yhi = _valid_range(qy, ay, th, hh, margin=1, least=4)
    xlo, xhi = _valid_range(qx, ax, tw, hw, margin=1, least=4)
    my, mx = _warp(qy, ay, hh, th)[ylo:yhi], _warp(qx, ax, hw, tw)[xlo:xhi]
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


def pick_pairs(hr_thumbs: np.ndarray, pairs: list[tuple[int, int]], corr: np.ndarray, n: int = REFINE_PAIRS
               ) -> list[int]:
    """Indices into `pairs` of up to n pairs to refine on: one per stretch of the clip, the most textured
    (thumbnail gradient energy) among its well-matched ones (correlation at or above the median)."""
    good = np.flatnonzero(corr >= np.median(corr))
    thumbs = hr_thumbs[[pairs[i][0] for i in good]].astype(np.float32)
    texture = np.abs(np.diff(thumbs, axis=1)).mean((1, 2)) + np.abs(np.diff(thumbs, axis=2)).mean((1, 2))
    picks = []
    for part in np.array_split(np.arange(len(good)), min(n, len(good))):
        if len(part):
            picks.append(int(good[part[np.argmax(texture[part])]]))
    return picks


# ---------------------------------------------------------------- result --------------------------------

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


def estimate(hr_thumbs: np.ndarray, lr_thumbs: np.ndarray, hr_frame: Callable[[int], np.ndarray],
             lr_frame: Callable[[int], np.ndarray]) -> Alignment:
    """The whole estimate from thumbnails (normalised, the same size on both sides) and a way to get the
    full-size luma of a frame of each clip (hr_frame(n), lr_frame(n) -> 2-D float32 array)."""
    pairs, corr = match_frames(hr_thumbs, lr_thumbs)
    shorter = min(len(hr_thumbs), len(lr_thumbs))
    median = float(np.median(corr)) if len(corr) else 0.0
    if len(pairs) < max(1, MIN_PAIRED * shorter) or median < MIN_CORRELATION:
        raise ValueError(f"the LR does not look like the HR: {len(pairs)} of {shorter} frames pair up, their "
                         f"thumbnails correlate {median:.2f} (same content: 0.9 or more); check that both are "
                         f"the same episode")
    # pairs from framing-blind thumbnails can be a frame or two off in slow motion (or more in a zoom or
    # pan): refine on them, check the offset at full size, pair again on thumbnails aligned through the
    # result, and refine once more on the better pairs
    def rematch(mapping: Mapping, pairs: list[tuple[int, int]]
                ) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray, np.ndarray]:
        hr_aligned, lr_aligned = aligned_thumbnails(hr_thumbs, lr_thumbs, mapping)
        pairs, corr = match_frames(hr_aligned, lr_aligned, noise_floor(hr_aligned, lr_aligned, pairs))
        if len(pairs) < max(1, MIN_PAIRED * shorter):
            raise ValueError(f"the LR does not look like the HR: once aligned, only {len(pairs)} of {shorter} "
                             f"frames pair up; check that both are the same episode")
        return pairs, corr, hr_aligned, lr_aligned

    chosen = [pairs[i] for i in pick_pairs(hr_thumbs, pairs, corr)]
    hr_frames, lr_frames = [hr_frame(h) for h, _ in chosen], [lr_frame(l) for _, l in chosen]
    mapping, _ = refine(hr_frames, lr_frames, coarse_mapping(hr_frames, lr_frames), spread=False)
    check = np.argsort([-float(np.abs(np.diff(h, axis=1)).mean()) for h in hr_frames])[:2]
    shift, mapping = best_shift([hr_frames[k] for k in check], lr_frame, [chosen[k][1] for k in check],
                                len(lr_thumbs), mapping)
    pairs = [(h, l + shift) for h, l in pairs if 0 <= l + shift < len(lr_thumbs)]
    pairs, corr, _, _ = rematch(mapping, pairs)
    picked = [pairs[i] for i in pick_pairs(hr_thumbs, pairs, corr)]
    if picked != chosen:
        chosen = picked
        hr_frames, lr_frames = [hr_frame(h) for h, _ in chosen], [lr_frame(l) for _, l in chosen]
    mapping, precision = refine(hr_frames, lr_frames, mapping, (0.8, 0.0))
    pairs, corr, hr_aligned, lr_aligned = rematch(mapping, pairs)
    res = thumb_residuals(hr_aligned, lr_aligned, pairs)
    bad = set(outliers(res).tolist())
    med = float(np.median(res))
    dropped = [(h, l, f"residual {res[i]:.1f} dB, median {med:.1f}") for i, (h, l) in enumerate(pairs) if i in bad]
    keep = [i for i in range(len(pairs)) if i not in bad]
    return Alignment(mapping, [pairs[i] for i in keep], [float(res[i]) for i in keep], dropped,
                     len(hr_thumbs), len(lr_thumbs), precision, chosen)


def align(hr: vs.VideoNode, lr: vs.VideoNode, thumb_width: int = THUMB_WIDTH) -> Alignment:
    """Estimate how `lr` maps onto `hr` (any formats, sizes and frame counts): frames paired by content,
    the mapping refined to a fraction of a pixel. One pass over both clips for thumbnails, full frames
    only for the few pairs the refinement uses. ValueError when the clips do not show the same thing."""
    tw = thumb_width
    th = max(8, round(tw * hr.height / hr.width))
    hr_thumbs = read_thumbnails(hr, tw, th, "HR thumbnails")
    lr_thumbs = read_thumbnails(lr, tw, th, "LR thumbnails")
    return estimate(hr_thumbs, lr_thumbs, lambda n: read_frame(hr, n), lambda n: read_frame(lr, n))
