"""Routing you can see: the STDORoute / STDOFrame / STDOChunkShare props on every output frame
of stdo.Upscale, and `stdo eval --frames-out`'s aligned comparison PNGs. Real cores, a real tiny bundle."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import vapoursynth as vs
from matplotlib.image import imread

from tests.support.bundles import gray_clip, micro, write_bundle
from vs_stdo.cli import main
from vs_stdo.core import bundle as bundle_io
from vs_stdo.core.grid import Grid
from vs_stdo.core.video import frame_array, hr_lr_pair, open_clip, select_frames
from vs_stdo.filter.routing import Route, Routing

core = vs.core
W, H = 64, 48
LABELS = np.array([[[0, 1, 1, 1]] * 4, [[1, 1, 1, 1]] * 4], np.uint8)   # frame 0: 4 of 16 patches to chunk 0


@pytest.fixture(scope="module")
def two_frames(tmp_path_factory):
    """k=2 x2 bundle on two flat LR frames (0.5, 0.3) with known labels."""
    return write_bundle(tmp_path_factory.mktemp("props") / "k2.stdo", [micro(2), micro(2, 0.1)], LABELS,
                        [torch.full((3, H, W), 0.5), torch.full((3, H, W), 0.3)])


def props(frame: vs.VideoFrame) -> tuple:
    p = frame.props
    return p["STDORoute"], p["STDOFrame"], list(p["STDOChunkShare"])


def test_decisions_name_route_frame_and_shares(two_frames):
    b = bundle_io.load(two_frames)
    bright = lambda patches: (patches.mean(dim=(1, 2, 3)) > 0.6).long()   # noqa: E731  bright patches -> chunk 1
    grid = Grid(W, H, 16, 12)
    known, unknown = torch.full((3, H, W), 0.3), torch.full((3, H, W), 0.9)
    decide = {r: Routing(b, grid, Route.parse(r, 2), bright).decide for r in ("auto", "labels", "blind", "chunk:1")}
    d = decide["labels"](0, known)
    assert (d.route, d.frame, d.props(2)["STDOChunkShare"]) == ("labels", 1, [0.0, 1.0])
    assert torch.equal(d.chunks, torch.ones(16).long())
    assert decide["auto"](0, torch.full((3, H, W), 0.5)).props(2) == {
        "STDORoute": "auto->labels", "STDOFrame": 0, "STDOChunkShare": [0.25, 0.75]}
    assert decide["auto"](0, unknown).props(2) == {"STDORoute": "auto->blind", "STDOFrame": -1,
                                                   "STDOChunkShare": [0.0, 1.0]}
    assert decide["blind"](0, known).props(2) == {"STDORoute": "blind", "STDOFrame": -1, "STDOChunkShare": [1.0, 0.0]}
    assert decide["chunk:1"](0, known).props(2) == {"STDORoute": "chunk", "STDOFrame": -1,
                                                    "STDOChunkShare": [0.0, 1.0]}
    assert b.router is None
    assert Routing(b, grid, Route.parse("auto", 2)).decide(0, unknown).props(2) == {
        "STDORoute": "auto->fallback", "STDOFrame": -1, "STDOChunkShare": [1.0, 0.0]}


@pytest.mark.slow
def test_every_output_frame_carries_the_props_through_the_colour_conversion(two_frames):
    clip = gray_clip([0.3, 0.5, 0.9, 0.5], W, H).resize.Bicubic(format=vs.YUV420P10, matrix_s="709")
    want = {"auto": [("auto->labels", 1, [0.0, 1.0]), ("auto->labels", 0, [0.25, 0.75]),
                     ("auto->fallback", -1, [1.0, 0.0]), ("auto->labels", 0, [0.25, 0.75])],
            "chunk:1": [("chunk", -1, [0.0, 1.0])] * 4}
    for route, rows in want.items():
        out = core.stdo.Upscale(clip, str(two_frames), route=route)
        assert out.format.id == vs.YUV420P10 and (out.width, out.height) == (2 * W, 2 * H)
        assert [props(f) for f in out.frames()] == rows, route
    labelled = core.stdo.Upscale(clip[:2], str(two_frames), route="labels")
    assert [props(f) for f in labelled.frames()] == [("labels", 1, [0.0, 1.0]), ("labels", 0, [0.25, 0.75])]
    assert labelled.get_frame(0).props["_Matrix"] == 1                 # the clip's own props are still there


@pytest.mark.slow
def test_blind_props_match_the_routers_decision(tiny_bundle, pair):
    lr = pair[1]
    b = bundle_io.load(tiny_bundle)
    router = Routing(b, Grid(lr.width, lr.height, b.patch_width, b.patch_height), Route.parse("blind", b.chunks))
    out = core.stdo.Upscale(lr, str(tiny_bundle), route="blind")
    for n, (f, src) in enumerate(zip(out.frames(), lr.frames())):
        want = router.decide(n, torch.from_numpy(frame_array(src)))
        route, frame, share = props(f)
        assert (route, frame) == ("blind", -1)
        assert share == pytest.approx(want.props(b.chunks)["STDOChunkShare"]) and sum(share) == pytest.approx(1)


@pytest.mark.slow
def test_eval_frames_out_writes_aligned_comparison_pngs(tiny_bundle, clip_path, tmp_path, capsys):
    folder = tmp_path / "site" / "frames"                               # created, parents too
    assert main(["eval", str(tiny_bundle), str(clip_path), "--frames", "0:2", "--frames-out", str(folder),
                 "--device", "cpu"]) == 0
    assert f"comparison frames: {folder}" in capsys.readouterr().out
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"00000{n}_{m}.png" for n in range(2) for m in ("bicubic", "source", "stdo")]
    hr = hr_lr_pair(select_frames(open_clip(clip_path), "0:2"), 4)[0]
    for n in range(2):
        images = {m: imread(folder / f"00000{n}_{m}.png") for m in ("bicubic", "stdo", "source")}
        assert all(i.shape == (hr.height, hr.width, 3) for i in images.values())
        source = np.clip(frame_array(hr.get_frame(n)), 0, 1).transpose(1, 2, 0)
        assert np.abs(images["source"] - source).max() <= 0.5 / 255 + 1e-6
        assert not np.array_equal(images["stdo"], images["bicubic"])
        assert np.abs(images["stdo"] - source).mean() < 0.05          # aligned: the same picture, not shifted
    (tmp_path / "file").write_text("x")
    assert main(["eval", str(tiny_bundle), str(clip_path), "--frames-out", str(tmp_path / "file")]) == 1
    assert "--frames-out" in capsys.readouterr().err
