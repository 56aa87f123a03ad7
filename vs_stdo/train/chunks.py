"""Splitting scored patches into k chunks, hardest first (STDO step 3), and --chunks auto's choice of how many
models pay. Pure numpy on per-patch PSNR arrays (frames, rows, cols); scoring.py gives the PSNR."""
from __future__ import annotations

import numpy as np

from ..core.metrics import frames_psnr, psnr_to_mse
from ..core.training_record import AutoRecord

SPLITS = ("error", "count")


def split(psnr: np.ndarray, k: int, by: str = "error", floor: float = 0.0) -> tuple[np.ndarray, list[float]]:
    """Labels (uint8, same shape as psnr) for k chunks by PSNR rank, chunk 0 the hardest (lowest PSNR),
    and the k-1 PSNR thresholds between chunks.

    by "error": each chunk holds an equal share of the patches' total squared error (so the hard chunks
    are small: a few patches carry most of a clip's error); "count": equal numbers of patches (the paper's).
    Every chunk gets at least one patch, and at least `floor` times an equal share (floor 1: "count"), so
    one outlier frame cannot take a chunk model for a handful of patches.
    """
    flat = psnr.reshape(-1)
    if not 1 <= k <= min(255, flat.size):
        raise ValueError(f"cannot split {flat.size} patches into {k} chunks; use 1 <= k <= {min(255, flat.size)}")
    if by not in SPLITS:
        raise ValueError(f"unknown split {by!r}; choose one of {', '.join(SPLITS)}")
    if not 0 <= floor <= 1:
        raise ValueError(f"a chunk's floor is a share of an equal chunk in [0, 1], got {floor}")
    least = max(1, int(floor * flat.size / k))
    order = np.argsort(flat, kind="stable")
    sorted_psnr = flat[order]
    if by == "count":
        starts = [(i * flat.size) // k for i in range(k)]
    else:
        before = np.cumsum(psnr_to_mse(sorted_psnr))  # error up to and including each patch
        starts = [0]
        for i in range(1, k):
            cut = int(np.searchsorted(before, before[-1] * i / k))
            starts.append(min(max(cut, starts[-1] + least), flat.size - (k - i) * least))
    labels = np.empty(flat.size, dtype=np.uint8)
    labels[order] = np.repeat(np.arange(k, dtype=np.uint8), np.diff(starts + [flat.size]))
    return labels.reshape(psnr.shape), [float(sorted_psnr[i]) for i in starts[1:]]


OUTLIER_FLOOR = 0.25  # --min-chunk auto: the floor used when the error split gives a chunk to one frame


def floor_for(psnr: np.ndarray, k: int, by: str, min_chunk: float | str) -> float:
    """The floor `split` should use: a number is used as given; "auto" is 0 unless the plain split gives some
    chunk the patches of one frame only (an outlier frame, e.g. a fade or a cut, whose few patches would take
    chunk models to themselves), and then OUTLIER_FLOOR. psnr is (frames, rows, cols)."""
    if min_chunk != "auto":
        return float(min_chunk)
    labels, _ = split(psnr, k, by)
    one_frame = any(np.unique(np.nonzero(labels == c)[0]).size == 1 for c in range(k))  # axis 0: the frame
    return OUTLIER_FLOOR if len(psnr) > 1 and one_frame else 0.0


def floor_note(floor: float) -> str:
    """How the training run and `stdo info` name a split's floor after its chunk sizes ("" for none)."""
    return f"; each at least {floor:g} of an equal share" if floor > 0 else ""


def label(psnr: np.ndarray, thresholds: list[float]) -> np.ndarray:
    """Chunks of patches by the thresholds of a split: chunk i holds thresholds[i-1] <= PSNR < thresholds[i]."""
    return np.searchsorted(np.asarray(thresholds, dtype=np.float64), psnr, side="right").astype(np.uint8)


AUTO_TOLERANCE = 0.05  # dB: --chunks auto keeps the fewest models whose routed PSNR is this close to all of them


def fewest_models(each: np.ndarray, tolerance: float = AUTO_TOLERANCE) -> tuple[list[int], list[float]]:
    """--chunks auto: which of k models to keep, from each model's per-patch PSNR `each` (k, frames, ...).

    Every patch goes to its best kept model (as best-model labels route it), and a set of models is judged by
    the mean of per-frame PSNR, as `stdo eval` reports it. Models are added greedily, each time the one that
    raises it most; the first m within `tolerance` dB of all k models' are kept. Returns the kept models
    (ascending) and the PSNR after adding 1, ..., k."""
    mse = psnr_to_mse(each.reshape(*each.shape[:2], -1))
    order: list[int] = []
    best = np.full(mse.shape[1:], np.inf)
    curve = []
    for _ in range(len(mse)):
        i = max((i for i in range(len(mse)) if i not in order), key=lambda i: frames_psnr(np.minimum(best, mse[i])))
        order.append(i)
        best = np.minimum(best, mse[i])
        curve.append(round(frames_psnr(best), 4))
    m = next(n for n, p in enumerate(curve, 1) if p >= curve[-1] - tolerance)
    return sorted(order[:m]), curve


def auto_summary(auto: AutoRecord) -> str:
    """What --chunks auto measured and kept, in one line (the training summary and `stdo info`)."""
    curve = auto.psnr
    return (f"--chunks auto kept {len(auto.kept)} of {len(curve)} chunk models {auto.kept}: mean PSNR of "
            f"the labelled frames with the best 1..{len(curve)} of them {', '.join(f'{p:.2f}' for p in curve)} dB "
            f"(all {len(curve)}: {curve[-1] - curve[0]:+.2f} dB over the best one alone)")
