"""What a bundle records about the clip it was trained on (its manifest's "clip" entry), typed and checked."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class ClipRecord:
    """The training clip: its LR size, the frames the bundle stores (labels, scores and fingerprints for each),
    its frame rate, where it came from (the input's file name, the --frames range, the LR file or the kernel of
    the downscale) and, when the run sampled frames, which ones; a remaster pair's alignment summary."""
    width: int
    height: int
    frames: int
    fps_num: int = 1
    fps_den: int = 1
    source: str = ""
    frames_selected: str = ":"
    lr: str | None = None
    kernel: str | None = None
    range_frames: int | None = None            # frames in the --frames range when the run sampled some of them
    sample: list[int] | None = None            # the stored frames' numbers in that range, increasing
    alignment: dict[str, Any] | None = field(default=None, compare=False)  # remaster pairs (train/pairs.py)

    def __post_init__(self) -> None:
        for name, lo, hi in (("width", 1, 65536), ("height", 1, 65536), ("frames", 1, 10_000_000),
                             ("fps_num", 0, 1 << 31), ("fps_den", 1, 1 << 31)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValueError(f"clip.{name} must be an integer in [{lo}, {hi}], got {value!r}")
        for name in ("source", "frames_selected", "lr", "kernel"):
            value = getattr(self, name)
            if not (value is None and name in ("lr", "kernel")) and not isinstance(value, str):
                raise ValueError(f"clip.{name} must be text, got {value!r:.60}")
        if self.range_frames is not None and (type(self.range_frames) is not int or self.range_frames < self.frames):
            raise ValueError(f"clip.range_frames must be an integer of at least {self.frames}")
        s = self.sample
        if s is not None and (not isinstance(s, list) or len(s) != self.frames
                              or not all(type(v) is int and v >= 0 for v in s) or s != sorted(set(s))):
            raise ValueError(f"clip.sample must list {self.frames} increasing frame numbers")
        if self.alignment is not None and not isinstance(self.alignment, dict):
            raise ValueError("clip.alignment must be an object")

    @classmethod
    def from_manifest(cls, d: Any) -> "ClipRecord":
        """The record from a manifest's clip entry (unknown keys are ignored: bundles are data); ValueError names
        a missing or bad field."""
        if not isinstance(d, dict):
            raise ValueError("clip must be an object")
        known = {f.name for f in fields(cls)}
        missing = [n for n in ("width", "height", "frames") if n not in d]
        if missing:
            raise ValueError(f"clip lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_manifest(self) -> dict[str, Any]:
        """The manifest's clip entry (unset optional fields left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}
