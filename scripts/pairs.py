"""Synthetic remaster pairs with a known mapping, made from real clips with VapourSynth: an HR clip and an
LR of it framed differently (crop per side, sub-pixel shift, any per-axis ratio), starting later, with
frames missing or repeated, optionally through a real MPEG-2 encode like a DVD's. For the tests and the
pair benchmark.

resize.Bicubic(hr, lr_w, lr_h, src_left=L, src_width=W, ...) puts the HR window [L, L + W) on the LR
frame, so the true mapping is ratio_x = W / lr_w, offset_x = L (and the same for y).
"""
from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import vapoursynth as vs

from vs_stdo.core.mapping import Mapping

core = vs.core


@dataclass
class Pair:
    """An HR clip, an LR clip of it, the true mapping, and which HR frame each LR frame shows."""

    hr: vs.VideoNode
    lr: vs.VideoNode
    mapping: Mapping
    shows: list[int]  # shows[lr_frame] = the HR frame it was made from
    name: str = ""
    notes: dict = field(default_factory=dict)

    def frame_offset(self) -> int:
        """The most common lr_frame - hr_frame (the LR starting later gives a negative offset)."""
        return Counter(l - h for l, h in enumerate(self.shows) if h >= 0).most_common(1)[0][0]


def hr_clip(path: str | Path, width: int, height: int, first: int = 0, frames: int = 90) -> vs.VideoNode:
    """`frames` frames of a real clip from `first`, cropped to the aspect of width x height (centred) and
    resized to it: YUV420P8, tagged BT.709 limited, as a Blu-ray would be."""
    return hr_segments([(path, first, first + frames - 1)], width, height)


def hr_segments(segments: list[tuple[str | Path, int, int]], width: int, height: int,
                bars: tuple[int, int, int, int] = (0, 0, 0, 0)) -> vs.VideoNode:
    """`hr_clip` of segments of real clips spliced ((clip, first, last) frames, inclusive, in order: the episodes of
    a show), each clip's black bars (left, right, top, bottom source px) cut off first; at the first clip's frame
    rate."""
    parts = []
    for path, first, last in segments:
        source = core.bs.VideoSource(str(path))
        if not 0 <= first <= last < source.num_frames:
            raise ValueError(f"{path} has {source.num_frames} frames; segment {first}-{last} does not fit")
        clip = source[first:last + 1]
        if any(bars):
            clip = clip.std.Crop(*bars)
        parts.append(_framed(clip, width, height))
    fps = parts[0].fps
    return core.std.Splice([p.std.AssumeFPS(fpsnum=fps.numerator, fpsden=fps.denominator) for p in parts])


def _framed(clip: vs.VideoNode, width: int, height: int) -> vs.VideoNode:
    """A clip cropped to the aspect of width x height (centred) and resized to it, YUV420P8 tagged BT.709 limited."""
    aspect = width / height
    cw, ch = (round(clip.height * aspect), clip.height) if clip.width / clip.height > aspect else \
        (clip.width, round(clip.width / aspect))
    props = core.std.SetFrameProps(clip, _Matrix=1, _Primaries=1, _Transfer=1, _Range=int(vs.RANGE_LIMITED))
    return core.resize.Bicubic(props, width, height, format=vs.YUV420P8, matrix_in=1, matrix=1,
                               src_left=(clip.width - cw) / 2, src_top=(clip.height - ch) / 2,
                               src_width=cw, src_height=ch)


def make_pair(hr: vs.VideoNode, lr_width: int, lr_height: int, crop: tuple[float, float, float, float] = (0, 0, 0, 0),
              shift: tuple[float, float] = (0, 0), start: int = 0, missing: tuple[int, ...] = (),
              repeated: tuple[int, ...] = (), matrix: int = 6, name: str = "") -> Pair:
    """An LR of `hr`: the HR less `crop` (left, right, top, bottom HR px), moved by `shift` (HR px), resized
    to lr_width x lr_height and converted to `matrix` (BT.601 by default, a DVD's); it starts at HR frame
    `start`, lacks the HR frames in `missing` and shows those in `repeated` twice."""
    left, right, top, bottom = crop
    src_left, src_top = left + shift[0], top + shift[1]
    src_width, src_height = hr.width - left - right, hr.height - top - bottom
    lr = core.resize.Bicubic(hr, lr_width, lr_height, format=vs.YUV420P8, matrix_in=1, matrix=matrix,
                             src_left=src_left, src_top=src_top, src_width=src_width, src_height=src_height)
    lr = core.std.SetFrameProps(lr, _Matrix=matrix, _Primaries=matrix, _Transfer=matrix)
    shows = []
    for n in range(start, hr.num_frames):
        if n in missing:
            continue
        shows += [n, n] if n in repeated else [n]
    lr = core.std.Splice([lr[n] for n in shows])
    mapping = Mapping(lr_width, lr_height, hr.width, hr.height, src_width / lr_width, src_height / lr_height,
                      src_left, src_top)
    return Pair(hr, lr, mapping, shows, name)


def mpeg2(pair: Pair, folder: Path, bitrate: str = "1500k", gop: int = 15) -> Pair:
    """The pair with its LR encoded like a DVD's video (MPEG-2 at `bitrate`, GOP `gop`) by the real ffmpeg
    and read back with BestSource."""
    import imageio_ffmpeg

    raw, encoded = folder / f"{pair.name or 'lr'}.y4m", folder / f"{pair.name or 'lr'}.mpg"
    with open(raw, "wb") as f:
        pair.lr.output(f, y4m=True)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(raw), "-c:v", "mpeg2video",
                    "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", "1835k", "-g", str(gop),
                    "-colorspace", "smpte170m", "-color_primaries", "smpte170m", "-color_trc", "smpte170m",
                    str(encoded)], check=True)
    raw.unlink()
    lr = core.bs.VideoSource(str(encoded))
    if lr.num_frames != pair.lr.num_frames:
        raise RuntimeError(f"the MPEG-2 encode has {lr.num_frames} frames, {pair.lr.num_frames} went in")
    return Pair(pair.hr, lr, pair.mapping, pair.shows, pair.name, {**pair.notes, "codec": f"mpeg2 {bitrate} gop {gop}"})


def dvd_like(path: str | Path, folder: Path, first: int = 0, frames: int = 90, name: str = "dvd") -> Pair:
    """The DVD-like pair of the remaster feature: a 640x480 HR, a 352x240 LR (ratios 1.80 x 1.95) missing
    6/2/4/8 HR px at left/right/top/bottom, shifted by +0.37/-0.41 px, MPEG-2 at 1.5 Mb/s GOP 15, starting
    2 frames later."""
    return dvd_pair(hr_clip(path, 640, 480, first, frames), folder, name)


def dvd_pair(hr: vs.VideoNode, folder: Path, name: str = "dvd") -> Pair:
    """`dvd_like` of a given 640x480 HR clip."""
    return mpeg2(make_pair(hr, 352, 240, (6, 2, 4, 8), (0.37, -0.41), start=2, name=name), folder)


def exact_15(path: str | Path, first: int = 0, frames: int = 90) -> Pair:
    """An exact lossless 1.5x pair, what a descale gives: a 768x576 HR and its 512x384 bicubic LR."""
    return make_pair(hr_clip(path, 768, 576, first, frames), 512, 384, matrix=1, name="exact-1.5x")
