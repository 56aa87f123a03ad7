"""Checks before the long work: disk space for the checkpoint and the bundle."""
from __future__ import annotations

import pytest

from vs_stdo.train import preflight
from vs_stdo.train.settings import Settings


def test_disk_check_names_the_space_needed_and_the_fix(tmp_path):
    need = preflight.check_disk(Settings(), tmp_path / "x.stdo", 100, 50)
    assert 1 << 20 < need < 64 << 20
    with pytest.raises(ValueError, match="MB free; free some space or choose another -o folder"):
        preflight.check_disk(Settings(), tmp_path / "x.stdo", 10 ** 10, 50)
