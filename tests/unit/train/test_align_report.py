"""The alignment's result as people see it: which pairs are left out, the printed lines, the manifest entry and
the PNG."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vs_stdo.core.mapping import Mapping
from vs_stdo.train.align.report import leave_out, outliers


def test_outliers_by_median_and_mad():
    res = np.array([30.0, 31.2, 29.5, 30.4, 30.9, 18.0, 29.9, 30.3])
    assert outliers(res).tolist() == [5]
    assert outliers(np.array([30.0, 30.0, 30.0, 28.5])).tolist() == []  # under 3 dB is never dropped
    pairs = [(n, n + 2) for n in range(len(res))]
    kept, residuals, dropped = leave_out(pairs, res)
    assert kept == pairs[:5] + pairs[6:] and residuals == [float(r) for r in np.delete(res, 5)]
    assert dropped == [(5, 7, "residual 18.0 dB, median 30.1")]


@pytest.mark.slow
def test_report_dict_and_png(dvd, tmp_path):
    pair, result = dvd
    text = "\n".join(result.lines())
    assert "ratio 1.795" in text and "frame offset -2" in text and "88 pairs kept" in text
    d = json.loads(json.dumps(result.to_dict()))
    assert Mapping.from_dict(d["mapping"]) == result.mapping and d["frame_offset"] == -2
    assert len(d["pairs"]) == len(d["residuals_db"]) == 88
    png = result.save_png(tmp_path / "align.png", pair.hr, pair.lr)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
