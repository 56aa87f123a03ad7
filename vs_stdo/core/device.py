"""Which torch device a job runs on: the user's choice, checked."""
from __future__ import annotations

import torch

from .usage import UsageError


def parse_device(name: str) -> torch.device | None:
    """The device `name` says ('cpu', 'cuda[:N]'; None for 'auto'), without asking whether it is here; a
    UsageError for any other name."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use 'auto', 'cpu' or 'cuda[:N]'") from None
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"unsupported device {name!r}; use 'auto', 'cpu' or 'cuda[:N]'")
    return device


def pick_device(name: str) -> torch.device:
    """'auto' is CUDA when present, else CPU; 'cpu' and 'cuda[:N]' are checked."""
    device = parse_device(name)
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r}: CUDA is not available here; use device='cpu'")
        if (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) exist")
    return device
