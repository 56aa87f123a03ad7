"""One colour per bundle: the trainer reads HR and LR alike, the bundle records it, the
filter uses it for untagged clips, and `stdo eval` measures the output in the clip's own format."""
from __future__ import annotations

import json
import logging
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from scripts import clips
from scripts.encode import ffmpeg_exe
from tests.support.bundles import micro, write_bundle
from vs_stdo.cli import main
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core import colour
from vs_stdo.core.bundle import BundleError
from vs_stdo.core.video import frame_array, hr_lr_pair

core = vs.core
UNTAGGED = {"_Matrix": colour.MATRIX_UNSPECIFIED}


def flat(width: int, height: int, **props) -> vs.VideoNode:
    """A flat, saturated YUV420P8 frame: any matrix mix-up moves its RGB a lot."""
    return core.std.BlankClip(format=vs.YUV420P8, width=width, height=height, length=1, color=[100, 160, 90],
                              keep=True).std.SetFrameProps(**(UNTAGGED | props))


# ---------- the trainer: one colour for HR and LR ----------

def test_trainer_reads_an_untagged_hr_and_its_lr_with_the_same_matrix():
    hr, lr = flat(1280, 720), flat(640, 360)          # 720p: BT.709 by default, 360p alone would be BT.601
    hr_rgb, lr_rgb = (frame_array(c.get_frame(0)).mean(axis=(1, 2)) for c in hr_lr_pair(hr, 2, lr))
    assert np.abs(hr_rgb - lr_rgb).max() < 1e-4
    alone = frame_array(colour.clip_to_rgbs(lr).get_frame(0)).mean(axis=(1, 2))   # what the LR alone reads as
    assert np.abs(alone - hr_rgb).max() > 0.02
    assert colour.pair_colour(hr, lr) == colour.Colour(colour.MATRIX_709, colour.RANGE_LIMITED, 0)


def test_a_tagged_lr_that_contradicts_the_hr_is_a_clear_error():
    with pytest.raises(ValueError, match=r"LR clip says _Matrix=6 .* HR is _Matrix=1 \(BT709\) \(untagged, so read "
                                         r"by the default for 1280x720\).*SetFrameProps\(lr, _Matrix=1\)"):
        hr_lr_pair(flat(1280, 720), 2, flat(640, 360, _Matrix=6))
    with pytest.raises(ValueError, match=r"_Range=vs.RANGE_FULL but the HR is _Range=vs.RANGE_LIMITED \(tagged\)"):
        colour.pair_colour(flat(1280, 720, _Range=vs.RANGE_LIMITED), flat(640, 360, _Range=vs.RANGE_FULL))
    # agreeing tags are fine, and an RGB HR (no matrix of its own) takes the LR's
    assert colour.pair_colour(flat(1280, 720, _Matrix=6), flat(640, 360, _Matrix=6)).matrix == 6
    rgb_hr = flat(1280, 720).resize.Point(format=vs.RGB24, matrix_in=1)
    assert colour.pair_colour(rgb_hr, flat(640, 360, _Matrix=6)).matrix == 6
    assert colour.pair_colour(rgb_hr, flat(640, 360)).matrix == 1


# ---------- the bundle records it ----------

def test_bundle_records_the_colour_and_old_bundles_still_load(tmp_path):
    path = write_bundle(tmp_path / "b.stdo", [micro(2)], np.zeros((1, 4, 4), np.uint8), [torch.zeros(3, 48, 64)])
    assert bundle_io.load(path).colour is None                          # a bundle made before colour was recorded
    b = bundle_io.load(path)
    b.colour = colour.Colour(colour.MATRIX_709, colour.RANGE_LIMITED, 2)
    bundle_io.save(b, path)
    assert bundle_io.read_manifest(path.read_bytes())["colour"] == {"matrix": 1, "range": "limited", "chromaloc": 2}
    assert bundle_io.load(path).colour == b.colour
    for bad, says in (({"matrix": 2, "range": "limited", "chromaloc": 0}, "colour.matrix: invalid value 2"),
                      ({"matrix": 1, "range": 1, "chromaloc": 0}, "colour.range: expected `str`, got `int`"),
                      ("709", "colour: expected `object | null`, got `str`")):
        data = st_save(st_load(path.read_bytes()), metadata={"stdo": json.dumps(
            bundle_io.read_manifest(path.read_bytes()) | {"colour": bad})})
        with pytest.raises(BundleError, match=re.escape(f"manifest field {says}")):
            bundle_io.from_bytes(data)


# ---------- the filter uses it ----------

@pytest.fixture
def red(tmp_path) -> tuple[Path, Path]:
    """x2 models adding 0.2 to R: (a bundle trained as BT.709, one without recorded colour)."""
    old = write_bundle(tmp_path / "old.stdo", [micro(2, 0.2, channel=0)], np.zeros((1, 4, 4), np.uint8),
                       [torch.zeros(3, 48, 64)])
    b = bundle_io.load(old)
    b.colour = colour.Colour(colour.MATRIX_709, colour.RANGE_LIMITED, 0)
    bundle_io.save(b, tmp_path / "709.stdo")
    return tmp_path / "709.stdo", old


def grey(**props) -> vs.VideoNode:
    return core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=1, color=[126, 128, 128],
                              keep=True).std.SetFrameProps(**(UNTAGGED | props))


