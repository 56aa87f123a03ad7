"""The settings of a run: parsing and refusing values before any data is read."""
from __future__ import annotations

import math
import re
from dataclasses import fields

import msgspec
import pytest

from vs_stdo.core.models import Arch
from vs_stdo.core.training_record import TrainingRecord
from vs_stdo.core.usage import UsageError
from vs_stdo.train.settings import AUTO, Settings, default_of, flag_of, parse_chunks, parse_duration


def test_chunks_auto_is_parsed_and_checked():
    assert parse_chunks("auto") == AUTO and parse_chunks("3") == 3
    with pytest.raises(ValueError, match="1 or more"):
        parse_chunks("0")
    assert Settings(chunks=AUTO).k() == 4
    with pytest.raises(ValueError, match="--mode chunks"):
        Settings(chunks=AUTO, mode="single").check()


@pytest.mark.parametrize("name, value", [("loss", "l2"), ("sampling", "biased"), ("planes", "yuv"), ("split", "size"),
                                         ("labels", "worst")])
def test_settings_refuse_an_unknown_choice(name, value):
    with pytest.raises(ValueError, match=f"unknown --{name} '{value}'"):
        Settings(mode="joint", **{name: value}).check()


def test_auto_loss_is_mse_in_joint_mode_only():
    assert [Settings(mode=m).train_loss() for m in ("joint", "single", "chunks")] == ["mse", "l1", "l1"]
    assert Settings(mode="chunks", loss="mse").train_loss() == "mse"


def test_settings_never_change_themselves(capsys):
    """A run derives what it needs as new settings: the batch capped at the training patches, said once."""
    import dataclasses

    s = Settings(batch=64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.batch = 8
    capped = s.resolve(20)
    assert (s.batch, capped.batch) == (64, 20) and "using --batch 20" in capsys.readouterr().err
    assert s.resolve(64) is s and not capsys.readouterr().err


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("10m", 600), ("1.5h", 5400), ("1h30m", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10 minutes", "m", "5x"])
def test_bad_durations_name_the_syntax(text):
    with pytest.raises(ValueError, match="90s, 10m"):
        parse_duration(text)


@pytest.mark.parametrize("name, value, says", [
    ("steps", 0, "--steps must be at least 1"), ("batch", 0, "--batch must be at least 1"),
    ("patch_width", 0, "--patch must be at least 1"), ("frame_memory", 0, "--frame-memory must be positive"),
    ("learning_rate", 0.0, "--learning-rate must be positive"), ("pretrain", 1.0, "--pretrain must be in [0, 1)"),
    ("holdout", 1, "--holdout 1 would hold out every frame"), ("chunks", 300, "--chunks must be between 1 and 255"),
    ("device", "gpu", "unknown device 'gpu'"), ("preset", "huge", "unknown preset 'huge'"),
    ("min_chunk", 2.0, "--min-chunk is auto or a share"),
] + [(name, value, f"{flag_of(name)} must be a number from") for name, value in [
    ("time", math.nan), ("time", math.inf), ("time", -1.0), ("frame_memory", math.nan), ("focus", math.nan),
    ("focus", 1e9), ("learning_rate", math.nan), ("learning_rate", math.inf), ("pretrain", math.nan),
    ("epochs", math.inf), ("context", -1), ("train_frames", -2)]])
def test_settings_refuse_what_cannot_work_as_a_usage_error_naming_the_option(name, value, says):
    """Every numeric option is range-checked (NaN and infinities included) before any file is read."""
    with pytest.raises(UsageError, match=re.escape(says)):
        Settings(**{name: value}).check()


def test_the_training_record_declares_every_setting_with_its_default():
    """A bundle records the settings as TrainingRecord (core) types them: the same fields, the same defaults."""
    record = {f.name: f.default for f in msgspec.structs.fields(TrainingRecord)}
    assert {f.name: default_of(f) for f in fields(Settings)}.items() <= record.items()


def test_training_context_is_capped_at_the_largest_models_receptive_radius():
    assert Settings(context=4).train_context() == 4
    assert Settings(context=50).train_context() == 10                       # tiny's radius
    assert Settings(context=50, preset="nano", mode="single").train_context() == 4
    assert Settings(context=50, preset="nano", easy_preset="nano").train_context() == 4
    assert Settings(context=50, preset="small", easy_preset="nano").train_context() == 18


def test_a_preset_may_be_written_as_blocks_channels_expansion():
    s = Settings(preset="6x16x2", mode="single", scale=2)
    s.check()
    assert s.arch() == Arch(scale=2, blocks=6, channels=16, expansion=2)
    for bad in ("6x16", "0x16x2", "tinyx2", "6x16x2x1"):
        with pytest.raises(ValueError, match="BLOCKSxCHANNELSxEXPANSION"):
            Settings(preset=bad).check()
