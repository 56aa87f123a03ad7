"""The settings of a training run: one dataclass that owns every default, its checks, and its help text.

`stdo train` builds its options from these fields (cli.py), so each default lives here once; a bundle records
them in its training record (core/training_record.py, which declares the same fields and defaults: a test holds
the two equal). Each help is one line of what the option does and its default; what the defaults were measured
against is in docs/results.md and docs/training.md.
"""
from __future__ import annotations

import math
import re
import sys
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any, Callable

import msgspec

from ..core import bundle as bundle_io
from ..core.device import parse_device
from ..core.models import PRESETS, SCALES, Arch, preset
from ..core.usage import UsageError
from . import generic
from .chunks import AUTO_TOLERANCE, OUTLIER_FLOOR, SPLITS

MODES = ("chunks", "joint", "single")
SCORERS = ("auto", "shared", "bicubic", "self")  # or the path of a bundle
LABELS = ("best", "split")
COMBED = ("leave-out", "keep")
LOSSES = ("auto", "l1", "mse")
SAMPLINGS = ("unbiased", "lean")
PLANES = {"rgb": 3, "luma": 1}  # --planes -> the models' input and output channels
AUTO = 0          # --chunks auto, as stored
AUTO_CHUNKS = 4   # the chunk models --chunks auto trains before it keeps the fewest that pay


def parse_chunks(text: str) -> int:
    """`4` -> 4, `auto` -> AUTO (the --chunks syntax)."""
    if text.strip().lower() == "auto":
        return AUTO
    try:
        k = int(text)
    except ValueError:
        k = AUTO
    if k == AUTO:  # 0 is how auto is stored, not a number of chunks
        raise ValueError(f"expected a number of chunks (1 or more) or 'auto', got {text!r}")
    return k


