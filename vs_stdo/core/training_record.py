"""What a bundle records of the run that trained it (its manifest's "training" record, written by train/run.py):
the run's settings as it trained with them (train/settings.py, every field of `Settings` with its default), then
what it did: the device and processes, its time and phases, the scorer, the split, each stage's steps.

The record is typed and read as schema.py reads every record, but tolerant of its history: a field missing in an
older bundle takes its default (its setting's default, or "not recorded"), and fields it does not know (a setting
an older or newer vs-stdo had, such as the learning rate's old name "lr") are ignored. Nothing that plays a bundle
reads it; `stdo info`, `stdo eval` and the benchmarks do.
"""
from __future__ import annotations

from msgspec import Struct

from . import schema
from .schema import Count


class PhaseRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """Where the run's time and memory went (train/phases.py): at the end of `phase`."""
    phase: str
    seconds: float
    peak_rss_mib: float


class StageRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """One training stage (train/stages.py): the steps it took, the training patches of each of its models and,
    under --time, its time budget and the seconds it spent."""
    steps: Count
    patches: list[Count]
    budget: float | None = None
    spent: float | None = None


class AutoRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """What --chunks auto kept (its chunk numbers) and the mean PSNR with the best 1..k of the chunk models."""
    kept: list[Count]
    psnr: list[float]


class HeldoutRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """A remaster run's held-out scenes (train/validation.py): the HR frames held out (first, last), the frames
    played, the gain over bicubic through the mapping before and after each model's residual was scaled, the
    scales, and what shipped."""
    stretches: list[list[Count]]
    frames: Count
    undamped_gain_db: float
    gain_db: float
    residual_scales: list[float]
    kept: str


class TrainingRecord(Struct, kw_only=True):
    """The run's settings (as `Settings`, train/settings.py, names them; `device` the one it ran on, `loss` the one
    it trained with) and what it did."""
    # the settings
    scale: int = 4
    chunks: int = 4               # 0: --chunks auto
    mode: str = "chunks"
    preset: str = "tiny"
    planes: str = "rgb"
    steps: int = 2000
    epochs: float = 0.0
    time: float = 0.0
    batch: int = 64
    learning_rate: float = 2e-3
    seed: int = 0
    init: str = "none"
    context: int = 8
    patch_width: int = 24
    patch_height: int = 27
    pretrain: float = 0.25
    split: str = "error"
    min_chunk: float | str = "auto"
    focus: float = 0.5
    sampling: str = "unbiased"
    loss: str = "auto"
    score: str = "auto"
    labels: str = "best"
    combed_frames: str = "leave-out"
    score_steps: int = 300
    holdout: int = 0
    scene_holdout: float = 0.15
    train_frames: int = 0
    frame_memory: float = 0.5
    weights: str = "float16"
    device: str = "auto"
    checkpoint_every: int = 200
    easy_preset: str = ""
    easy_chunks: int = 1
    # what the run did
    processes: int = 1
    seconds: float | None = None
    phases: list[PhaseRecord] = []
    scorer: str | None = None          # the reference scorer: shared, self, bicubic or bundle:NAME
    started_from: str = "none"         # what the first model started from (--init)
    thresholds: list[float] = []       # the split's PSNR thresholds, before --chunks auto kept some
    floor: float = 0.0                 # the split's least share of an equal chunk (--min-chunk)
    stages: dict[str, StageRecord] = {}
    total_steps: int | None = None
    heldout: list[Count] = []          # the frames of the bundle held out of training
    combed: list[Count] = []           # the frames of the bundle left out of training as combed (train/combing.py)
    heldout_scenes: HeldoutRecord | None = None  # a remaster run's held-out scenes
    train_patches: int | None = None
    router_steps: int | None = None    # steps of the blind router's fit
    auto: AutoRecord | None = None     # --chunks auto

    @classmethod
    def of(cls, data: dict) -> "TrainingRecord":
        """The record of `data` (a run's settings and results as plain values), checked."""
        return schema.read(data, cls, "training")
