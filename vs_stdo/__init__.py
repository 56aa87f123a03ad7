"""vs-stdo: content-overfitted video super-resolution (STDO, CVPR 2023) for VapourSynth."""
from .vsplugin import upscale

__version__ = "0.1.0"
__all__ = ["upscale", "__version__"]
