"""`stdo eval`: PSNR of a bundle, through the real filter, against bicubic and Lanczos on whole frames.

Every LR frame is upscaled by `core.stdo.Upscale` (route "auto") and by VapourSynth's bicubic
(Catmull-Rom) and Lanczos (3 taps); each output, clamped to [0, 1], is compared with the HR frame in
RGB and in BT.709 luma. Numbers per split are means of per-frame PSNR. A frame's split comes from its
place in the source: "train" (a frame the bundle was trained on), "heldout" (in the bundle's range but
held out by the trainer), "unseen" (outside that range, or another source: a file whose name differs
from the bundle's source, or another LR size).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import vapoursynth as vs
from tqdm import tqdm

from .bundle import Bundle
from .metrics import psnr, psnr_y
from .video import frame_array, frame_range, parse_frames, resize
from .vsplugin import upscale

METHODS = ("stdo", "bicubic", "lanczos")
SPLITS = {"train": "train", "heldout": "held-out", "unseen": "not in bundle"}


def tensor(frame: vs.VideoFrame) -> torch.Tensor:
    """An RGBS frame as a CHW tensor clamped to [0, 1]."""
    return torch.from_numpy(frame_array(frame)).clamp_(0, 1)


def bundle_frames(bundle: Bundle, source: str, total: int, frames: str | None, lr: vs.VideoNode) -> list[int | None]:
    """For each evaluated frame of `source` (`total` frames, cut to `frames`), its index among the
    bundle's frames, or None where it is not one of them."""
    picked = frame_range(frames, total)
    trained = range(total)[parse_frames(bundle.clip.get("frames_selected"))]
    sample = bundle.clip.get("sample")
    if sample is not None:
        trained = [trained[p] for p in sample if p < len(trained)]
    if (source != bundle.clip.get("source") or len(trained) != len(bundle.labels)
            or (lr.width, lr.height) != (bundle.clip["width"], bundle.clip["height"])):
        return [None] * len(picked)
    index = {f: i for i, f in enumerate(trained)}
    return [index.get(f) for f in picked]


def evaluate(path: Path, bundle: Bundle, hr: vs.VideoNode, lr: vs.VideoNode, places: list[int | None],
             device: str = "auto", report: str | None = None, report_frame: int | None = None) -> dict[str, Any]:
    """Per-frame and per-split PSNR of the bundle, bicubic and Lanczos; optionally the PNG report.
    `places`: each frame's index among the bundle's frames (see bundle_frames)."""
    if report_frame is not None and not 0 <= report_frame < lr.num_frames:
        raise ValueError(f"--report-frame {report_frame} is outside the {lr.num_frames} evaluated frames")
    if report:
        shown = report_frame if report_frame is not None else next(
            (n for n, place in enumerate(places) if place is not None), None)
        if shown is None or places[shown] is None:
            raise ValueError("the report shows the bundle's per-patch PSNR and chunks of one of its frames, but "
                             + ("none of the evaluated frames is" if shown is None else f"frame {shown} is not")
                             + " a frame of the bundle; evaluate the bundle's source or pick another --report-frame")
    outputs = {"stdo": upscale(lr, path, device=device), "bicubic": resize(lr, hr.width, hr.height, "bicubic"),
               "lanczos": resize(lr, hr.width, hr.height, "lanczos")}
    heldout = set(bundle.training.get("heldout", []))
    per_frame = []
    streams = zip(hr.frames(close=True), *(c.frames(close=True) for c in outputs.values()))
    for n, (frames, place) in enumerate(tqdm(zip(streams, places), total=lr.num_frames, desc="evaluating",
                                             unit="frame")):
        hi, *ups = (tensor(f) for f in frames)
        split = "unseen" if place is None else "heldout" if place in heldout else "train"
        per_frame.append({"frame": n, "bundle_frame": place, "split": split} |
                         {m: {"psnr_rgb": psnr(u, hi), "psnr_y": psnr_y(u, hi)} for m, u in zip(outputs, ups)})
    result = {"bundle": str(path), "bundle_bytes": path.stat().st_size, "scale": bundle.scale,
              "chunks": bundle.chunks, "mode": bundle.training.get("mode"),
              "results": summary(per_frame), "per_frame": per_frame, "report": None}
    if report:
        from .report import write_report

        images = {"hr": tensor(hr.get_frame(shown))} | {m: tensor(outputs[m].get_frame(shown))
                                                         for m in ("stdo", "bicubic")}
        write_report(Path(report), bundle, places[shown], images,
                     title=f"{path.name}: frame {shown} of the range (frame {places[shown]} of the bundle, "
                           f"{SPLITS[per_frame[shown]['split']]})")
        result["report"] = str(report)
    return result


def summary(per_frame: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """{method: {split: {frames, psnr_rgb, psnr_y}}}, means over the frames of each split present."""
    out: dict[str, dict[str, dict[str, float]]] = {m: {} for m in METHODS}
    for split in SPLITS:
        rows = [f for f in per_frame if f["split"] == split]
        for m in METHODS if rows else ():
            out[m][split] = {"frames": len(rows),
                             "psnr_rgb": sum(f[m]["psnr_rgb"] for f in rows) / len(rows),
                             "psnr_y": sum(f[m]["psnr_y"] for f in rows) / len(rows)}
    return out


def table(result: dict[str, Any]) -> str:
    """The result for people: one row per split, PSNR RGB / Y per method, and the gain over bicubic."""
    r = result["results"]
    lines = [f"{result['bundle']}: {result['chunks']} model(s) ({result['mode']}), x{result['scale']}, "
             f"{result['bundle_bytes']} bytes",
             f"on {result.get('input')} frames {result.get('frames')}, LR {result.get('lr')}; "
             f"PSNR in dB (RGB / Y), mean over frames",
             f"{'split':<14}{'frames':>7}" + "".join(f"{m:>17}" for m in METHODS) + f"{'stdo - bicubic':>17}"]
    for split, name in SPLITS.items():
        if split in r["stdo"]:
            row = {m: r[m][split] for m in METHODS}
            gain = [row["stdo"][k] - row["bicubic"][k] for k in ("psnr_rgb", "psnr_y")]
            lines.append(f"{name:<14}{row['stdo']['frames']:>7}"
                         + "".join(f"{row[m]['psnr_rgb']:>9.2f} / {row[m]['psnr_y']:5.2f}" for m in METHODS)
                         + f"{gain[0]:>+9.2f} / {gain[1]:+5.2f}")
    if result["report"]:
        lines.append(f"report: {result['report']}")
    return "\n".join(lines)
