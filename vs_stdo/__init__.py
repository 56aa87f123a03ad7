"""vs-stdo: content-overfitted video super-resolution (STDO, CVPR 2023) for VapourSynth."""
from importlib.metadata import version

from .vsplugin import upscale

__version__ = version("vs-stdo")  # pyproject.toml's, the same string as core.stdo.Version()
__all__ = ["upscale", "__version__"]
