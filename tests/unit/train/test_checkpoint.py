"""A run's identity in its checkpoint: what must match to resume, named when it does not."""
from __future__ import annotations

from dataclasses import replace

import pytest

from vs_stdo.train.checkpoint import Checkpoint, check
from vs_stdo.train.settings import Settings

INPUTS = {"source": "a.mp4", "frames_selected": "0:4", "lr": "bicubic downscale", "kernel": "bicubic"}


@pytest.mark.parametrize("change, named", [
    ({"time": 240.0}, None),
    ({"checkpoint_every": 7}, None),
    ({"device": "cpu"}, None),
    ({"weights": "int8"}, None),
    ({"chunks": 2}, "--chunks 4 -> 2"),
    ({"planes": "luma"}, "--planes rgb -> luma"),
    ({"learning_rate": 1e-3}, "--learning-rate 0.002 -> 0.001"),
    ({"patch_width": 32}, "--patch 24x27 -> 32x27"),
    ({"steps": 48}, "--steps 2000 -> 48"),
])
def test_a_checkpoint_names_the_settings_that_decide_the_result(change, named, tmp_path):
    """Only what decides the result must match to resume; a mismatch names the option, its old and new value."""
    path = tmp_path / "x.stdo.ckpt"
    Checkpoint(path, "run", settings=Settings(), inputs=INPUTS).save()
    if named is None:
        assert check(path, replace(Settings(), **change), INPUTS, resume=True) is not None
    else:
        with pytest.raises(ValueError, match="was written with other settings") as e:
            check(path, replace(Settings(), **change), INPUTS, resume=True)
        assert named in str(e.value) and "delete it" in str(e.value)
    with pytest.raises(ValueError, match="--frames 0:4 -> 0:8"):
        check(path, Settings(), INPUTS | {"frames_selected": "0:8"}, resume=True)


def test_a_time_runs_checkpoint_keeps_the_settings_it_started_with(tmp_path):
    """--time never rewrites the settings a checkpoint records: a resumed run may take another --time (it counts
    from the resumed process's start), not other --steps."""
    path = tmp_path / "x.stdo.ckpt"
    Checkpoint(path, "run", settings=replace(Settings(), time=240.0), inputs={}).save()
    assert check(path, replace(Settings(), time=60.0), {}, resume=True)["settings"]["steps"] == Settings.steps
    with pytest.raises(ValueError, match="--steps 2000 -> 48"):
        check(path, replace(Settings(), time=240.0, steps=48), {}, resume=True)


def test_a_checkpoint_written_before_the_learning_rate_was_renamed_is_refused(tmp_path):
    """Its settings call the learning rate "lr": a run of today's settings finds "--learning-rate" unrecorded
    and refuses to resume it, naming the fix."""
    path = tmp_path / "x.stdo.ckpt"
    ckpt = Checkpoint(path, "run", settings=Settings(), inputs={})
    ckpt.state["settings"]["lr"] = ckpt.state["settings"].pop("learning_rate")
    ckpt.save()
    with pytest.raises(ValueError, match="was written with other settings.*--learning-rate None -> 0.002"):
        check(path, Settings(), {}, resume=True)
