"""Remaster pairs end to end through the real `stdo train`, the real filter and real clips: an LR framed
differently from its HR (crop, sub-pixel shift, ratios near 1.8, starting 2 frames later) trains, the
bundle records the mapping, Upscale lands on the HR grid; --align-only writes its PNG and no bundle;
unrelated content is refused."""
from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

from scripts import pairs as P
from tests.support.cli import STDO, wait_for
from vs_stdo.cli import main
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.mapping import Mapping
from vs_stdo.core.video import KERNELS
from vs_stdo.train.pairs import identity, saved_alignment

core = vs.core
TRAIN = 16  # HR frames trained on; the LR frames showing HR frames 16-23 are the test frames
SCRIPT = """from pathlib import Path
from scripts.pairs import hr_clip, make_pair
hr = hr_clip(Path({path!r}), 256, 144, 0, 24)
make_pair(hr, 140, 74, (4, 2, 3, 5), (0.37, -0.41), start=2).{side}.set_output()
"""
TELECINE = """
fields = lr.std.SeparateFields(tff=True).std.SelectEvery(cycle=8, offsets=[0, 1, 2, 3, 2, 5, 4, 7, 6, 7])
fields.std.DoubleWeave(tff=True)[::2].std.SetFrameProps(_FieldBased=0).set_output()
"""
OPTIONS = ["--patch", "24x24", "--batch", "8", "--chunks", "2", "--device", "cpu"]


