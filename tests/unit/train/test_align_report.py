"""The alignment's result as people see it: which pairs are left out, the printed lines (the frame offset per
run, the models' scale, the alignment figure), what stops training, the CSV of every frame, the manifest entry
and the PNG."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from vs_stdo.core.mapping import Mapping
from vs_stdo.train.align import Alignment
from vs_stdo.train.align.report import leave_out, outliers


def test_outliers_by_median_and_mad():
    res = np.array([30.0, 31.2, 29.5, 30.4, 30.9, 18.0, 29.9, 30.3])
    assert outliers(res).tolist() == [5]
    assert outliers(np.array([30.0, 30.0, 30.0, 28.5])).tolist() == []  # under 3 dB is never dropped
    pairs = [(n, n + 2) for n in range(len(res))]
    kept, residuals, dropped = leave_out(pairs, res)
    assert kept == pairs[:5] + pairs[6:] and residuals == [float(r) for r in np.delete(res, 5)]
    assert dropped == [(5, 7, "content differs: thumbnail residual 18.0 dB, median 30.1")]


@pytest.mark.slow
def test_report_json_and_png(dvd, tmp_path):
    pair, result = dvd
    text = "\n".join(result.lines(2))
    assert "ratio 1.795" in text and "frame offset -2" in text and "88 pairs kept" in text
    assert Alignment.from_json(result.to_json()) == result
    png = result.save_png(tmp_path / "align.png", pair.hr, pair.lr)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def alignment(**kw) -> Alignment:
    """An alignment of a 40-frame HR and a 48-frame LR with an 8-frame insert in the LR at HR frame 12."""
    pairs = [(h, h) for h in range(12)] + [(h, h + 8) for h in range(12, 38)]
    base = dict(mapping=Mapping(88, 60, 160, 120, 1.75, 1.8, 4.37, 3.59), pairs=pairs, residuals=[30.0] * len(pairs),
                dropped=[(38, 46, "content differs: thumbnail residual 9.0 dB, median 30.0")], hr_frames=40,
                lr_frames=48, precision=0.03, refined_on=pairs[::8],
                figures={h: 40.0 + 0.1 * h for h, _ in pairs}, shifts={h: (0.03, -0.02) for h, _ in pairs},
                unpaired_hr={39: "the LR ends sooner"},
                unpaired_lr={**{l: "the HR lacks it" for l in range(12, 20)}, 47: "the HR ends sooner"})
    return Alignment(**{**base, **kw})


def test_the_frame_offset_is_told_where_it_changes():
    a = alignment()
    assert a.offsets() == [(0, 11, 0), (12, 38, 8)]
    text = "\n".join(a.lines(2))
    assert "frame offset (LR frame = HR frame + offset) HR 0-11: +0, HR 12-38: +8" in text
    assert "38 pairs kept of 40 HR / 48 LR frames, 1 left out (1 content differs); " in text
    assert "unpaired 1 HR, 9 LR" in text and "models at x2, then resampled onto the HR grid" in text
    assert "alignment figure (PSNR of the HR on the LR grid through the mapping, luma, levels fitted): median " \
           "41.85 dB, worst kept 40.00 dB (HR 0)" in text
    steady = alignment(pairs=[(h, h + 2) for h in range(38)], dropped=[])
    assert "frame offset +2 (LR frame = HR frame +2)" in "\n".join(steady.lines(2))


def test_a_held_twin_one_frame_off_does_not_split_the_offset_in_the_report():
    a = alignment(pairs=[(h, h + 2) for h in range(20)] + [(20, 21)] + [(h, h + 2) for h in range(21, 38)], dropped=[])
    assert a.offsets() == [(0, 19, 2), (20, 20, 1), (21, 37, 2)]  # the CSV and manifest keep every run
    assert "frame offset +2 (LR frame = HR frame +2)" in "\n".join(a.lines(2))


def test_the_scale_line_is_the_scale_given():
    whole = Mapping.plain(80, 60, 160, 120)
    assert alignment(mapping=whole).lines(2)[1] == "models at x2, no resampling (whole ratio)"
    assert alignment(mapping=whole).lines(3)[1] == "models at x3, then resampled onto the HR grid"
    assert alignment().lines(None)[1] == "models: no scale the models have fits the ratio"


def test_every_frame_is_in_the_csv_with_why(tmp_path):
    a = alignment()
    rows = list(csv.reader(a.save_csv(tmp_path / "b.stdo.pairs.csv").open()))
    assert rows[0] == ["hr_frame", "lr_frame", "figure_db", "off_px", "status", "why"]
    assert len(rows) - 1 == 38 + 1 + 1 + 9  # kept, left out, unpaired HR, unpaired LR
    assert rows[1] == ["0", "0", "40.00", "0.04", "kept", ""]
    assert rows[13:15] == [["", "12", "", "", "unpaired", "the HR lacks it"],
                           ["", "13", "", "", "unpaired", "the HR lacks it"]]  # the insert, in the clips' order
    assert rows[-3:] == [["38", "46", "", "", "left out", "content differs: thumbnail residual 9.0 dB, median 30.0"],
                         ["", "47", "", "", "unpaired", "the HR ends sooner"],
                         ["39", "", "", "", "unpaired", "the LR ends sooner"]]


@pytest.mark.parametrize("kw,frames,says", [
    ({}, range(40), None),
    ({"framed_otherwise": [(20, 37, 7.9)]}, range(40), "the framing changes: HR frames 20-37 (7.9 HR px off)"),
    ({"framed_otherwise": [(20, 37, 7.9)]}, range(0, 15), None),  # --frames outside the scene framed otherwise
    ({"precision": 0.8}, range(40), "the mapping is uncertain to +-0.80 HR px"),
    ({"precision": 0.3}, range(40), None),  # said loudly (below), not refused
])
def test_what_stops_training(kw, frames, says):
    problem = alignment(**kw).problems(frames)
    assert (problem is None) if says is None else (says in problem and "split it into parts framed alike" in problem)


def test_a_poor_precision_is_said_loudly():
    assert any(line.startswith("WARNING: the mapping is uncertain to +-0.30") for line in alignment(precision=0.3).lines(2))
    assert not any(line.startswith("WARNING") for line in alignment().lines(2))


def test_the_json_kept_for_resume_round_trips_and_refuses_other_data():
    a = alignment(cuts=[0, 20], notes=["snapped"], framed_otherwise=[(30, 37, 2.5)])
    assert Alignment.from_json(a.to_json()) == a
    for bad in (b"{}", b"[1, 2]", b"not json", a.to_json().replace(b'"pairs":[[0,0]', b'"pairs":[["a",0]')):
        with pytest.raises(ValueError, match="not an alignment"):
            Alignment.from_json(bad)
