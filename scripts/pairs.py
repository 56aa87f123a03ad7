"""Synthetic remaster pairs with a known mapping, made from real clips with VapourSynth: an HR clip and an
LR of it framed differently (crop per side, sub-pixel shift, any per-axis ratio, black bars on either side),
starting later, with frames missing or repeated, optionally through a real MPEG-2 encode like a DVD's; and
pairs whose framing changes (a pan and scan, scenes cropped otherwise). For the tests and the pair benchmark.

resize.Bicubic(hr, lr_w, lr_h, src_left=L, src_width=W, ...) puts the HR window [L, L + W) on the LR
frame, so the true mapping is ratio_x = W / lr_w, offset_x = L (and the same for y); with bars, the same
between the pictures (`Mapping.framed`).
"""
from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import vapoursynth as vs

from vs_stdo.core.mapping import NO_BARS, Box, Mapping

core = vs.core
BLACK = [16, 128, 128]  # limited-range YUV black


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
                bars: tuple[int, int, int, int] = (0, 0, 0, 0), pad: Box = NO_BARS) -> vs.VideoNode:
    """`hr_clip` of segments of real clips spliced ((clip, first, last) frames, inclusive, in order: the episodes of
    a show), each clip's black bars (left, right, top, bottom source px) cut off first; at the first clip's frame
    rate. With `pad`, a picture of the frame less those bars (left, right, top, bottom px) in black bars (a
    pillarboxed Blu-ray)."""
    if pad != NO_BARS:
        l, r, t, b = pad
        return hr_segments(segments, width - l - r, height - t - b, bars).std.AddBorders(l, r, t, b, BLACK)
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
              repeated: tuple[int, ...] = (), matrix: int = 6, name: str = "", lr_bars: Box = NO_BARS,
              hr_bars: Box = NO_BARS, bar_luma: int = 16) -> Pair:
    """An LR of `hr`: the HR picture (less `hr_bars`, left, right, top, bottom px) less `crop` (the same, HR px),
    moved by `shift` (HR px), resized to lr_width x lr_height less `lr_bars` and put in black bars of those
    (luma `bar_luma`: 16 is black, more a lift), converted to `matrix` (BT.601 by default, a DVD's); it starts
    at HR frame `start`, lacks the HR frames in `missing` and shows those in `repeated` twice."""
    left, right, top, bottom = crop
    hl, hr_, ht, hb = hr_bars
    ll, lr_, lt, lb = lr_bars
    src_left, src_top = hl + left + shift[0], ht + top + shift[1]
    src_width, src_height = hr.width - hl - hr_ - left - right, hr.height - ht - hb - top - bottom
    pic_w, pic_h = lr_width - ll - lr_, lr_height - lt - lb
    lr = core.resize.Bicubic(hr, pic_w, pic_h, format=vs.YUV420P8, matrix_in=1, matrix=matrix,
                             src_left=src_left, src_top=src_top, src_width=src_width, src_height=src_height)
    if lr_bars != NO_BARS:
        lr = lr.std.AddBorders(*lr_bars, [bar_luma, 128, 128])
    lr = core.std.SetFrameProps(lr, _Matrix=matrix, _Primaries=matrix, _Transfer=matrix)
    shows = []
    for n in range(start, hr.num_frames):
        if n in missing:
            continue
        shows += [n, n] if n in repeated else [n]
    lr = core.std.Splice([lr[n] for n in shows])
    pictures = Mapping(pic_w, pic_h, hr.width - hl - hr_, hr.height - ht - hb, src_width / pic_w,
                       src_height / pic_h, src_left - hl, src_top - ht)
    return Pair(hr, lr, pictures.framed(lr_bars, hr_bars), shows, name)


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


def letterboxed(path: str | Path, folder: Path, first: int = 0, frames: int = 90, name: str = "letterbox") -> Pair:
    """A 16:9 picture in a 4:3 DVD: a 640x360 HR, a 352x240 LR whose picture is 352x180 between black bars of
    30 rows (25 %), missing 6/2/4/8 HR px at left/right/top/bottom, shifted +0.37/-0.41 px, MPEG-2 at 1.5 Mb/s
    GOP 15, starting 2 frames later."""
    hr = hr_clip(path, 640, 360, first, frames)
    return mpeg2(make_pair(hr, 352, 240, (6, 2, 4, 8), (0.37, -0.41), start=2, name=name, lr_bars=(0, 0, 30, 30)),
                 folder)


def pillarboxed(path: str | Path, folder: Path, first: int = 0, frames: int = 90, name: str = "pillarbox") -> Pair:
    """A full-frame 4:3 DVD of a show the Blu-ray pillarboxes in 16:9: a 640x360 HR whose 480x360 picture lies
    between black bars of 80 columns, a 352x240 LR of that picture missing 6/2/4/8 HR px at left/right/top/bottom,
    shifted +0.37/-0.41 px, MPEG-2 at 1.5 Mb/s GOP 15, starting 2 frames later."""
    hr = hr_segments([(path, first, first + frames - 1)], 640, 360, pad=(80, 80, 0, 0))
    return mpeg2(make_pair(hr, 352, 240, (6, 2, 4, 8), (0.37, -0.41), start=2, name=name, hr_bars=(80, 80, 0, 0)),
                 folder)


def spliced(pairs: list[Pair], name: str = "spliced") -> Pair:
    """Pairs of one length spliced one after the other on both sides (episodes framed differently); the
    mapping is the first's."""
    offset, shows = 0, []
    for p in pairs:
        shows += [h + offset if h >= 0 else h for h in p.shows]
        offset += p.hr.num_frames
    return Pair(core.std.Splice([p.hr for p in pairs]), core.std.Splice([p.lr for p in pairs]), pairs[0].mapping,
                shows, name)


def pan_and_scan(hr: vs.VideoNode, lr_width: int, lr_height: int, window: float, name: str = "pan-and-scan") -> Pair:
    """A pan-and-scan LR of `hr`: a window `window` of the HR's width (a 4:3 window of a 16:9 picture: 0.75) of
    its full height, panning from the left edge to the right edge over the clip, resized to lr_width x
    lr_height, BT.601. The mapping given is frame 0's; each frame's differs."""
    width = window * hr.width
    last = max(1, hr.num_frames - 1)

    def frame(n: int) -> vs.VideoNode:
        return core.resize.Bicubic(hr[n], lr_width, lr_height, format=vs.YUV420P8, matrix_in=1, matrix=6,
                                   src_left=(hr.width - width) * n / last, src_width=width)

    blank = core.std.BlankClip(hr, width=lr_width, height=lr_height, length=hr.num_frames)
    lr = core.std.SetFrameProps(blank.std.FrameEval(lambda n: frame(n)), _Matrix=6, _Primaries=6, _Transfer=6)
    mapping = Mapping(lr_width, lr_height, hr.width, hr.height, width / lr_width, hr.height / lr_height, 0.0, 0.0)
    return Pair(hr, lr, mapping, list(range(hr.num_frames)), name)
