"""The blind router as the bundle stores it: plain data (feature names, an MLP's tensors, how it was fitted).

The filter turns it into a working router (filter/blind.py); training fits one (train/router_fit.py). Stored
under the bundle's `router.` tensor prefix and its `router` manifest entry (format 2 and later).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

FEATURES = ("grad", "lap", "var", "mean", "self2", "selfs")  # what filter/blind.py can compute, in this order
MAX_HIDDEN = 256


@dataclass
class RouterState:
    """A blind router's data: LR patch features `names` -> standardise -> one hidden ReLU layer -> chunk logits."""
    names: tuple[str, ...]
    tensors: dict[str, torch.Tensor]   # mean, std, hidden.weight, hidden.bias, out.weight, out.bias
    info: dict[str, Any] = field(default_factory=dict)  # how it was fitted (accuracy, PSNR on training patches)

    def manifest(self) -> dict[str, Any]:
        return {"kind": "mlp", "features": list(self.names), "hidden": len(self.tensors["hidden.bias"]),
                "fit": self.info}

    def state(self) -> dict[str, np.ndarray]:
        """Tensors to store, under the bundle's `router.` prefix."""
        return {name: t.detach().cpu().float().numpy() for name, t in self.tensors.items()}

    @classmethod
    def from_state(cls, manifest: Any, tensors: dict[str, np.ndarray], chunks: int) -> "RouterState":
        """Rebuild and check a stored router; raises ValueError naming what does not fit."""
        if not isinstance(manifest, dict) or manifest.get("kind") != "mlp":
            raise ValueError(f"the manifest's router entry must be an object of kind 'mlp', got {manifest!r:.80}")
        names, hidden = manifest.get("features"), manifest.get("hidden")
        if (not isinstance(names, list) or not names or len(set(names)) != len(names)
                or not all(n in FEATURES for n in names)):
            raise ValueError(f"router features must be distinct names from {list(FEATURES)}, got {names!r:.80}")
        if not isinstance(hidden, int) or isinstance(hidden, bool) or not 1 <= hidden <= MAX_HIDDEN:
            raise ValueError(f"router hidden size must be an integer in [1, {MAX_HIDDEN}], got {hidden!r:.80}")
        n = len(names)
        shapes = {"mean": (n,), "std": (n,), "hidden.weight": (hidden, n), "hidden.bias": (hidden,),
                  "out.weight": (chunks, hidden), "out.bias": (chunks,)}
        if set(tensors) != set(shapes):
            raise ValueError(f"router tensors are {sorted(tensors)}, expected {sorted(shapes)}")
        out = {}
        for name, shape in shapes.items():
            t = tensors[name]
            if t.dtype != np.float32 or t.shape != shape or not np.isfinite(t).all():
                raise ValueError(f"router tensor {name!r} is {t.dtype}{list(t.shape)}, expected finite "
                                 f"float32{list(shape)}")
            out[name] = torch.from_numpy(t.copy())
        if not (out["std"] > 0).all():
            raise ValueError("router tensor 'std' must be positive")
        info = manifest.get("fit")
        return cls(tuple(names), out, info if isinstance(info, dict) else {})
