"""The blind router as the bundle stores it: plain data (feature names, an MLP's tensors, how it was fitted).

The filter turns it into a working router (filter/blind.py); training fits one (train/router_fit.py). Stored
under the bundle's `router.` tensor prefix and its `router` manifest record.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
import torch
from msgspec import Meta, Struct

from .schema import Count

FEATURES = ("grad", "lap", "var", "mean", "self2", "selfs")  # what filter/blind.py can compute, in this order
MAX_HIDDEN = 256


class RouterFit(Struct, frozen=True, forbid_unknown_fields=True):
    """How a router was fitted (train/router_fit.py), each part where the fit recorded it: on which target and how
    many frames, patches and steps; its accuracy against the labels and the best model, its confusion matrix
    (labels x choices), and the mean frame PSNR of each routing ("router", "labels", "chunk0", "best")."""
    target: str | None = None
    frames: Count | None = None
    steps: Count | None = None
    patches: Count | None = None
    accuracy_vs_labels: float | None = None
    accuracy_vs_best: float | None = None
    confusion: list[list[Count]] | None = None
    psnr: dict[str, float] | None = None


class RouterRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """The manifest's "router" record (schema.py): the features, the hidden layer's size and the fit."""
    kind: Literal["mlp"]
    features: list[Literal[FEATURES]]
    hidden: Annotated[int, Meta(ge=1, le=MAX_HIDDEN)]
    fit: RouterFit = RouterFit()

    def __post_init__(self) -> None:
        if not self.features or len(set(self.features)) != len(self.features):
            raise ValueError(f"router features must be distinct names from {list(FEATURES)}, got {self.features}")


@dataclass
class RouterState:
    """A blind router's data: LR patch features `names` -> standardise -> one hidden ReLU layer -> chunk logits."""
    names: tuple[str, ...]
    tensors: dict[str, torch.Tensor]   # mean, std, hidden.weight, hidden.bias, out.weight, out.bias
    info: RouterFit = field(default_factory=RouterFit)

    def manifest(self) -> RouterRecord:
        return RouterRecord("mlp", list(self.names), len(self.tensors["hidden.bias"]), self.info)

    def state(self) -> dict[str, np.ndarray]:
        """Tensors to store, under the bundle's `router.` prefix."""
        return {name: t.detach().cpu().float().numpy() for name, t in self.tensors.items()}

    @classmethod
    def from_state(cls, record: RouterRecord, tensors: dict[str, np.ndarray], chunks: int) -> "RouterState":
        """Rebuild a stored router from its manifest record and tensors; raises ValueError naming a tensor that does
        not fit."""
        names, hidden, n = record.features, record.hidden, len(record.features)
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
        return cls(tuple(names), out, record.fit)
