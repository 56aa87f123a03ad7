"""`stdo eval`: JSON, the table, the PNG report, --lr and its errors, on a real tiny bundle and hand-built ones."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs
from matplotlib.image import imread
from msgspec.structs import replace

from scripts.encode import ffmpeg_exe
from tests.support.bundles import offset_model, write_bundle
from tests.support.cli import blank, run
from vs_stdo.cli import main
from vs_stdo.core.metrics import psnr
from vs_stdo.core.models import WDSR, preset
from vs_stdo.core.video import frame_array, open_pair

@pytest.fixture(scope="module")
def bundle(bikes, tmp_path_factory) -> Path:
    """STDO (k=2) on frames 0:6 of bikes.mp4 at x4, frames 2 and 5 held out."""
    out = tmp_path_factory.mktemp("eval") / "bikes.stdo"
    assert main(["train", str(bikes), "-o", str(out), "--frames", "0:6", "--holdout", "3", "--chunks", "2",
                 "--steps", "30", "--scale", "4", "--patch", "32x34", "--batch", "8", "--device", "cpu"]) == 0
    return out


def run_eval(capsys, *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["eval", *(str(a) for a in args), "--device", "cpu"])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.slow
@pytest.mark.train
def test_json_has_every_method_and_split_measured_on_the_filter_output(bundle, bikes, capsys):
    rc, out, err = run_eval(capsys, bundle, bikes, "--frames", "0:8", "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert [f["split"] for f in r["per_frame"]] == ["train", "train", "heldout", "train", "train", "heldout",
                                                    "unseen", "unseen"]
    assert [f["bundle_frame"] for f in r["per_frame"]] == [0, 1, 2, 3, 4, 5, None, None]
    for method in ("stdo", "bicubic", "lanczos"):
        assert {s: v["frames"] for s, v in r["results"][method].items()} == {"train": 4, "heldout": 2, "unseen": 2}
        assert all(20 < v["psnr_rgb"] < 60 and 20 < v["psnr_y"] < 60 for v in r["results"][method].values())
    assert r["results"]["stdo"]["train"]["psnr_rgb"] > r["results"]["bicubic"]["train"]["psnr_rgb"]
    assert r["bundle_bytes"] == bundle.stat().st_size and r["chunks"] == 2 and r["scale"] == 4
    # the numbers are the real filter's whole frames against the HR
    pair = open_pair(bikes, None, "0:8", 4)
    hr, lr = pair.hr, pair.lr
    want = psnr(torch.from_numpy(frame_array(vs.core.stdo.Upscale(lr, str(bundle)).get_frame(6))).clamp(0, 1),
                torch.from_numpy(frame_array(hr.get_frame(6))).clamp(0, 1))
    assert r["per_frame"][6]["stdo"]["psnr_rgb"] == pytest.approx(want, abs=1e-6)


@pytest.mark.slow
@pytest.mark.train
def test_table_and_png_report(bundle, bikes, tmp_path, capsys):
    png = tmp_path / "report.png"
    rc, out, err = run_eval(capsys, bundle, bikes, "--report", png)
    assert rc == 0, err
    lines = out.splitlines()
    assert "on bikes.mp4 frames 0:6, LR bicubic downscale" in out       # defaults: the bundle's range and kernel
    assert lines[2].split() == ["split", "frames", "stdo", "bicubic", "lanczos", "stdo", "-", "bicubic"]
    assert [ln.split()[:2] for ln in lines[3:5]] == [["train", "4"], ["held-out", "2"]]
    assert lines[-1] == f"report: {png}"
    image = imread(png)
    assert image.shape[:2] == (840, 1440) and image[..., :3].std() > 0.05


@pytest.mark.slow
@pytest.mark.train
def test_eval_on_a_real_lr_encode(bundle, bikes, tmp_path, capsys):
    lr = tmp_path / "lr.mkv"
    # the whole clip: an LR of other length than the input is refused (which frames would pair is unknown)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(bikes), "-vf", "scale=160:68",
                    "-c:v", "libx264", "-crf", "20", "-pix_fmt", "yuv420p", str(lr)], check=True)
    rc, out, err = run_eval(capsys, bundle, bikes, "--lr", lr, "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["lr"] == "lr.mkv" and [f["split"] for f in r["per_frame"]].count("heldout") == 2


@pytest.mark.slow
@pytest.mark.train
def test_eval_errors_are_clear(bundle, bikes, tmp_path, capsys):
    rc, _, err = run_eval(capsys, bundle, bikes, "--frames", "0:8", "--report", tmp_path / "r.png",
                          "--report-frame", "7")
    assert rc == 1 and "frame 7 is not a frame of the bundle" in err
    rc, _, err = run_eval(capsys, bundle, bikes, "--report-frame", "9")
    assert rc == 1 and "--report-frame 9 is outside the 6 evaluated frames" in err
    rc, _, err = run_eval(capsys, tmp_path / "none.stdo", bikes)
    assert rc == 1 and "does not exist" in err
    assert not (tmp_path / "r.png").exists()


def test_eval_feeds_a_luma_bundle_the_luma_of_the_clip_it_builds(tmp_path, capsys):
    """With no --lr, eval downscales the RGB HR itself; a luma bundle gets that LR as YUV and is measured."""
    model = WDSR(replace(preset("tiny", 2), planes=1))
    path = write_bundle(tmp_path / "luma.stdo", [model], np.zeros((1, 2, 2)), [torch.full((3, 24, 32), 0.5)])
    code, out, err = run(["eval", path, blank(tmp_path / "c.vpy", 64, 48, n=2), "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)["results"]
    assert result["stdo"]["unseen"]["psnr_rgb"] > 20 and result["stdo"]["unseen"]["frames"] == 2


def test_eval_refuses_a_report_that_is_the_frames_out_folder_before_the_work(tmp_path, capsys):
    small = write_bundle(tmp_path / "small.stdo", [offset_model(2, 0.0)], np.zeros((1, 2, 2)),
                         [torch.full((3, 24, 32), 0.5)])
    folder = tmp_path / "D"
    code, _, err = run(["eval", small, blank(tmp_path / "c.vpy", 64, 48, n=2), "--frames-out", folder,
                        "--report", folder], capsys)
    assert code == 1 and f"--report {folder} is the --frames-out folder" in err and "evaluating" not in err
    assert ".tmp" not in err
