"""Bundles of earlier format versions, read by bundle.py's current code: what each version stored.

  1  no blind router; every part plain: float32 weights, one tensor each (model.{i}.{param}), raw uint8 labels,
     float32 psnr and fingerprints
  2  as 1, plus the optional blind router (router.{name})
  3  compact storage as format 4 writes it, in the variants its pre-releases wrote: each model packed into one
     LZMA2 stream ("models": "lzma2") or one tensor per parameter (no "models" entry); fingerprints "delta8" or
     float16 (frames, 256)
Each version's "storage" entry (1 and 2 have none) is returned in format 4's terms, so one loader decodes all.
"""
from __future__ import annotations

from typing import Any

from .packing import WEIGHTS, BundleError

PLAIN = {"weights": "float32", "labels": "raw", "psnr": "float32", "fingerprints": "float32"}  # formats 1, 2
FORMAT3 = {"weights": WEIGHTS, "models": ("lzma2",), "labels": ("zlib",), "psnr": ("float32",),
           "fingerprints": ("delta8", "float16")}
PER_FRAME = ("labels", "psnr", "fingerprints")


def storage(m: dict[str, Any]) -> dict[str, str]:
    """How a bundle of format 1, 2 or 3 (manifest `m`) stores each part, checked."""
    if m["version"] < 3:
        return PLAIN
    st = m["storage"]
    if isinstance(st, dict) and set(st) - {"models"} == {"weights", *PER_FRAME}:
        forms = dict(FORMAT3) | ({n: ("none",) for n in PER_FRAME} if st["labels"] == "none" else {})
        if all(st[n] in forms[n] for n in st):
            return st
    raise BundleError(f"manifest field storage {st!r} is not one format 3 wrote (weights {', '.join(WEIGHTS)}; "
                      f"models lzma2 or absent; labels zlib; psnr float32; fingerprints delta8 or float16; or, "
                      f"with one model, none of the three); retrain the bundle")
