"""Estimate how an LR clip (a DVD, say) maps onto an HR clip (a Blu-ray) of the same show, from their content.

    reading       what is read of a clip: normalised luma thumbnails of every frame, full-size luma of a few
    timeline      frames paired in time: a monotonic alignment with gaps on the thumbnails
    registration  the mapping in space: a coarse search refined to a fraction of a pixel on full-size pairs
    report        the `Alignment` record, its printed lines, manifest entry and PNG; each pair's residual
    pipeline      the whole estimate, from clips (`align`) or from thumbnails and frame readers (`estimate`)
"""
from .pipeline import align, estimate
from .report import Alignment

__all__ = ["Alignment", "align", "estimate"]
