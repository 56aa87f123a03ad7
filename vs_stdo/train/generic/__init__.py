"""Where a run's first model starts (`stdo train --init`): from scratch (bicubic), from the generic model
shipped for the preset and scale, or from a model of an earlier bundle (the last episode's, say).

The generic models (`<preset>-x<scale>.stdo` next to this file) are ordinary bundles of one model, trained by
scripts/tools/train_generic.py on public-domain and CC0 photos that scikit-image's wheel ships. Starting from one,
a run spends its first steps on the clip instead of on learning what every photo shares.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...core import bundle as bundle_io
from ...core.models import Arch

FOLDER = Path(__file__).parent
PRESET = "tiny"  # the preset generic models are shipped for
INITS = ("auto", "none")  # or the path of a .stdo bundle


def file_name(preset: str, scale: int) -> str:
    return f"{preset}-x{scale}.stdo"


def shipped(arch: Arch) -> Path | None:
    """The generic model's bundle for an architecture, where one is shipped."""
    for path in FOLDER.glob("*.stdo"):
        if bundle_io.read_manifest(bundle_io.read_file(path))["models"][0] == arch.to_dict():
            return path
    return None


def check(init: str, arch: Arch) -> None:
    """Raise a clear error where `--init` names a bundle that cannot start `arch` (before any data is read)."""
    if init not in INITS:
        start(init, arch)


def start(init: str, arch: Arch) -> tuple[dict[str, torch.Tensor] | None, str]:
    """The plain weights a run's first model of `arch` starts from (None: from scratch), and what they are.

    auto: the shipped generic model where there is one for `arch`, else from scratch. A bundle: of its models
    of `arch`, the one the most patches are routed to."""
    if init == "none":
        return None, "none"
    path = shipped(arch) if init == "auto" else Path(init)
    if path is None:
        return None, "none (no generic model for this preset, scale and planes)"
    b = bundle_io.load(path)  # FileNotFoundError / BundleError name the problem
    fitting = [i for i, a in enumerate(b.archs) if a == arch]
    if not fitting:
        raise ValueError(f"--init bundle {init} has no model of the run's architecture ({arch.to_dict()}); its "
                         f"models are {[a.to_dict() for a in b.archs]}. Give a bundle of the same --preset, --scale "
                         f"and --planes, or --init auto / none")
    routed = np.bincount(b.labels.ravel(), minlength=b.chunks)
    best = max(fitting, key=lambda i: routed[i])
    return b.weights[best], f"{path.name} model {best}" if b.chunks > 1 else path.name
