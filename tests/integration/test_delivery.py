"""The delivery benchmark: the BD-rate integration on known curves, and one tiny real run end to end."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scripts.bench import delivery as bench

ROOT = Path(__file__).resolve().parents[2]

ANCHOR = [(1000.0, 30.0), (2000.0, 33.0), (4000.0, 36.0), (8000.0, 39.0)]


@pytest.mark.parametrize("ratio", [0.5, 0.8, 1.0, 1.25])
def test_bd_rate_of_a_curve_at_a_constant_rate_ratio_is_that_ratio(ratio):
    test = [(r * ratio, q) for r, q in ANCHOR]
    assert bench.bd_rate(ANCHOR, test) == pytest.approx((ratio - 1) * 100, abs=1e-9)


def test_bd_rate_integrates_only_over_the_overlap_of_a_curved_anchor():
    # anchor: log10(rate) = 3 + (q - 30) ** 2 / 30, a parabola the cubic fit reproduces exactly; the test
    # curve is the same shifted up 0.1 in log-rate, on 5 points over a narrower quality range.
    def log_rate(q: float, shift: float) -> float:
        return 3 + (q - 30) ** 2 / 30 + shift

    anchor = [(10 ** log_rate(q, 0), q) for q in np.linspace(28, 42, 6)]
    test = [(10 ** log_rate(q, 0.1), q) for q in np.linspace(31, 37, 5)]
    assert bench.bd_rate(anchor, test) == pytest.approx((10 ** 0.1 - 1) * 100, abs=1e-6)
    assert bench.bd_rate(test, anchor) == pytest.approx((10 ** -0.1 - 1) * 100, abs=1e-6)


def test_bd_rate_is_none_without_four_points_or_overlap():
    assert bench.bd_rate(ANCHOR, ANCHOR[:3]) is None
    assert bench.bd_rate(ANCHOR, [(r, q + 20) for r, q in ANCHOR]) is None


def test_bundle_budget_is_the_bundle_that_brings_the_bd_rate_to_the_target():
    stream = [(r * 0.5, q) for r, q in ANCHOR]  # -50 % with a free bundle
    budget = bench.bundle_budget(ANCHOR, stream, target=-20.0)
    assert 0 < budget < 1000
    assert bench.bd_rate(ANCHOR, [(r + budget, q) for r, q in stream]) == pytest.approx(-20.0, abs=1e-6)
    assert bench.bd_rate(ANCHOR, [(r + budget * 1.01, q) for r, q in stream]) > -20.0
    assert bench.bundle_budget(ANCHOR, [(r * 0.9, q) for r, q in ANCHOR], target=-20.0) is None  # -10 % alone
    assert bench.bundle_budget(ANCHOR, stream[:3]) is None  # no BD-rate without four points


def test_bd_rates_count_the_bundle_except_for_the_stream_alone():
    def point(method: str, stream: float, quality: float, bundle: int = 0) -> dict:
        return {"codec": "x264", "method": method, "stream_bytes": stream, "bundle_bytes": bundle,
                "bytes": stream + bundle, "psnr_rgb": quality, "psnr_y": quality, "vmaf": quality}

    points = ([point("hr", r, q) for r, q in ANCHOR] + [point("stdo", r * 0.5, q, 200) for r, q in ANCHOR]
              + [point("bicubic", r * 0.5, q - 3) for r, q in ANCHOR])
    bd = bench.bd_rates(points, "x264")
    assert bd["stdo_stream_only"]["psnr"] == pytest.approx(-50.0, abs=1e-9)
    assert bd["stdo"]["psnr"] > -50.0  # the 200-byte bundle counts
    assert bd["stdo_vs_bicubic"]["psnr"] < 0  # 3 dB better from the same streams
    assert bd["bundle_budget"] == {"bytes": round(bench.bundle_budget(ANCHOR, [(r * 0.5, q) for r, q in ANCHOR])),
                                   "bundle_bytes": 200}


@pytest.mark.slow
def test_bench_runs_end_to_end_on_a_tiny_input(bikes, tmp_path):
    """4 frames of a real 640x272 clip at x4, two CRFs per ladder, 6 training steps of k=2: every point has its
    bytes and quality, STDO's bytes include the bundle, and the outputs are written."""
    out = tmp_path / "bench"
    r = subprocess.run([sys.executable, "-m", "scripts.bench.delivery", str(bikes), "--scale", "4",
                        "--frames", "0:4", "--steps", "6", "--hr-crfs", "30,45", "--lr-crfs", "25,40",
                        "--test-ladder", "--train-args", "--chunks 2", "--out", str(out),
                        "--json", str(tmp_path / "r.json")],
                       capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((tmp_path / "r.json").read_text())
    points = result["points"]
    assert sorted((p["method"], p["crf"]) for p in points) == [
        ("bicubic", 25), ("bicubic", 40), ("hr", 30), ("hr", 45), ("stdo", 25), ("stdo", 40)]
    for p in points:
        assert 10 < p["psnr_rgb"] < 60 and 10 < p["psnr_y"] < 60 and 0 <= p["vmaf"] <= 100
        assert p["bytes"] == p["stream_bytes"] + p["bundle_bytes"]
        assert (p["bundle_bytes"] > 0) == (p["method"] == "stdo")
    by = {(p["method"], p["crf"]): p for p in points}
    assert by["hr", 30]["bytes"] > by["hr", 45]["bytes"] and by["hr", 30]["psnr_y"] > by["hr", 45]["psnr_y"]
    assert by["stdo", 25]["stream_bytes"] == by["bicubic", 25]["stream_bytes"]
    assert result["bd_rate"]["stdo"] == {"psnr": None, "psnr_y": None, "vmaf": None}  # 2 points: no BD-rate
    assert result["bd_rate"]["bundle_budget"] == {
        "bytes": None, "bundle_bytes": max(p["bundle_bytes"] for p in points if p["method"] == "stdo")}
    assert {f.name for f in out.iterdir()} >= {"points.csv", "results.md", "rd.png", "reference.mkv"}
