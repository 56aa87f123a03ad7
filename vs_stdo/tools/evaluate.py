"""`stdo eval`: PSNR of a bundle, through the real filter, against bicubic and Lanczos through the same geometry.

What is measured is what the user gets: every LR frame, in the LR clip's own format (the `--lr`
file's, e.g. YUV 4:2:0 8 bit, or RGBS for the in-script downscale), is upscaled by `core.stdo.Upscale`
(route "auto") and by VapourSynth's bicubic (Catmull-Rom) and Lanczos (3 taps) into that format.
Each output is read back to RGB with the colour the filter reads the LR with and compared, clamped
to [0, 1], with the HR frame (RGB of the pair) in RGB and in BT.709 luma ("psnr_rgb", "psnr_y"); for YUV
and a whole-scale pair, also its Y plane with the HR's in the same format and colour ("psnr_y_plane",
peak = the format's white). Numbers per split are means of per-frame PSNR.

The pair is read as training reads it (train/pairs.py): a whole-scale pair frame for frame, whole frames
compared; a remaster pair (a remaster bundle's DVD and Blu-ray) aligned as training aligns it, each LR
frame compared with its HR partner inside the area both show less MARGIN pixels, the kernels put on the
HR grid through the mapping found (the "bicubic through the mapping" a remaster bundle must beat).
A frame's split comes from its place in the source: "train" (a frame the bundle was trained on),
"heldout" (in the bundle's frames but held out by the trainer), "unseen" (any other frame, or another
source: a file whose name differs from the bundle's source, or another LR size).

`frames_out` (`stdo eval --frames-out DIR`) also writes, for every evaluated frame n, three aligned
full-frame PNGs of the HR size: NNNNNN_bicubic.png, NNNNNN_stdo.png and NNNNNN_source.png (the HR frame),
8-bit RGB as the PSNR sees them, for side-by-side comparison.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
import vapoursynth as vs
from tqdm import tqdm

from ..core import bundle as bundle_io
from ..core import colour
from ..core.bundle import Bundle
from ..core.files import write_atomic
from ..core.mapping import Mapping
from ..core.metrics import mse_to_psnr, psnr, psnr_y
from ..core.video import KERNELS, Pair, frame_array, open_pair, parse_frames
from ..filter.plugin import upscale
from ..train import preflight
from ..train.pairs import open_training_pair

METHODS = ("stdo", "bicubic", "lanczos")
MARGIN = 8  # HR pixels left out inside the area both clips of a remaster pair show
MEASURES = {"psnr_rgb": "RGB", "psnr_y": "Y", "psnr_y_plane": "Y plane"}
SPLITS = {"train": "train", "heldout": "held-out", "unseen": "not in bundle"}


def tensor(frame: vs.VideoFrame) -> torch.Tensor:
    """An RGBS frame as a CHW tensor clamped to [0, 1]."""
    return torch.from_numpy(frame_array(frame)).clamp_(0, 1)


def run(bundle_path: str | Path, input: str | Path, lr: str | Path | None = None, frames: str | None = None,
        kernel: str | None = None, report: str | None = None, report_frame: int | None = None,
        frames_out: Path | None = None, device: str = "auto") -> dict[str, Any]:
    """`stdo eval BUNDLE INPUT [--lr LR] ...`: check the paths before the work, read the pair as training does
    (default frames: the bundle's training range; default kernel: the bundle's), evaluate."""
    b = bundle_io.load(bundle_path)
    if frames_out:
        if frames_out.exists() and not frames_out.is_dir():
            raise ValueError(f"--frames-out {frames_out} is a file; give a folder (it is created if missing)")
        if report and preflight.same_file(Path(report), frames_out):
            raise ValueError(f"--report {report} is the --frames-out folder; give the report a file name, e.g. "
                             f"{frames_out / 'report.png'}")
    if report:
        if not b.mapping.whole():
            raise ValueError("--report maps per-patch PSNR on the LR grid of a whole-scale bundle; for a remaster "
                             "bundle use --frames-out to see the frames")
        preflight.check_writable(report, {"the bundle": bundle_path, "the input": input, "the --lr file": lr},
                                 "--report")
    if not b.mapping.whole() and not lr:
        raise ValueError(f"{Path(bundle_path).name} was trained on a remaster pair; evaluate it on one: give the LR "
                         f"clip with --lr (the HR is the input)")
    frames = frames or b.clip.frames_selected
    kernel = kernel or b.clip.kernel or "bicubic"
    if b.mapping.whole():  # the LR must be the input at the bundle's scale, frame for frame
        p = open_pair(input, lr, frames, b.scale, kernel, scale_option=None)
    else:
        p = open_training_pair(input, lr, frames, b.scale, True, kernel)[0]
        if p.mapping.whole():
            raise ValueError(f"{Path(bundle_path).name} is a remaster bundle but the LR is the input downscaled "
                             f"x{b.scale} ({p.mapping.describe()}); give the LR the bundle was made for")
    if frames_out:
        frames_out.mkdir(parents=True, exist_ok=True)
    places = bundle_frames(b, Path(input).name, p)
    result = evaluate(Path(bundle_path), b, p, places, device=device, report=report, report_frame=report_frame,
                      frames_out=frames_out)
    return result | {"input": Path(input).name, "frames": frames or ":",
                     "lr": Path(lr).name if lr else f"{kernel} downscale"}


def bundle_frames(bundle: Bundle, source: str, pair: Pair) -> list[int | None]:
    """For each pair of `source`, the index of its HR frame among the bundle's frames, or None where it is not
    one of them."""
    total = pair.source.num_frames
    if bundle.clip.alignment is not None:  # a remaster bundle records the HR frame of each of its frames
        trained = list(bundle.clip.alignment.hr_frames)
    else:
        trained = list(range(total)[parse_frames(bundle.clip.frames_selected)])
        if bundle.clip.sample is not None:
            trained = [trained[p] for p in bundle.clip.sample if p < len(trained)]
    if (source != bundle.clip.source or len(trained) != bundle.clip.frames
            or (pair.lr.width, pair.lr.height) != (bundle.clip.width, bundle.clip.height)):
        return [None] * len(pair.frames)
    index = {f: i for i, f in enumerate(trained)}
    return [index.get(f) for f in pair.frames]


def through(clip: vs.VideoNode, mapping: Mapping, kernel: str) -> vs.VideoNode:
    """`clip` (the LR) on the HR grid of `mapping` by one of video.KERNELS: HR pixel j's centre at LR
    (j + 0.5 - offset) / ratio (a plain resize for a whole-scale mapping)."""
    name, params = KERNELS[kernel]
    return getattr(vs.core.resize, name)(clip, **mapping.resize_args(1), **params)


def compared_area(mapping: Mapping) -> tuple[int, int, int, int]:
    """The HR box (x0, y0, x1, y1) compared: the whole frame of a whole-scale pair, the area both clips of a
    remaster pair show less MARGIN pixels."""
    if mapping.whole():
        return 0, 0, mapping.hr_width, mapping.hr_height
    x0, y0, x1, y1 = mapping.overlap()
    if x1 - x0 <= 2 * MARGIN or y1 - y0 <= 2 * MARGIN:
        raise ValueError(f"the clips show too little in common to compare ({mapping.describe()})")
    return x0 + MARGIN, y0 + MARGIN, x1 - MARGIN, y1 - MARGIN


def crop(clip: vs.VideoNode, box: tuple[int, int, int, int]) -> vs.VideoNode:
    """The box (x0, y0, x1, y1) of an RGBS clip."""
    x0, y0, x1, y1 = box
    if (x0, y0, x1, y1) == (0, 0, clip.width, clip.height):
        return clip
    return clip.std.Crop(left=x0, top=y0, right=clip.width - x1, bottom=clip.height - y1)


def as_taken(bundle: Bundle, lr: vs.VideoNode, c: colour.Colour) -> vs.VideoNode:
    """The LR clip in a format the bundle takes: a luma bundle upscales Y of YUV (or GRAY), so an RGB LR (the
    in-script downscale, or an RGB --lr file) goes to it as YUV 4:4:4 float, read with the pair's colour `c`:
    its Y is the luma the bundle was trained on."""
    if bundle.planes != 1 or lr.format.color_family != vs.RGB:
        return lr
    return colour.from_rgbs(lr, colour.Format(vs.YUV, vs.FLOAT, 32, 0, 0), c)


def write_png(path: Path, frame: torch.Tensor) -> None:
    """A CHW RGB tensor in [0, 1] as an 8-bit RGB PNG, written atomically."""
    from PIL import Image  # Pillow comes with matplotlib; its imsave would add an alpha channel

    data = io.BytesIO()
    Image.fromarray((frame * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), "RGB").save(data, "png")
    write_atomic(path, data.getvalue())


def psnr_plane(a: vs.VideoFrame, b: vs.VideoFrame) -> float:
    """PSNR of plane 0 of two frames of one format, peak = white (1 for float, 2**bits - 1 for integer)."""
    peak = 1.0 if a.format.sample_type == vs.FLOAT else (1 << a.format.bits_per_sample) - 1
    diff = np.asarray(a[0], dtype=np.float64) - np.asarray(b[0], dtype=np.float64)
    return float(mse_to_psnr(float(np.mean(diff ** 2)) / peak ** 2))


def evaluate(path: Path, bundle: Bundle, pair: Pair, places: list[int | None], device: str = "auto",
             report: str | None = None, report_frame: int | None = None,
             frames_out: Path | None = None) -> dict[str, Any]:
    """Per-frame and per-split PSNR of the bundle, bicubic and Lanczos on a pair (the HR as RGBS, the LR in its own
    format, frame for frame); optionally the PNG report and the comparison frames in the folder `frames_out`.
    `places`: each frame's index among the bundle's frames (see bundle_frames)."""
    hr, lr = pair.hr, as_taken(bundle, pair.lr_clip, pair.colour)
    if report_frame is not None and not 0 <= report_frame < lr.num_frames:
        raise ValueError(f"--report-frame {report_frame} is outside the {lr.num_frames} evaluated frames")
    if report:
        shown = report_frame if report_frame is not None else next(
            (n for n, place in enumerate(places) if place is not None), None)
        if shown is None or places[shown] is None:
            raise ValueError("the report shows the bundle's per-patch PSNR and chunks of one of its frames, but "
                             + ("none of the evaluated frames is" if shown is None else f"frame {shown} is not")
                             + " a frame of the bundle; evaluate the bundle's source or pick another --report-frame")
    fmt = colour.Format.of(lr.format)
    c = colour.colour_of(fmt, lr.width, lr.height, colour.first_props(lr), bundle.colour)  # as the filter reads it
    native = {"stdo": upscale(lr, path, device=device), "bicubic": through(lr, pair.mapping, "bicubic"),
              "lanczos": through(lr, pair.mapping, "lanczos")}
    area = compared_area(pair.mapping)
    outputs = {m: crop(colour.to_rgbs(out, c), area) for m, out in native.items()}
    clips = {"hr": crop(hr, area)} | outputs
    yuv = fmt.color_family == vs.YUV and pair.mapping.whole()
    if yuv:  # the Y planes too: each output's and the HR's, written in the LR's format and colour
        clips |= {"hr native": colour.from_rgbs(hr, fmt, c)} | {f"{m} native": o for m, o in native.items()}
    heldout = set(bundle.training.heldout)
    per_frame = []
    streams = zip(*(clip.frames(close=True) for clip in clips.values()))
    for n, (frames, place) in enumerate(tqdm(zip(streams, places), total=lr.num_frames, desc="evaluating",
                                             unit="frame")):
        f = dict(zip(clips, frames))
        hi = tensor(f["hr"])
        split = "unseen" if place is None else "heldout" if place in heldout else "train"
        row: dict[str, Any] = {"frame": n, "source_frame": pair.frames[n], "bundle_frame": place, "split": split}
        if frames_out:
            for name, key in (("bicubic", "bicubic"), ("stdo", "stdo"), ("source", "hr")):
                write_png(frames_out / f"{n:06d}_{name}.png", tensor(f[key]))
        for m in METHODS:
            up = tensor(f[m])
            row[m] = {"psnr_rgb": psnr(up, hi), "psnr_y": psnr_y(up, hi),
                      "psnr_y_plane": psnr_plane(f[f"{m} native"], f["hr native"]) if yuv else None}
        per_frame.append(row)
    result = {"bundle": str(path), "bundle_bytes": path.stat().st_size, "scale": bundle.scale,
              "chunks": bundle.chunks, "mode": bundle.training.mode,
              "results": summary(per_frame), "per_frame": per_frame, "report": None,
              "frames_out": str(frames_out) if frames_out else None}
    if report:
        from .report import write_report

        images = {"hr": tensor(hr.get_frame(shown))} | {m: tensor(outputs[m].get_frame(shown))
                                                         for m in ("stdo", "bicubic")}
        write_report(Path(report), bundle, places[shown], images,
                     title=f"{path.name}: frame {shown} of the range (frame {places[shown]} of the bundle, "
                           f"{SPLITS[per_frame[shown]['split']]})")
        result["report"] = str(report)
    return result


def summary(per_frame: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    """{method: {split: {frames, psnr_rgb, psnr_y, psnr_y_plane}}}, means over the frames of each split
    present (psnr_y_plane None where the LR is not YUV)."""
    out: dict[str, dict[str, dict[str, float | None]]] = {m: {} for m in METHODS}
    for split in SPLITS:
        rows = [f for f in per_frame if f["split"] == split]
        for m in METHODS if rows else ():
            out[m][split] = {"frames": len(rows)} | {
                k: None if rows[0][m][k] is None else sum(f[m][k] for f in rows) / len(rows) for k in MEASURES}
    return out


def table(result: dict[str, Any]) -> str:
    """The result for people: one row per split, PSNR RGB / Y (/ Y plane) per method, and the gain over bicubic."""
    r = result["results"]
    first = next(iter(r["stdo"].values()), {})
    keys = [k for k in MEASURES if first.get(k) is not None]
    width = 8 * len(keys) + 1
    lines = [f"{result['bundle']}: {result['chunks']} model(s) ({result['mode']}), x{result['scale']}, "
             f"{result['bundle_bytes']} bytes",
             f"on {result.get('input')} frames {result.get('frames')}, LR {result.get('lr')}; "
             f"PSNR in dB ({' / '.join(MEASURES[k] for k in keys)}), mean over frames",
             f"{'split':<14}{'frames':>7}" + "".join(f"{m:>{width}}" for m in METHODS) + f"{'stdo - bicubic':>{width}}"]
    for split, name in SPLITS.items():
        if split in r["stdo"]:
            row = {m: r[m][split] for m in METHODS}
            gain = " / ".join(f"{row['stdo'][k] - row['bicubic'][k]:+5.2f}" for k in keys)
            lines.append(f"{name:<14}{row['stdo']['frames']:>7}"
                         + "".join(f"{' / '.join(f'{row[m][k]:5.2f}' for k in keys):>{width}}" for m in METHODS)
                         + f"{gain:>{width}}")
    if result["report"]:
        lines.append(f"report: {result['report']}")
    if result.get("frames_out"):
        lines.append(f"comparison frames: {result['frames_out']}")
    return "\n".join(lines)
