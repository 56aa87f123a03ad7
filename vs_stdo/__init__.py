"""vs-stdo: content-overfitted video super-resolution (STDO, CVPR 2023) for VapourSynth."""
from importlib.metadata import version
from typing import Any

from .filter.plugin import upscale

__version__ = version("vs-stdo")  # pyproject.toml's, the same string as core.stdo.Version()
__all__ = ["upscale", "__version__"]


def __getattr__(name: str) -> Any:
    """`vs_stdo.STDOScaler` is imported on first use: `import vs_stdo` does not need vsjetpack."""
    if name != "STDOScaler":
        raise AttributeError(f"module 'vs_stdo' has no attribute {name!r}")
    try:
        from .filter.jetpack import STDOScaler
    except ModuleNotFoundError as e:
        if (e.name or "").startswith("vs_stdo"):
            raise
        raise ImportError(f"vs_stdo.STDOScaler needs vs-jetpack ({e.name} is missing): "
                          "pip install vs-stdo[jetpack]") from e
    return STDOScaler