def parse_min_chunk(text: str) -> float | str:
    """`auto` or a number (the --min-chunk syntax)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected auto or a share of an equal chunk in [0, 1], got {text!r}") from None


def parse_duration(text: str) -> float:
    """`90s`, `10m`, `1.5h`, `1h30m` or plain seconds -> seconds (the --time syntax)."""
    text = text.strip().lower()
    try:
        return float(text)
    except ValueError:
        pass
    unit = r"(\d+(?:\.\d+)?)\s*([hms])"
    parts = re.findall(unit, text)
    if not parts or re.sub(unit, "", text).strip():
        raise ValueError(f"a duration looks like 90s, 10m, 1.5h or 1h30m, got {text!r}") from None
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def option(default: Any, help: str, choices: tuple | list | None = None,
           parse: Callable[[str], Any] | None = None) -> Any:
    """A settings field that is also a `stdo train` option (`flag_of` its name): `help` may name {default}."""
    meta = {"help": help, "choices": choices, "parse": parse}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    scale: int = option(4, "upscaling factor (default {default})", choices=SCALES)
    chunks: int = option(4, f"k, the number of difficulty chunks, or auto: train {AUTO_CHUNKS} chunk models and "
                            f"keep the fewest within {AUTO_TOLERANCE} dB of all {AUTO_CHUNKS} (default {{default}})",
                         parse=parse_chunks)
    mode: str = option("chunks", "chunks: one model per chunk (STDO, default); joint: one model on hard-weighted "
                                 "data (JSTDO); single: one model on all patches", choices=MODES)
    preset: str = option("tiny", f"model size: {', '.join(PRESETS)}, or BLOCKSxCHANNELSxEXPANSION such as 6x16x2 "
                                 "(default {default})")
    planes: str = option("rgb", "what the models upscale: rgb (default), or luma: Y only, read with the pair's "
                                "colour matrix; the filter then takes GRAY and YUV and scales chroma with a kernel",
                         choices=list(PLANES))
    steps: int = option(2000, "total training steps of the run, shared by its models (default {default})")
    epochs: float = option(0.0, "budget in passes over the run's training patches instead of --steps "
                                "(default 0: use --steps)")
    time: float = option(0.0, "time for the whole run from the start, e.g. 10m or 1h30m: each stage stops by its "
                              "share of it, or at its share of --steps if sooner (default 0: no time limit)",
                         parse=parse_duration)
    batch: int = option(64, "patches per step (default {default})")
    learning_rate: float = option(2e-3, "Adam learning rate at the start of the cosine schedule (default "
                                        "{default:g})")
    seed: int = option(0, "seed of initialisation and sampling (default {default})")
    init: str = option("none", "what the first model starts from: none (default: bicubic), auto (the generic model "
                               "shipped for the preset and scale, where there is one), or a .stdo bundle's model of "
                               "the same architecture")
    context: int = option(8, "LR pixels of real context around each training patch, at most the model's receptive "
                             "radius (default {default})")
    patch_width: int = 24            # LR patch size; the CLI sets both with --patch WxH
    patch_height: int = 27
    pretrain: float = option(0.25, "chunks and joint modes: share of the steps spent on a shared model first "
                                   "(default {default})")
    split: str = option("error", "chunks mode: how patches are split into chunks, hardest first: error "
                                 "(default), each chunk an equal share of the squared error, so the hardest chunk "
                                 "is small; count, equal-sized chunks (the paper's)", choices=SPLITS)
    min_chunk: float | str = option("auto", "chunks mode: the fewest patches a chunk holds, as a share of an "
                                            "equal chunk; auto (default): "
                                            f"{OUTLIER_FLOOR} where the error split gives a chunk the patches of one "
                                            "frame only, else 0", parse=parse_min_chunk)
    focus: float = option(0.5, "joint mode: after the shared model, a patch is drawn in proportion to its squared "
                               "error under the scorer to this power (0: all alike) (default {default})")
    sampling: str = option("unbiased", "joint mode: unbiased (default), hard patches drawn more often but weighted "
                                       "by 1/(N p), so the objective stays the clip's mean error; lean, unweighted, "
                                       "so training leans to the hard patches", choices=SAMPLINGS)
    loss: str = option("auto", "training loss per pixel: auto (default: mse in joint mode, l1 otherwise), l1, or mse "
                               "(the squared error PSNR counts)", choices=LOSSES)
    score: str = option("auto", "reference scorer f0 that ranks patches for the split: auto (default: shared "
                                "where the run has a shared model, else bicubic), shared, bicubic, self, or the "
                                "path of a .stdo bundle")
    labels: str = option("best", "chunks mode: what the stored labels route each patch to: best (default), the "
                                 "model that reconstructs it best; split, the model of its chunk (the paper's)",
                         choices=LABELS)
    combed_frames: str = option("leave-out", "training frames that look combed on either side (telecined or "
                                             "interlaced): leave-out (default: not trained on), or keep (trained on, "
                                             "where the episodes to play are combed alike and cannot be "
                                             "inverse-telecined)", choices=COMBED)
    score_steps: int = option(300, "--score self: training steps of the scorer model (default {default})")
    holdout: int = option(0, "keep every Nth training frame out of training (default 0: none)")
    scene_holdout: float = option(0.15, "remaster pairs: the share of the training range held out as whole scenes, "
                                        "played as unseen episodes play to measure the bundle there and scale each "
                                        "model's residual to do no harm (default {default}; 0: none)")
    train_frames: int = option(0, "frames decoded for training, evenly spread over the input (default 0: every "
                                  "frame when they fit --frame-memory, else as many as fit)")
    frame_memory: float = option(0.5, "GiB of RAM for the decoded training frames when --train-frames is 0 "
                                      "(default {default})")
    weights: str = option(bundle_io.WEIGHTS[0], "how the bundle stores the weights: float16 (default), float32, or "
                                                "int8 to int4, N-bit integers with one scale per output channel "
                                                "(for delivery)", choices=bundle_io.WEIGHTS)
    device: str = option("auto", "auto, cpu or cuda[:N] (default {default})")
    checkpoint_every: int = option(200, "steps between checkpoints (default {default})")
    easy_preset: str = option("", "chunks mode: a smaller preset for the easiest chunks, so cost follows content",
                              choices=list(PRESETS))
    easy_chunks: int = option(1, "with --easy-preset: how many of the easiest chunks use it (default {default})")

    def check(self) -> None:
        """Raise a UsageError for settings that cannot work; reads no file (check_files does)."""
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        try:
            for name in (self.preset, self.easy_preset or self.preset):
                preset(name, self.scale)
        except ValueError as e:
            raise UsageError(str(e)) from None
        if not (1 <= self.chunks <= 255 or self.auto()):
            raise UsageError(f"--chunks must be between 1 and 255 or auto, got {self.chunks}")
        if self.auto() and self.mode != "chunks":
            raise UsageError(f"--chunks auto chooses among chunk models: it needs --mode chunks, not {self.mode}")
        for name in ("steps", "batch", "score_steps", "checkpoint_every", "patch_width", "patch_height"):
            if getattr(self, name) < 1:
                raise UsageError(f"{flag_of(name)} must be at least 1, got {getattr(self, name)}")
        for name, lo, hi in RANGES:  # NaN fails every comparison, so the test is that the value lies inside
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and lo <= value <= hi and math.isfinite(value)):
                raise UsageError(f"{flag_of(name)} must be a number from {lo:g} to {hi:g}, got {value}")
        if self.frame_memory == 0 or self.learning_rate == 0:
            raise UsageError(f"{'--frame-memory' if self.frame_memory == 0 else '--learning-rate'} must be positive")
        if self.pretrain == 1:
            raise UsageError(f"--pretrain must be in [0, 1), got {self.pretrain}")
        if self.holdout == 1 or self.holdout < 0:
            raise UsageError(f"--holdout {self.holdout} would hold out every frame; use 0 (none) or N >= 2")
        for name, allowed in (("planes", PLANES), ("split", SPLITS), ("labels", LABELS), ("loss", LOSSES),
                              ("sampling", SAMPLINGS)):
            if getattr(self, name) not in allowed:
                raise UsageError(f"unknown --{name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        share = isinstance(self.min_chunk, (int, float)) and 0 <= self.min_chunk <= 1
        if self.min_chunk != "auto" and not share:
            raise UsageError(f"--min-chunk is auto or a share of an equal chunk in [0, 1], got {self.min_chunk}")
        if self.easy_preset and (self.mode != "chunks" or not 1 <= self.easy_chunks < self.k()):
            raise UsageError(f"--easy-preset needs --mode chunks and 1 <= --easy-chunks < --chunks "
                             f"(got mode {self.mode}, {self.easy_chunks} easy of {self.k()} chunks)")
        parse_device(self.device)
        if self.score == "shared" and not self.has_shared():
            raise UsageError("--score shared scores with the shared model of --mode chunks or joint with --pretrain "
                             "> 0; give both, or another --score")

    def check_files(self) -> None:
        """Raise a clear error where --init or --score names a bundle that cannot serve this run: it loads them,
        so a run checks its files once, when its scale is known."""
        generic.check(self.init, self.arch())
        if self.score not in SCORERS:
            b = bundle_io.load(self.score)  # FileNotFoundError / BundleError name the problem
            if b.scale != self.scale:
                raise ValueError(f"--score bundle {self.score} is x{b.scale} but training is x{self.scale}; "
                                 f"give a x{self.scale} bundle, 'bicubic' or 'self'")
            if b.planes != PLANES[self.planes]:
                raise ValueError(f"--score bundle {self.score} upscales {b.planes} plane(s) but --planes {self.planes} "
                                 f"trains on {PLANES[self.planes]}; give a bundle of the same --planes")

    def resolve(self, patches: int) -> "Settings":
        """The settings a run with `patches` training patches trains with: the batch capped at them (said once).
        Settings never change themselves; what a run derives is a new Settings from here or `replace`."""
        if self.batch <= patches:
            return self
        print(f"--batch {self.batch} is more than the {patches} training patches; using --batch {patches}",
              file=sys.stderr)
        return replace(self, batch=patches)

    def auto(self) -> bool:
        """Whether the run chooses how many chunk models to keep (--chunks auto)."""
        return self.chunks == AUTO

    def k(self) -> int:
        """The number of chunks the patches are split into and chunk models are trained (1 outside chunks mode)."""
        if self.mode != "chunks":
            return 1
        return AUTO_CHUNKS if self.auto() else self.chunks

    def has_shared(self) -> bool:
        """Whether the run trains a shared model first (chunks or joint mode with pretraining)."""
        return self.mode != "single" and self.pretrain > 0

    def scorer(self) -> str:
        """The scorer `score` names: "auto" is the shared model where the run has one, else bicubic."""
        if self.score == "auto":
            return "shared" if self.has_shared() else "bicubic"
        return self.score

    def train_loss(self) -> str:
        """The per-pixel training loss: --loss, where auto is mse in joint mode (+0.02 to +0.67 dB over its earlier
        L1 recipe on the four development clips, docs/results.md) and l1 otherwise (mse measured there on two clips
        only)."""
        if self.loss == "auto":
            return "mse" if self.mode == "joint" else "l1"
        return self.loss

    def train_context(self) -> int:
        """LR pixels of context cut around each training patch: --context, capped at the receptive radius of the
        run's largest model (more would be cut and never seen)."""
        return min(self.context, max(a.radius for a in self.archs()))

    def archs(self) -> list[Arch]:
        """The architectures of every model the run trains: the main preset (shared and scorer models), then each
        chunk's."""
        return [self.arch()] + self.chunk_archs()

    def chunk_archs(self) -> list[Arch]:
        """The architectures of the models that go into the bundle, in chunk order (one outside chunks mode)."""
        return [self.arch(k) for k in range(self.k())]

    def arch(self, chunk: int | None = None) -> Arch:
        """The architecture of a chunk's model (None: the main preset, also that of shared and scorer models)."""
        easy = self.easy_preset and chunk is not None and chunk >= self.k() - self.easy_chunks
        return msgspec.structs.replace(preset(self.easy_preset if easy else self.preset, self.scale),
                                       planes=PLANES[self.planes])