def stdo(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def scripts(bikes, tmp_path_factory) -> tuple[Path, Path, P.Pair]:
    """.vpy scripts of a 256x144 HR (24 frames of bikes) and its 140x74 LR framed otherwise, and the pair."""
    folder = tmp_path_factory.mktemp("remaster")
    hr, lr = folder / "hr.vpy", folder / "lr.vpy"
    hr.write_text(SCRIPT.format(path=str(bikes), side="hr"))
    lr.write_text(SCRIPT.format(path=str(bikes), side="lr"))
    pair = P.make_pair(P.hr_clip(bikes, 256, 144, 0, 24), 140, 74, (4, 2, 3, 5), (0.37, -0.41), start=2)
    return hr, lr, pair


def rgb(clip: vs.VideoNode) -> vs.VideoNode:
    return core.resize.Bicubic(clip, format=vs.RGBS, matrix_in=int(clip.get_frame(0).props["_Matrix"]))


def psnr_after(up: vs.VideoNode, pair: P.Pair) -> float:
    """Mean RGB PSNR of `up` (HR-sized, frames of the LR) against the HR on the frames not trained on, inside
    the area both clips show less 8 px."""
    x0, y0, x1, y1 = pair.mapping.overlap()
    hr = rgb(pair.hr)
    out = []
    for l, h in enumerate(pair.shows):
        if h >= TRAIN:
            a, b = up.get_frame(l), hr.get_frame(h)
            d = [np.clip(np.asarray(a[p]), 0, 1) - np.asarray(b[p]) for p in range(3)]
            out.append(10 * np.log10(1 / np.mean(np.square(np.stack(d)[:, y0 + 8:y1 - 8, x0 + 8:x1 - 8]))))
    return float(np.mean(out))


def through(lr: vs.VideoNode, m: Mapping) -> vs.VideoNode:
    """Bicubic (Catmull-Rom) from the LR onto the HR grid given the mapping."""
    name, params = KERNELS["bicubic"]
    return getattr(core.resize, name)(lr, m.hr_width, m.hr_height, src_left=-m.offset_x / m.ratio_x,
                                      src_top=-m.offset_y / m.ratio_y, src_width=m.hr_width / m.ratio_x,
                                      src_height=m.hr_height / m.ratio_y, **params)


@pytest.fixture(scope="module")
def trained(scripts, tmp_path_factory) -> tuple[Path, str]:
    """A bundle trained on the pair's first TRAIN HR frames through the real `stdo train`, and what it printed."""
    hr, lr, _ = scripts
    out = tmp_path_factory.mktemp("trained") / "b.stdo"
    with pytest.MonkeyPatch.context() as mp:
        err = io.StringIO()
        mp.setattr(sys, "stderr", err)
        assert stdo("train", hr, "--lr", lr, "-o", out, "--frames", f"0:{TRAIN}", "--steps", "150", *OPTIONS) == 0
    return out, err.getvalue()


@pytest.mark.slow
@pytest.mark.train
def test_a_misaligned_pair_trains_and_plays_on_the_hr_grid(scripts, trained, tmp_path, capsys):
    hr, lr, pair = scripts
    out, err = trained
    assert "mapping: 140x74 -> 256x144" in err and "frame offset -2" in err
    assert err.index("mapping:") < err.index("plan:")  # the alignment is shown before the training
    b = bundle_io.load(out)
    assert b.scale == 2 and not b.mapping.whole() and b.mapping.distance(pair.mapping) < 0.1
    assert b.clip.alignment.frame_offset == -2
    assert stdo("info", out) == 0 and "the models' output resampled onto it" in capsys.readouterr().out

    lr_rgb = rgb(pair.lr)
    up = core.stdo.Upscale(lr_rgb, str(out), device="cpu")
    assert (up.width, up.height) == (256, 144)
    trained = psnr_after(up, pair)
    bicubic = psnr_after(through(lr_rgb, pair.mapping), pair)
    # the same models put on a grid half an HR pixel off: the output's place on the HR grid matters
    m = b.mapping
    b.mapping = Mapping(m.lr_width, m.lr_height, m.hr_width, m.hr_height, m.ratio_x, m.ratio_y, m.offset_x + 0.5,
                        m.offset_y + 0.5)
    moved = tmp_path / "moved.stdo"
    bundle_io.save(b, moved)
    off = psnr_after(core.stdo.Upscale(lr_rgb, str(moved), device="cpu"), pair)
    print(json.dumps({"stdo": trained, "bicubic_true_mapping": bicubic, "half_px_off": off}))
    assert trained > bicubic, (trained, bicubic)
    assert off < trained - 1.0, (off, trained)
    # other sizes get the same ratios; YUV in, YUV out at the HR size
    assert core.stdo.Upscale(pair.lr, str(out), device="cpu").get_frame(0).width == 256
    other = core.std.BlankClip(lr_rgb, width=70, height=37)
    assert (core.stdo.Upscale(other, str(out), device="cpu").width, b.mapping.for_size(70, 37).hr_width) == (128, 128)
    assert stdo("eval", out, hr) == 1 and "trained on a remaster pair" in capsys.readouterr().err
    # stdo eval takes the pair, aligns it as training does, compares on the HR grid through the mapping
    assert stdo("eval", out, hr, "--lr", lr, "--frames", ":", "--json", "--device", "cpu") == 0
    r = json.loads(capsys.readouterr().out)
    assert {split: v["frames"] for split, v in r["results"]["stdo"].items()} == {"train": TRAIN - 2, "unseen": 8}
    assert [f["source_frame"] for f in r["per_frame"] if f["split"] == "unseen"] == list(range(TRAIN, 24))
    unseen = {m: r["results"][m]["unseen"]["psnr_rgb"] for m in ("stdo", "bicubic")}
    assert unseen["stdo"] > unseen["bicubic"], unseen
    assert abs(unseen["bicubic"] - bicubic) < 1.0, (unseen, bicubic)  # the LR's own YUV, the found mapping


@pytest.mark.slow
@pytest.mark.train
def test_a_stopped_run_resumes_with_the_alignment_it_kept(scripts, tmp_path):
    """Ctrl-C once training has begun leaves the alignment beside the checkpoint; --resume reads it back instead
    of aligning again, and the finished run removes it."""
    hr, lr, _ = scripts
    out = tmp_path / "b.stdo"
    cmd = [*STDO, "train", str(hr), "--lr", str(lr), "-o", str(out), "--frames", f"0:{TRAIN}", "--steps", "60",
           *OPTIONS, "--checkpoint-every", "1"]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    wait_for(p, Path(f"{out}.ckpt").exists)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and saved_alignment(out).is_file(), err[-2000:]
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"alignment: read back from {saved_alignment(out)} (--resume)" in done.stderr
    assert "HR thumbnails" not in done.stderr and "mapping: 140x74 -> 256x144" in done.stderr
    assert not saved_alignment(out).exists() and bundle_io.load(out).clip.alignment.frame_offset == -2


def test_a_kept_alignment_is_told_from_one_of_other_files(tmp_path):
    a, b = tmp_path / "a.mkv", tmp_path / "b.mpg"
    a.write_bytes(b"1")
    b.write_bytes(b"2")
    key = identity(a, b, None, None)
    assert identity(a, b, None, None) == key and identity(a, b, (0, 0, 30, 30), None) != key
    b.write_bytes(b"22")
    assert identity(a, b, None, None) != key


@pytest.mark.slow
@pytest.mark.train
def test_a_luma_bundle_of_a_remaster_pair_trains_plays_and_evaluates(scripts, tmp_path, capsys):
    """--planes luma on a remaster pair: the Y plane upscaled onto the HR grid, the chroma put there through the
    mapping, and stdo eval compares it through the mapping."""
    hr, lr, pair = scripts
    out = tmp_path / "luma.stdo"
    assert stdo("train", hr, "--lr", lr, "-o", out, "--frames", f"0:{TRAIN}", "--steps", "60", "--planes", "luma",
                *OPTIONS) == 0
    b = bundle_io.load(out)
    assert b.planes == 1 and not b.mapping.whole() and b.mapping.distance(pair.mapping) < 0.1
    up = core.stdo.Upscale(pair.lr, str(out), device="cpu")
    assert (up.width, up.height, up.format.id) == (256, 144, pair.lr.format.id)
    capsys.readouterr()
    assert stdo("eval", out, hr, "--lr", lr, "--frames", ":", "--json", "--device", "cpu") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["results"]["stdo"]["unseen"]["psnr_y"] > r["results"]["bicubic"]["unseen"]["psnr_y"] - 0.1


@pytest.mark.slow
@pytest.mark.train
def test_a_telecined_lr_trains_without_its_combed_frames_and_says_to_ivtc(bikes, tmp_path, capsys):
    lr = tmp_path / "lr.vpy"
    lr.write_text(SCRIPT.format(path=str(bikes), side="lr").replace("make_pair(", "lr = make_pair(")
                  .replace("140, 74", "140, 76").replace(".lr.set_output()", ".lr") + TELECINE)  # fields: even height
    hr = tmp_path / "hr.vpy"
    hr.write_text(SCRIPT.format(path=str(bikes), side="hr"))
    out = tmp_path / "b.stdo"
    assert stdo("train", hr, "--lr", lr, "-o", out, "--steps", "20", *OPTIONS) == 0
    err = capsys.readouterr().err
    assert "look combed" in err and "telecined" in err and "vivtc.VFM + VDecimate" in err
    assert bundle_io.load(out).training.combed


@pytest.mark.slow
@pytest.mark.train
def test_align_only_writes_the_png_and_no_bundle(scripts, tmp_path, capsys):
    hr, lr, _ = scripts
    out = tmp_path / "b.stdo"
    assert stdo("train", hr, "--lr", lr, "-o", out, "--align-only") == 0
    err = capsys.readouterr().err
    png = Path(str(out) + ".align.png")
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in err
    assert "mapping: 140x74 -> 256x144" in err and not out.exists()
    out.write_bytes(b"not a bundle")  # it writes the picture only: an existing -o stays, and needs no --force
    assert stdo("train", hr, "--lr", lr, "-o", out, "--align-only") == 0 and out.read_bytes() == b"not a bundle"
    png.unlink()
    png.mkdir()  # a picture path that is a folder is refused before the alignment
    capsys.readouterr()
    assert stdo("train", hr, "--lr", lr, "-o", out, "--align-only") == 1
    err = capsys.readouterr().err
    assert "is a directory" in err and "aligning" not in err


@pytest.mark.slow
@pytest.mark.train
def test_unrelated_content_is_refused(scripts, clip_path, tmp_path, capsys):
    hr, _, _ = scripts
    other = tmp_path / "other.vpy"
    other.write_text(f"from pathlib import Path\nfrom scripts.pairs import hr_clip\n"
                     f"hr_clip(Path({str(clip_path)!r}), 140, 74, 0, 22).set_output()\n")
    out = tmp_path / "b.stdo"
    assert stdo("train", hr, "--lr", other, "-o", out, *OPTIONS) == 1
    assert "the LR does not look like the HR" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
@pytest.mark.train
def test_stdo_scaler_asks_the_lr_frames_own_area(scripts, trained):
    """STDOScaler at twice the LR's size gives the LR frame's own area (not the HR's framing): close to a
    plain bicubic x2 of the LR, far from the HR-framed output merely resized."""
    jetpack = pytest.importorskip("vs_stdo.filter.jetpack", reason="vs-jetpack is not installed")
    _, _, pair = scripts
    lr = rgb(pair.lr)
    out = jetpack.STDOScaler(str(trained[0]), device="cpu").scale(lr, 280, 148)
    name, params = KERNELS["bicubic"]
    plain = getattr(core.resize, name)(lr, 280, 148, **params)
    framed = getattr(core.resize, name)(core.stdo.Upscale(lr, str(trained[0]), device="cpu"), 280, 148, **params)

    def diff(a: vs.VideoNode, b: vs.VideoNode) -> float:
        fa, fb = a.get_frame(3), b.get_frame(3)
        return float(np.mean([np.abs(np.asarray(fa[p]) - np.asarray(fb[p]))[8:-8, 8:-8].mean() for p in range(3)]))

    assert (out.width, out.height) == (280, 148)
    assert diff(out, plain) < 0.5 * diff(framed, plain)


BOXED = """from pathlib import Path
from scripts.pairs import hr_clip, make_pair
hr = hr_clip(Path({path!r}), 256, 144, 0, 24)
make_pair(hr, 176, 144, (2, 1, 2, 1), (0.3, -0.2), start=2, lr_bars=(0, 0, 18, 18), bar_luma=19).{side}.set_output()
"""


@pytest.mark.slow
@pytest.mark.train
def test_a_letterboxed_dvd_trains_on_its_picture_and_plays_the_blu_rays_frame(bikes, tmp_path, capsys):
    """A 16:9 picture in a 4:3 DVD frame between lifted black bars (25 %): found and left out, the pictures
    aligned, the bundle records the bars, Upscale gives the Blu-ray's frame and beats bicubic; the pairs CSV
    lists every frame."""
    hr, lr = tmp_path / "hr.vpy", tmp_path / "lr.vpy"
    hr.write_text(BOXED.format(path=str(bikes), side="hr"))
    lr.write_text(BOXED.format(path=str(bikes), side="lr"))
    pair = P.make_pair(P.hr_clip(bikes, 256, 144, 0, 24), 176, 144, (2, 1, 2, 1), (0.3, -0.2), start=2,
                       lr_bars=(0, 0, 18, 18), bar_luma=19)
    out = tmp_path / "b.stdo"
    assert stdo("train", hr, "--lr", lr, "-o", out, "--frames", f"0:{TRAIN}", "--steps", "150", *OPTIONS) == 0
    err = capsys.readouterr().err
    assert "LR bars left/right/top/bottom 0/0/20/20" in err and "alignment figure" in err
    rows = Path(str(out) + ".pairs.csv").read_text().splitlines()
    assert rows[0] == "hr_frame,lr_frame,figure_db,off_px,status,why" and len(rows) == 1 + 24
    b = bundle_io.load(out)
    assert b.mapping.lr_bars == (0, 0, 20, 20) and b.mapping.distance(pair.mapping) < 0.1
    up = core.stdo.Upscale(rgb(pair.lr), str(out), device="cpu")
    assert (up.width, up.height) == (256, 144)
    assert psnr_after(up, pair) > psnr_after(through(rgb(pair.lr), pair.mapping), pair)


@pytest.mark.slow
@pytest.mark.train
def test_a_pan_and_scan_is_refused_before_training(bikes, tmp_path, capsys):
    hr, lr = tmp_path / "hr.vpy", tmp_path / "lr.vpy"
    for path, side in ((hr, "hr"), (lr, "lr")):
        path.write_text(f"from pathlib import Path\nfrom scripts.pairs import hr_clip, pan_and_scan\n"
                        f"pan_and_scan(hr_clip(Path({str(bikes)!r}), 256, 144, 0, 30), 176, 144, 0.75).{side}"
                        f".set_output()\n")
    out = tmp_path / "b.stdo"
    assert stdo("train", hr, "--lr", lr, "-o", out, *OPTIONS) == 1
    err = capsys.readouterr().err
    assert "pan and scan" in err and "plan:" not in err and not out.exists()


@pytest.mark.slow
@pytest.mark.train
@pytest.mark.parametrize("lr_size,scale,says", [
    ((96, 54), "2", "--scale 2 is below the LR-to-HR ratio 2.667 x 2.66"),
    ((32, 18), None, "the LR picture (32x18) is 8.00 x 8.00 times smaller than the HR's (256x144): beyond x4"),
])
def test_align_only_refuses_what_training_refuses(bikes, tmp_path, capsys, lr_size, scale, says):
    """--align-only stops where training would: a --scale below the ratio, a ratio no model scale reaches."""
    hr, lr = tmp_path / "hr.vpy", tmp_path / "lr.vpy"
    for path, side in ((hr, "hr"), (lr, "lr")):
        path.write_text(f"from pathlib import Path\nfrom scripts.pairs import hr_clip, make_pair\n"
                        f"make_pair(hr_clip(Path({str(bikes)!r}), 256, 144, 0, 20), {lr_size[0]}, {lr_size[1]}, "
                        f"start=2).{side}.set_output()\n")
    argv = ["train", hr, "--lr", lr, "-o", tmp_path / "b.stdo", "--align-only"] + (["--scale", scale] if scale else [])
    assert stdo(*argv) == 1
    assert says in capsys.readouterr().err