def test_filter_reads_untagged_clips_with_the_bundles_colour(red):
    bt709, old = red
    got = core.stdo.Upscale(grey(), str(bt709)).get_frame(0)       # 64x48 alone would be BT.601
    assert got.props["_Matrix"] == 1 and [int(np.asarray(got[p]).mean() + 0.5) for p in range(3)] == [135, 123, 150]
    got = core.stdo.Upscale(grey(), str(old)).get_frame(0)         # no recorded colour: by size, as before
    assert got.props["_Matrix"] == 6 and [int(np.asarray(got[p]).mean() + 0.5) for p in range(3)] == [139, 120, 150]


def test_tags_that_contradict_the_bundle_win_with_one_warning(red, caplog):
    bt709, _ = red
    caplog.set_level(logging.WARNING, logger="vs_stdo")
    outs = [core.stdo.Upscale(grey(_Matrix=6), str(bt709)) for _ in range(2)]
    assert all(o.get_frame(0).props["_Matrix"] == 6 for o in outs)
    warnings = [r.getMessage() for r in caplog.records if r.name == "vs_stdo"]
    assert len(warnings) == 1
    assert "the clip says _Matrix=6 (ST170_M) but 709.stdo was trained on _Matrix=1 (BT709)" in warnings[0]
    core.stdo.Upscale(grey(_Matrix=1), str(bt709))                # agreeing tags: no warning
    assert len([r for r in caplog.records if r.name == "vs_stdo"]) == 1


# ---------- the reproduction: untagged HD HR with its own untagged LR encode ----------

@pytest.fixture(scope="module")
def untagged_hd(tmp_path_factory) -> Path:
    """4 frames of bigbuckbunny (1280x720) as FFV1 and x264 encodes of its x2 and x4 downscales, all untagged."""
    d = tmp_path_factory.mktemp("untagged")
    ff = [ffmpeg_exe(), "-v", "error", "-y"]
    subprocess.run([*ff, "-i", str(clips.fetch("bigbuckbunny.mp4")), "-frames:v", "4", "-an", "-c:v", "ffv1",
                    "-pix_fmt", "yuv420p", str(d / "src.mkv")], check=True)
    for scale in (2, 4):
        subprocess.run([*ff, "-i", str(d / "src.mkv"), "-vf", f"scale={1280 // scale}:{720 // scale}", "-c:v",
                        "libx264", "-crf", "23", "-pix_fmt", "yuv420p", str(d / f"lr{scale}.mp4")], check=True)
    return d


def y_psnr(out: vs.VideoNode, ref: vs.VideoNode) -> float:
    """Mean over frames of the Y-plane PSNR (8 bit, peak 255)."""
    mse = [np.mean((np.asarray(a[0], np.float64) - np.asarray(b[0], np.float64)) ** 2)
           for a, b in zip(out.frames(), ref.frames())]
    return float(np.mean([10 * np.log10(255 ** 2 / m) for m in mse]))


@pytest.mark.train
@pytest.mark.slow
@pytest.mark.parametrize("scale", [2, 4])
def test_bundle_trained_with_an_untagged_lr_encode_beats_bicubic_on_y(untagged_hd, scale, capsys):
    src, lr, out = untagged_hd / "src.mkv", untagged_hd / f"lr{scale}.mp4", untagged_hd / f"x{scale}.stdo"
    assert main(["train", str(src), "--lr", str(lr), "-o", str(out), "--scale", str(scale), "--chunks", "1",
                 "--steps", "30", "--batch", "8", "--device", "cpu"]) == 0
    hr, lr_clip = core.bs.VideoSource(str(src)), core.bs.VideoSource(str(lr))
    stdo = y_psnr(core.stdo.Upscale(lr_clip, str(out)), hr)
    bicubic = y_psnr(lr_clip.resize.Bicubic(1280, 720, filter_param_a=0, filter_param_b=0.5), hr)
    assert stdo > bicubic, (stdo, bicubic)          # when HR and LR were read differently: x2 -1.6 dB, x4 -0.1 dB
    # `stdo eval` measures the same thing: the filter's output in the clip's format against the HR
    capsys.readouterr()
    assert main(["eval", str(out), str(src), "--lr", str(lr), "--json", "--device", "cpu"]) == 0
    r = json.loads(capsys.readouterr().out)["results"]
    assert r["stdo"]["train"]["psnr_y_plane"] == pytest.approx(stdo, abs=0.01)
    assert r["bicubic"]["train"]["psnr_y_plane"] == pytest.approx(bicubic, abs=0.01)
    assert main(["info", str(out)]) == 0
    assert "colour of untagged YUV clips: matrix 1 (BT709), limited range, chroma left" in capsys.readouterr().out


@pytest.mark.train
@pytest.mark.slow
def test_train_refuses_a_tagged_lr_that_contradicts_the_hr(untagged_hd, tmp_path, capsys):
    vpy = tmp_path / "lr.vpy"
    vpy.write_text(f"import vapoursynth as vs\nvs.core.bs.VideoSource({str(untagged_hd / 'lr2.mp4')!r})"
                   ".std.SetFrameProps(_Matrix=6).set_output()\n")
    capsys.readouterr()
    assert main(["train", str(untagged_hd / "src.mkv"), "--lr", str(vpy), "-o", str(tmp_path / "b.stdo"),
                 "--scale", "2", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LR clip says _Matrix=6" in err and not (tmp_path / "b.stdo").exists()
