"""The filter: signature, format matrix, colour props, errors, content matching, threads,
vspipe | ffmpeg, memory. Real cores, real clips, real encodes; no mocks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

from scripts.encode import encode
from tests.support.bundles import gray_clip, micro, write_bundle
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core import colour
from vs_stdo.core.grid import Grid
from vs_stdo.core.video import hr_lr_pair, open_clip
from vs_stdo.filter.routing import Route, Routing

core = vs.core
ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "filter.md"
TAG_709 = ["-vf", "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"]


def planes(frame: vs.VideoFrame) -> list[np.ndarray]:
    return [np.array(frame[p]) for p in range(frame.format.num_planes)]


def same(a: vs.VideoFrame, b: vs.VideoFrame) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(planes(a), planes(b)))


@pytest.fixture(scope="module")
def red_bundle(tmp_path_factory) -> Path:
    """x2 on 64x48: one model that adds 0.2 to R (bicubic elsewhere), so colour handling shows in numbers."""
    path = tmp_path_factory.mktemp("red") / "red.stdo"
    return write_bundle(path, [micro(2, 0.2, channel=0)], np.zeros((1, 4, 4), np.uint8), [torch.zeros(3, 48, 64)])


# ---------- signature and docs ----------

def test_signature_and_docs_cover_every_argument():
    sig = core.stdo.Upscale.signature
    for arg in ("clip:vnode", "bundle:data", "route:data:opt", "device:data:opt", "fp16:int:opt", "pad:int:opt",
                "batch:int:opt", "bf16:int:opt"):
        assert arg in sig
    docs = DOCS.read_text()
    names = [arg.split(":")[0] for arg in sig.split(";") if arg]
    assert names == ["clip", "bundle", "route", "device", "fp16", "pad", "batch", "bf16"]
    for name in names:
        assert f"| `{name}` |" in docs, f"docs/filter.md has no table row for {name}"
    assert "vspreview" in docs and "--vf=vapoursynth=" in docs


# ---------- formats, props, colour ----------

def _formats() -> list[vs.VideoFormat]:
    yuv = [core.query_video_format(vs.YUV, st, bits, *ss) for st, bits in
           [(vs.INTEGER, 8), (vs.INTEGER, 10), (vs.INTEGER, 12), (vs.INTEGER, 16), (vs.FLOAT, 16), (vs.FLOAT, 32)]
           for ss in ((1, 1), (1, 0), (0, 0))]
    other = [vs.RGB24, vs.RGB30, vs.RGB48, vs.RGBH, vs.RGBS, vs.GRAY8, vs.GRAY10, vs.GRAY12, vs.GRAY16, vs.GRAYH,
             vs.GRAYS]
    return yuv + [core.get_video_format(f) for f in other]


@pytest.mark.parametrize("fmt", _formats(), ids=lambda f: f.name)
def test_every_format_round_trips_with_size_format_props_and_values(red_bundle, fmt):
    rgb = core.std.BlankClip(format=vs.RGBS, width=64, height=48, length=2, color=[0.5, 0.4, 0.3])
    props = {"Custom": 7, "_SARNum": 4, "_SARDen": 3, "_Transfer": 1, "_Primaries": 1}
    if fmt.color_family == vs.YUV:
        props |= {"_Matrix": 1, "_ChromaLocation": 2}
    matrix = {} if fmt.color_family == vs.RGB else {"matrix_s": "709"}
    clip = rgb.resize.Point(format=fmt.id, **matrix).std.SetFrameProps(**props)
    out = core.stdo.Upscale(clip, str(red_bundle))
    assert (out.format.id, out.width, out.height, out.num_frames) == (fmt.id, 128, 96, 2)
    got = out.get_frame(1)
    routing = {"STDORoute": "auto->single", "STDOFrame": -1, "STDOChunkShare": 1.0}  # one model: nothing to route
    assert dict(got.props) == dict(clip.get_frame(1).props) | routing
    # The same edit done by hand: to RGB by the clip's props, R + 0.2, back with the same props.
    hand = clip.resize.Point(format=vs.RGBS).std.Expr(["x 0.2 +", "", ""])
    hand = hand.resize.Point(format=fmt.id, **matrix, **({"chromaloc_s": "top_left"} if matrix else {}),
                             **({"range_s": "full" if fmt.color_family == vs.RGB else "limited"}
                                if fmt.sample_type == vs.INTEGER else {}))
    tolerance = 1 if fmt.sample_type == vs.INTEGER else 2e-3
    for p, want in zip(planes(got), planes(hand.get_frame(1))):
        assert np.abs(p.astype(np.float64) - want[0, 0]).max() <= tolerance


@pytest.mark.parametrize("fmt, props, want, want_props", [
    # Y=126 limited is 0.5023 grey; +0.2 on R. BT.601 (the default below 1024x576): Y+13.1, U-7.6, V+22.4.
    (vs.YUV420P8, {}, [139, 120, 150], {"_Matrix": 6, "_Range": vs.RANGE_LIMITED, "_ChromaLocation": 0}),
    (vs.YUV420P8, {"_Matrix": 1}, [135, 123, 150], {"_Matrix": 1, "_Range": vs.RANGE_LIMITED}),
    (vs.YUV420P8, {"_Range": vs.RANGE_FULL}, [141, 119, 153.5], {"_Matrix": 6, "_Range": vs.RANGE_FULL}),
    (vs.GRAY8, {}, [135], {"_Range": vs.RANGE_LIMITED}),                  # BT.709 luma of the RGB: +0.2126*0.2
    (vs.GRAY8, {"_Range": vs.RANGE_FULL}, [137], {"_Range": vs.RANGE_FULL}),
    (vs.RGB24, {}, [177, 128, 128], {"_Range": vs.RANGE_FULL}),
    (vs.RGB24, {"_Range": vs.RANGE_LIMITED}, [170, 128, 128], {"_Range": vs.RANGE_LIMITED}),
], ids=["yuv-untagged", "yuv-709", "yuv-full", "gray-untagged", "gray-full", "rgb-untagged", "rgb-limited"])
def test_colour_props_and_documented_defaults_are_honoured(red_bundle, fmt, props, want, want_props):
    n = core.get_video_format(fmt).num_planes
    clip = core.std.BlankClip(format=fmt, width=64, height=48, length=1, color=[126, 128, 128][:n], keep=True)
    clip = clip.std.SetFrameProps(**props) if props else clip
    got = core.stdo.Upscale(clip, str(red_bundle)).get_frame(0)
    for p, value in zip(planes(got), want):
        assert np.abs(p.astype(float) - value).max() <= 1
    for key, value in want_props.items():
        assert got.props[key] == value


def test_default_matrix_follows_the_frame_size():
    yuv = colour.Format(vs.YUV, vs.INTEGER, 8, 1, 1)
    assert colour.colour_of(yuv, 1280, 720, {}).matrix == 1
    assert colour.colour_of(yuv, 1024, 576, {}).matrix == 6
    assert colour.colour_of(yuv, 1024, 576, {"_Matrix": 5}).matrix == 5
    half = colour.Format(vs.YUV, vs.FLOAT, 16, 0, 0)
    assert colour.colour_of(half, 64, 48, {"_Range": vs.RANGE_LIMITED}).range == vs.RANGE_FULL


# ---------- errors ----------

def test_bad_clips_and_arguments_raise_clear_errors(red_bundle):
    b = str(red_bundle)
    clip = core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=2)
    varying = core.std.Splice([clip, clip.resize.Point(80, 48)], mismatch=True)
    cases = [
        (lambda: core.stdo.Upscale(varying, b), "variable format or frame size"),
        (lambda: core.stdo.Upscale(core.std.BlankClip(clip, format=vs.GRAY32), b), "integer depth 32"),
        (lambda: core.stdo.Upscale(clip.std.SetFrameProps(_Matrix=3), b), "_Matrix=3 is not a YUV matrix"),
        (lambda: core.stdo.Upscale(clip.std.SetFrameProps(_Range=7), b), "_Range=7 is not a valid range"),
        (lambda: core.stdo.Upscale(clip.std.SetFrameProps(_ChromaLocation=9), b), "_ChromaLocation=9"),
        (lambda: core.stdo.Upscale(clip.resize.Point(96, 48), b, route="labels"), "LR size 64x48.*clip is 96x48"),
        (lambda: core.stdo.Upscale(clip, b, route="chunk:1"), "chunks 0..0"),
        (lambda: core.stdo.Upscale(clip, b, route="single"), "unknown route"),
        (lambda: core.stdo.Upscale(clip, b, pad=-1), "pad must be in 0..64"),
        (lambda: core.stdo.Upscale(clip, b, pad=65), "pad must be in 0..64"),
        (lambda: core.stdo.Upscale(clip, b, batch=-1), "batch must be >= 0"),
        (lambda: core.stdo.Upscale(clip, b, fp16=2), "fp16 must be 0 or 1"),
        (lambda: core.stdo.Upscale(clip, b, bf16=-1), "bf16 must be 0 or 1"),
        (lambda: core.stdo.Upscale(clip, b, device="tpu"), "device 'tpu'"),
        (lambda: core.stdo.Upscale(clip, b, route=3), "route"),
        (lambda: core.stdo.Upscale(clip.std.SetFrameProps(_FieldBased=2), b),
         r"interlaced \(_FieldBased=2\).*deinterlace \(or IVTC\) first"),
    ]
    if not torch.cuda.is_available():
        cases += [(lambda: core.stdo.Upscale(clip, b, device="cuda"), "CUDA is not available"),
                  (lambda: core.stdo.Upscale(clip, b, device="cpu", fp16=1), "fp16 needs a CUDA device")]
    for call, message in cases:
        with pytest.raises(vs.Error, match=message):
            call()


# ---------- route modes and content matching ----------

@pytest.fixture(scope="module")
def spaced(clip_path, tmp_path_factory) -> tuple[vs.VideoNode, Path, np.ndarray, Grid]:
    """RGBS LR (x4, cropped to 160x108) of 6 real frames 8 apart, and a bundle for them: 3 offset
    models, random labels."""
    lr = hr_lr_pair(open_clip(clip_path)[::8][:6], 4)[1].std.Crop(right=160, bottom=72)
    frames = [torch.from_numpy(np.stack(planes(f))) for f in lr.frames()]
    grid = Grid(lr.width, lr.height, 48, 54)
    labels = np.random.default_rng(1).integers(0, 3, (6, grid.rows, grid.cols)).astype(np.uint8)
    path = write_bundle(tmp_path_factory.mktemp("spaced") / "spaced.stdo",
                        [micro(4, o) for o in (-0.08, 0.0, 0.08)], labels, frames, patch=(48, 54))
    return lr, path, labels.reshape(6, -1), grid


def routed_chunks(clip: vs.VideoNode, bundle: Path, grid: Grid, route: str = "labels") -> np.ndarray:
    """(frames, patches): which chunk model made each patch of the output, read off the luma of renders
    with every model forced (each patch's output depends only on its own model and input)."""
    def luma(out: vs.VideoNode) -> np.ndarray:
        gray = out.resize.Point(format=vs.GRAYS, matrix_s="709")
        return np.stack([np.asarray(f[0], dtype=np.float64) for f in gray.frames()])

    owner = np.empty((grid.height * 4, grid.width * 4), int)      # later patches own overlaps
    for i, (y, x, h, w) in enumerate(grid.hr_boxes(4)):
        owner[y:y + h, x:x + w] = i
    owner = owner.ravel()
    routed = luma(core.stdo.Upscale(clip, str(bundle), route=route))
    errors = [[np.bincount(owner, np.abs(r - f).ravel(), grid.count) for r, f in zip(routed, forced)]
              for forced in (luma(core.stdo.Upscale(clip, str(bundle), route=f"chunk:{k}")) for k in range(3))]
    return np.array(errors).argmin(0)


def test_trims_splices_drops_and_reordering_find_their_labels(spaced):
    lr, path, labels, grid = spaced
    clip = lr.resize.Bicubic(format=vs.YUV420P10, matrix_s="709")
    full = core.stdo.Upscale(clip, str(path), route="labels")
    assert np.array_equal(routed_chunks(clip, path, grid), labels)
    want = list(full.frames())
    cases = {"trim": (clip[2:5], [2, 3, 4]), "splice": (clip[4:6] + clip[0:2], [4, 5, 0, 1]),
             "drop": (clip.std.DeleteFrames([1, 3]), [0, 2, 4, 5]), "reverse": (clip.std.Reverse(), [5, 4, 3, 2, 1, 0])}
    for name, (part, source) in cases.items():
        out = core.stdo.Upscale(part, str(path), route="labels")
        for i, n in enumerate(source):
            assert same(out.get_frame(i), want[n]), f"{name}: frame {i} should equal frame {n} of the full clip"


@pytest.mark.slow
@pytest.mark.vspipe
def test_lossy_x264_reencode_still_finds_every_frame(spaced, clip_path, tmp_path):
    lr, path, labels, grid = spaced
    vpy = tmp_path / "lr.vpy"
    vpy.write_text("import vapoursynth as vs\nfrom vs_stdo.core.video import hr_lr_pair, open_clip\n"
                   f"lr = hr_lr_pair(open_clip({str(clip_path)!r})[::8][:6], 4)[1].std.Crop(right=160, bottom=72)\n"
                   "lr.resize.Bicubic(format=vs.YUV420P8, matrix_s='709').set_output()\n")
    mp4 = tmp_path / "lr.mp4"
    encode(vpy, mp4, ["-c:v", "libx264", "-crf", "23", *TAG_709])
    decoded = open_clip(mp4)
    assert decoded.num_frames == 6 and decoded.get_frame(0).props["_Matrix"] == 1
    assert np.array_equal(routed_chunks(decoded[::-1], path, grid), labels[::-1])


def test_auto_uses_labels_where_found_and_the_fallback_elsewhere(tmp_path):
    w, h, values = 64, 48, [0.2, 0.4, 0.6]
    labels = np.random.default_rng(2).integers(0, 3, (3, 4, 4))
    path = write_bundle(tmp_path / "k3.stdo", [micro(2, o) for o in (-0.1, 0.0, 0.1)], labels,
                        [torch.full((3, h, w), v) for v in values])
    clip = gray_clip([0.4, 0.9, 0.2], w, h)                      # 0.9 is not in the bundle
    auto = core.stdo.Upscale(clip, str(path))
    labelled = core.stdo.Upscale(clip, str(path), route="labels")
    fallback = core.stdo.Upscale(clip, str(path), route="chunk:0")
    assert same(auto.get_frame(0), labelled.get_frame(0)) and same(auto.get_frame(2), labelled.get_frame(2))
    assert not same(auto.get_frame(0), fallback.get_frame(0))
    assert same(auto.get_frame(1), fallback.get_frame(1))
    with pytest.raises(vs.Error, match=r"frame 1 is not a frame of the training clip.*tolerance"):
        labelled.get_frame(1)
    other_size = core.stdo.Upscale(gray_clip([0.4], 80, 48), str(path))
    assert same(other_size.get_frame(0), core.stdo.Upscale(gray_clip([0.4], 80, 48), str(path),
                                                           route="chunk:0").get_frame(0))


def test_auto_hands_unknown_frames_to_a_bundles_blind_router(tmp_path):
    w, h = 64, 48
    path = write_bundle(tmp_path / "k2.stdo", [micro(2), micro(2)], np.zeros((1, 4, 4), np.uint8),
                        [torch.full((3, h, w), 0.5)])
    b = bundle_io.load(path)

    def auto(grid: Grid, blind) -> Routing:  # route auto with a stand-in for the bundle's blind router
        return Routing(b, grid, Route.parse("auto", 2), blind)

    bright = lambda patches: (patches.mean(dim=(1, 2, 3)) > 0.5).long()   # noqa: E731  bright patches -> chunk 1
    grid = Grid(w, h, 16, 12)
    frame = torch.full((3, h, w), 0.2)
    frame[:, :12] = 0.9                                                      # first patch row bright
    want = torch.tensor([1] * 4 + [0] * 12)
    assert torch.equal(auto(grid, bright)(0, frame), want)
    assert torch.equal(auto(grid, bright)(0, torch.full((3, h, w), 0.5)), torch.zeros(16).long())
    assert torch.equal(auto(Grid(80, 48, 16, 12), bright)(0, torch.full((3, 48, 80), 0.9)), torch.ones(20).long())
    with pytest.raises(ValueError, match="not a frame of the training clip"):
        Routing(b, grid, Route.parse("labels", 2))(0, frame)
    with pytest.raises(ValueError, match=r"router gave chunk indices in \[5, 5\] but the bundle has 2 chunks"):
        auto(grid, lambda patches: torch.full((len(patches),), 5))(0, frame)
    with pytest.raises(ValueError, match="router gave 3 chunk indices for 16 patches"):
        auto(grid, lambda patches: torch.zeros(3))(0, frame)


# ---------- scheduling ----------

@pytest.mark.slow
@pytest.mark.train
def test_output_is_identical_for_1_and_n_threads_and_any_request_order(tiny_bundle, pair):
    lr = pair[1].resize.Bicubic(format=vs.YUV420P10, matrix_s="709")
    threads = core.num_threads
    try:
        core.num_threads = 1
        one = [core.stdo.Upscale(lr, str(tiny_bundle)).get_frame(n) for n in range(lr.num_frames)]
        core.num_threads = 4
        out = core.stdo.Upscale(lr, str(tiny_bundle))
        order = [5, 0, 3, 1, 4, 2]
        many = dict(zip(order, [f.result() for f in [out.get_frame_async(n) for n in order]]))
    finally:
        core.num_threads = threads
    assert all(same(one[n], many[n]) for n in range(lr.num_frames))


@pytest.mark.slow
def test_memory_is_stable_over_thousands_of_frames():
    """A leak of 1 KB a frame would add 1.5 MB over the second half's 1500 frames."""
    r = subprocess.run([sys.executable, "-m", "scripts.bench.memory", "--frames", "3000", "--warmup",
                        "500", "--json"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["late_growth_mb"] < 1.5, result["rss_mb"]


# ---------- integrations ----------

@pytest.mark.slow
@pytest.mark.train
@pytest.mark.vspipe
def test_vspipe_ffmpeg_of_a_trimmed_yuv420p10_script_equals_in_process_output(tiny_bundle, clip_path, tmp_path):
    script = ("import vapoursynth as vs\nfrom vs_stdo.core.video import hr_lr_pair, open_clip, select_frames\n"
              f"lr = hr_lr_pair(select_frames(open_clip({str(clip_path)!r}), '0:6'), 4)[1]\n"
              "lr = lr.resize.Bicubic(format=vs.YUV420P10, matrix_s='709')[1:5]\n"
              f"vs.core.stdo.Upscale(lr, {str(tiny_bundle)!r}, route='labels').set_output()\n")
    vpy = tmp_path / "trim.vpy"
    vpy.write_text(script)
    mkv = tmp_path / "trim.mkv"
    encode(vpy, mkv, ["-c:v", "ffv1"])
    got = open_clip(mkv)
    want = open_clip(vpy)
    assert (got.format.id, got.width, got.height, got.num_frames) == (vs.YUV420P10, 1280, 720, 4)
    assert all(same(a, b) for a, b in zip(got.frames(), want.frames()))
