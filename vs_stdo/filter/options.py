"""The arguments of `core.stdo.Upscale`: their names, defaults, meaning and checks, in one place.

The C plugin registers the same names (checked by a test against `core.stdo.Upscale.signature`) and hands every
argument it was given to `UpscaleOptions.from_args` unchanged; `vs_stdo.upscale`, `STDOScaler` and the docs' table
(`table()`) all come from here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

MAX_PAD = 64  # LR pixels; context beyond the models' receptive radius changes nothing


def arg(default: Any, kind: str, meaning: str, shown: str | None = None) -> Any:
    """An Upscale argument: its default, its VapourSynth type ("data" or "int"), one line for people, and how the
    docs show the default when it is not a plain value."""
    return field(default=default, metadata={"kind": kind, "meaning": meaning, "shown": shown})


@dataclass(frozen=True)
class UpscaleOptions:
    route: str = arg("auto", "data", '`"labels"`: the bundle\'s per-patch labels, frames found by content; `"auto"`: '
                                     'labels where a frame is found, else the blind router; `"blind"`: the router for '
                                     'every frame, any clip and size; `"chunk:K"`: every patch to model K')
    device: str = arg("auto", "data", '`"cpu"`, `"cuda"` or `"cuda:N"`; `"auto"` is CUDA when torch sees a GPU, '
                                      "else the CPU")
    fp16: int = arg(0, "int", "1: half precision on CUDA (an error on the CPU)")
    pad: int | None = arg(None, "int", f"LR pixels of real context around each patch, 0-{MAX_PAD}; at the default "
                                       "the stitched frame equals whole-frame inference", "the models' receptive radius")
    batch: int = arg(0, "int", "at most this many patches per model call (0: a chunk's patches of a frame at once); "
                               "halved by itself when the GPU runs out of memory")
    bf16: int | None = arg(None, "int", "1: the models' residual branch in bfloat16 (the bicubic skip stays float32); "
                                        "0: all float32", "1 where the CPU computes bfloat16 natively (AMX, AVX512-BF16), else 0")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            want = str if f.metadata["kind"] == "data" else int
            if not isinstance(value, want) or isinstance(value, bool) and want is int:
                raise ValueError(f"{f.name} must be {'a string' if want is str else 'an integer'}, got {value!r}")
        for name in ("fp16", "bf16"):
            if getattr(self, name) not in (0, 1, None):
                raise ValueError(f"{name} must be 0 or 1, got {getattr(self, name)}")
        if self.pad is not None and not 0 <= self.pad <= MAX_PAD:
            raise ValueError(f"pad must be in 0..{MAX_PAD} (default: the models' receptive radius), got {self.pad}")
        if self.batch < 0:
            raise ValueError(f"batch must be >= 0 (0 = a whole chunk at once), got {self.batch}")

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> "UpscaleOptions":
        """The options from the arguments a caller gave (the rest take their defaults); unknown names are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ValueError(f"unknown argument(s) {', '.join(unknown)}; Upscale takes clip, bundle, "
                             f"{', '.join(sorted(known))}")
        return cls(**args)

    @classmethod
    def from_keywords(cls, options: dict[str, Any]) -> "UpscaleOptions":
        """`from_args` for Python callers: booleans count as 0 and 1, as VapourSynth passes them to the plugin."""
        return cls.from_args({k: int(v) if isinstance(v, bool) else v for k, v in options.items()})

    def given(self) -> dict[str, Any]:
        """The options that differ from their defaults, as `core.stdo.Upscale` keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}

    def engine_args(self) -> dict[str, Any]:
        """The options as `Engine` takes them."""
        return {"route": self.route, "device": self.device, "fp16": bool(self.fp16), "pad": self.pad,
                "batch": self.batch, "bf16": None if self.bf16 is None else bool(self.bf16)}


def signature() -> str:
    """`core.stdo.Upscale`'s signature as VapourSynth writes it (what plugin/stdo.c registers)."""
    return "clip:vnode;bundle:data;" + "".join(f"{f.name}:{f.metadata['kind']}:opt;" for f in fields(UpscaleOptions))


def table() -> str:
    """The arguments as a Markdown table (the docs' copy is checked against it)."""
    rows = ["| argument | type | default | meaning |", "|---|---|---|---|",
            "| `clip` | clip | | constant-format YUV, RGB or GRAY, integer 8-16 bit or half/single float |",
            "| `bundle` | string | | path of a `.stdo` file written by `stdo train` |"]
    for f in fields(UpscaleOptions):
        shown = f.metadata["shown"] or (f'`"{f.default}"`' if isinstance(f.default, str) else f"`{f.default}`")
        rows.append(f"| `{f.name}` | {'string' if f.metadata['kind'] == 'data' else 'int'} | {shown} | "
                    f"{f.metadata['meaning']} |")
    return "\n".join(rows)