# numeric settings and the closed range each must lie in (a finite number; ints are range-checked the same way)
RANGES = (("epochs", 0, 1e6), ("time", 0, 7 * 86400), ("frame_memory", 0, 65536), ("learning_rate", 0, 1e6),
          ("pretrain", 0, 1), ("scene_holdout", 0, 0.5), ("focus", 0, 4), ("context", 0, 64),
          ("train_frames", 0, 10_000_000))


def flag_of(name: str) -> str:
    """The `stdo train` option of a settings field (--patch for the patch size)."""
    return "--patch" if name in ("patch_width", "patch_height") else "--" + name.replace("_", "-")


def options() -> list[Field]:
    """The fields that are `stdo train` options, in order."""
    return [f for f in fields(Settings) if "help" in f.metadata]


def default_of(f: Field) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


def table() -> str:
    """`stdo train`'s options as a Markdown table, from the fields above (docs/training.md's copy is checked)."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for f in options():
        default, m = default_of(f), f.metadata
        meaning = re.sub(r"\s*\(default \{default[^}]*\}\)", "", m["help"]).replace("{default}", str(default))
        rows.append(f"| `{flag_of(f.name)}` | {default if default != '' else 'none'} "
                    f"| {meaning} |")
    rows.append(f"| `--patch` | {Settings.patch_width}x{Settings.patch_height} | LR patch WIDTHxHEIGHT |")
    return "\n".join(rows)
