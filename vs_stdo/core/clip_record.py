"""What a bundle records about the clip it was trained on (its manifest's "clip" record), and a remaster pair's
alignment summary within it; typed and checked as schema.py says."""
from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from .schema import Count, Side

Frames = Annotated[int, Meta(ge=1, le=10_000_000)]


class AlignmentRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """What training found of a remaster pair (train/pairs.alignment_record): the lines it printed, the pairs it
    found, trained on and dropped, and the input's frame number of each of the bundle's frames (`hr_frames`)."""
    hr_frames: list[Count]
    lines: list[str] = []
    pairs: Count = 0
    trained_pairs: Count = 0
    dropped: Count = 0
    frame_offset: int = 0
    frame_offsets: list[tuple[Count, Count, int]] = []  # (first, last HR frame, lr - hr frame) per run of one offset
    unpaired_hr: Count = 0
    unpaired_lr: Count = 0
    precision_px: float | None = None
    residual_median_db: float | None = None
    figure_median_db: float | None = None  # the kept pairs' figure (dB, align/quality.py)


class ClipRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """The training clip: its LR size, the frames the bundle stores (labels, scores and fingerprints for each),
    its frame rate, where it came from (the input's file name, the --frames range, the LR file or the kernel of
    the downscale) and, when the run sampled frames, which ones; a remaster pair's alignment summary."""
    width: Side
    height: Side
    frames: Frames
    fps_num: Annotated[int, Meta(ge=0, le=1 << 31)] = 1
    fps_den: Annotated[int, Meta(ge=1, le=1 << 31)] = 1
    source: str = ""
    frames_selected: str = ":"
    lr: str | None = None
    kernel: str | None = None
    range_frames: Frames | None = None         # frames in the --frames range when the run sampled some of them
    sample: list[Count] | None = None          # the stored frames' numbers in that range, increasing
    alignment: AlignmentRecord | None = None   # remaster pairs

    def __post_init__(self) -> None:
        if self.range_frames is not None and self.range_frames < self.frames:
            raise ValueError(f"range_frames must be at least the {self.frames} frames, got {self.range_frames}")
        s = self.sample
        if s is not None and (len(s) != self.frames or s != sorted(set(s))):
            raise ValueError(f"sample must list {self.frames} increasing frame numbers")
        if self.alignment is not None and len(self.alignment.hr_frames) != self.frames:
            raise ValueError(f"alignment.hr_frames must list the input's frame of each of the {self.frames} "
                             f"frames")
