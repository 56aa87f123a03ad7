"""Estimate how an LR clip (a DVD, say) maps onto an HR clip (a Blu-ray) of the same show, from their content.

    bars          black bars (letterbox, pillarbox) found on frames sampled over a clip, left out of the rest
    reading       what is read of a clip: its picture (the luma less its bars), normalised thumbnails of every
                  frame, full-size pictures of the pairs
    timeline      frames paired in time: a monotonic alignment with gaps on the thumbnails, gaps of held frames
                  filled at their neighbours' offset, and why a frame stays unpaired
    registration  the mapping in space: a coarse search refined to a fraction of a pixel on full-size pairs
    quality       each pair against the mapping at full size: its figure (dB) and how far off it sits; runs of
                  pairs framed otherwise
    report        the `Alignment` record, its printed lines, what stops training, manifest entry, CSV and PNG
    pipeline      the whole estimate, from clips (`align`) or from pictures and their thumbnails (`estimate`);
                  near-whole ratios snapped to whole ones
"""
from .pipeline import align, estimate
from .report import Alignment

__all__ = ["Alignment", "align", "estimate"]
