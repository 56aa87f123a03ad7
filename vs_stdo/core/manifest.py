"""The bundle's manifest (metadata key "stdo" of its safetensors header): one typed, strict record per part, read as
schema.py reads every record. Its parts' records live with what they describe: `Arch` (models.py), `ClipRecord`
(clip_record.py), `TrainingRecord` (training_record.py), `RouterRecord` (router_state.py), `ColourRecord`
(colour.py), `Mapping` (mapping.py); this module holds the rest and the rules between the parts.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct, field

from . import schema
from .clip_record import ClipRecord
from .colour import ColourRecord
from .fingerprint import CELLS
from .grid import Grid
from .mapping import Mapping
from .models import SCALES, Arch
from .packing import WEIGHTS
from .router_state import RouterRecord
from .schema import Finite
from .training_record import TrainingRecord

FORMAT = "stdo-bundle"
VERSION = 4
PER_FRAME = ("labels", "psnr", "fingerprints")  # the routing data, one entry per stored frame
MAX_CHUNKS = 255  # labels are uint8


class PatchRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """The LR patch size."""
    width: Annotated[int, Meta(ge=1, le=4096)]
    height: Annotated[int, Meta(ge=1, le=4096)]


class GridRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """The patch grid on the clip's LR frame (grid.py): rows and columns."""
    rows: Annotated[int, Meta(ge=1, le=1 << 16)]
    cols: Annotated[int, Meta(ge=1, le=1 << 16)]


class FingerprintRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """How the frames' content fingerprints were taken (fingerprint.py)."""
    kind: Literal["luma-block-mean"] = "luma-block-mean"
    cells: Literal[CELLS] = CELLS


class Storage(Struct, frozen=True, forbid_unknown_fields=True):
    """How each part is stored (packing.py): the weights (one of WEIGHTS), each model packed into one raw-LZMA2
    stream, and the routing data (labels deflated, psnr float32, fingerprints delta-coded), or none of it (a bundle
    of one model)."""
    weights: Literal[WEIGHTS]
    models: Literal["lzma2"] = "lzma2"
    labels: Literal["zlib", "none"] = "zlib"
    psnr: Literal["float32", "none"] = "float32"
    fingerprints: Literal["delta8", "none"] = "delta8"

    def __post_init__(self) -> None:
        if len({getattr(self, n) == "none" for n in PER_FRAME}) > 1:
            raise ValueError("labels, psnr and fingerprints are stored all or none")

    @property
    def per_frame(self) -> bool:
        """Whether the routing data is stored."""
        return self.labels != "none"

    @classmethod
    def of(cls, weights: str, per_frame: bool = True) -> "Storage":
        """How a bundle written now stores its parts: its weights as `weights`; without `per_frame` (one model)
        no routing data at all."""
        if weights not in WEIGHTS:
            raise ValueError(f"weights can be stored as {', '.join(WEIGHTS)}, not {weights!r}")
        return cls(weights) if per_frame else cls(weights, **dict.fromkeys(PER_FRAME, "none"))


class Manifest(Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole manifest. A bundle made before every bundle recorded a mapping gets the plain one (HR = scale x
    LR); one made before colour was recorded has none (the filter then reads untagged clips by their size)."""
    format: Literal[FORMAT] = FORMAT
    version: Literal[VERSION] = VERSION
    scale: Literal[SCALES]
    patch: PatchRecord
    grid: GridRecord
    chunks: Annotated[int, Meta(ge=1, le=MAX_CHUNKS)]
    models: list[Arch]
    thresholds: list[Finite]
    clip: ClipRecord
    fingerprint: FingerprintRecord = FingerprintRecord()
    training: TrainingRecord = field(default_factory=TrainingRecord)
    router: RouterRecord | None = None
    storage: Storage
    mapping: Mapping | None = None
    colour: ColourRecord | None = None

    def __post_init__(self) -> None:
        """The rules between the parts."""
        k, clip = self.chunks, self.clip
        if len(self.models) != k:
            raise ValueError(f"{len(self.models)} models listed for {k} chunks")
        if len(self.thresholds) != k - 1:
            raise ValueError(f"{k} chunks need {k - 1} chunk thresholds, got {self.thresholds}")
        for i, arch in enumerate(self.models):
            if arch.planes != self.models[0].planes:
                raise ValueError(f"model {i} has {arch.planes} plane(s) but model 0 has {self.models[0].planes}; "
                                 f"all models of a bundle work on the same planes")
            if arch.scale != self.scale:
                raise ValueError(f"model {i} is for x{arch.scale} but the bundle is x{self.scale}")
        grid = Grid(clip.width, clip.height, self.patch.width, self.patch.height)
        if (self.grid.rows, self.grid.cols) != (grid.rows, grid.cols):
            raise ValueError(f"grid {self.grid.rows}x{self.grid.cols} (rows x cols) does not match a "
                             f"{self.patch.width}x{self.patch.height} grid on {grid.width}x{grid.height} "
                             f"({grid.rows} rows, {grid.cols} cols)")
        if k > 1 and not self.storage.per_frame:
            raise ValueError(f"the bundle has {k} models but stores no labels to route between them")
        if self.mapping is None:
            self.mapping = Mapping.plain(clip.width, clip.height, clip.width * self.scale, clip.height * self.scale)
        m = self.mapping
        if (m.lr_width, m.lr_height) != (clip.width, clip.height):
            raise ValueError(f"the mapping is for an LR of {m.lr_width}x{m.lr_height} but the clip is "
                             f"{clip.width}x{clip.height}")
        if m.scale() > self.scale:
            raise ValueError(f"the mapping's ratios {m.ratio_x:.3f} x {m.ratio_y:.3f} are beyond the models' "
                             f"x{self.scale}")


def parse(m: dict[str, Any]) -> Manifest:
    """The manifest of a file (its JSON, which read_manifest found to be a vs-stdo manifest), checked: ValueError
    naming the field and what is wrong. A version other than this code's is refused first, saying what to do."""
    version = m.get("version")
    if version != VERSION or type(version) is not int:
        raise ValueError(version_error(version))
    return schema.read(m, Manifest, "manifest")


def version_error(version: Any) -> str:
    """Why a bundle of format `version` cannot be read. Formats 1 to 3 were written only by pre-release builds of
    vs-stdo 0.1; their readers were dropped rather than kept alive untested."""
    if type(version) is int and 1 <= version < VERSION:
        return (f"bundle format version {version} was made by a pre-release vs-stdo; this vs-stdo reads format "
                f"{VERSION} only: retrain the bundle")
    if type(version) is int and version > VERSION:
        return (f"bundle format version {version} is newer than this vs-stdo reads (format {VERSION}); update "
                f"vs-stdo")
    return f"bundle format version {version!r:.40} is not supported (this vs-stdo reads format {VERSION}); retrain the bundle"
