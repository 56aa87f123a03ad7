"""Combed frames: two fields of different moments woven into one frame (a telecined DVD not inverse-telecined, an
interlaced source), which a model must not learn from.

Where things move, a combed frame's rows alternate between the two moments: the picture zigzags from row to row.
A pixel zigzags where the vertical steps into and out of its row, and out of the next, alternate in sign and are
each larger than noise; a frame is combed where far more of its pixels zigzag than in the clip's usual frame (fine
horizontal texture, such as a building's rows of windows, zigzags in every frame alike and is no combing). Still
frames of a telecined clip show nothing (their fields agree) and do no harm.
"""
from __future__ import annotations

import numpy as np
import torch

STEP = 0.03     # a vertical step larger than noise, in [0, 1] pixel values
LEAST = 0.005   # a combed frame's zigzagging share of pixels, at least ...
ABOVE = 4.0     # ... and this many times the clip's median share


def zigzag(frames: torch.Tensor) -> np.ndarray:
    """Per frame (F, P, H, W: uint8, or float in [0, 1]), the share of pixels (of the mean of the planes) where the
    picture zigzags over three rows."""
    y = frames.float().mean(1) / (255 if frames.dtype == torch.uint8 else 1)
    d = y[:, 1:] - y[:, :-1]
    big = d.abs() > STEP
    turn = (d[:, 1:] * d[:, :-1] < 0) & big[:, 1:] & big[:, :-1]
    return (turn[:, 1:] & turn[:, :-1]).float().mean((1, 2)).numpy()


def combed(shares: np.ndarray) -> np.ndarray:
    """Which frames of a clip with these `zigzag` shares look combed."""
    if len(shares) == 0:
        return np.zeros(0, bool)
    return (shares > LEAST) & (shares > ABOVE * float(np.median(shares)))


def warning(which: np.ndarray, side: str, keep: bool = False) -> str:
    """What to tell a user whose `side` ("LR", "HR") has the combed frames `which` (a bool per training frame)."""
    done = "they are trained on (--combed-frames keep)" if keep else \
        "they are left out of training (--combed-frames keep trains on them)"
    return (f"warning: {int(which.sum())} of {len(which)} training frames of the {side} look combed (two fields of "
            f"different moments in one frame); {done}. The {side} looks telecined (a 29.97 "
            f"fps DVD of 23.976 fps film: 3:2 pulldown) or interlaced: inverse-telecine it first with vivtc.VFM + "
            f"VDecimate in a .vpy (or deinterlace it with QTGMC) to train on every frame")


def left_out(lr_shares: np.ndarray, hr_shares: np.ndarray, keep: bool = False) -> tuple[list[int], list[str]]:
    """The training frames to leave out, combed on either side (by their `zigzag` shares; none with `keep`), and
    what to say."""
    sides = {"LR": combed(lr_shares), "HR": combed(hr_shares)}
    out = [] if keep else np.flatnonzero(sides["LR"] | sides["HR"]).tolist()
    return out, [warning(which, side, keep) for side, which in sides.items() if which.any()]
