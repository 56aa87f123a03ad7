"""The `stdo` command as tests run it: in this process (main(), as the console script calls it) or as a
subprocess, and a clip script with known content to give it."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from vs_stdo.cli import main

STDO = [sys.executable, "-m", "vs_stdo"]
BLANK = """\
import vapoursynth as vs
c = vs.core.std.BlankClip(format=vs.{fmt}, width={w}, height={h}, length={n}, color={color})
c{props}.set_output()
"""


def run(argv: list[object], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """main(argv) as the console script runs it: (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse (usage errors, --version)
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def stdo(*argv: object, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m vs_stdo ARGV` in a new process."""
    return subprocess.run([*STDO, *map(str, argv)], capture_output=True, text=True, timeout=timeout)


def wait_for(proc: subprocess.Popen, ready) -> None:
    """Poll until ready() holds while the process is still running."""
    deadline = time.monotonic() + 300
    while not ready():
        assert proc.poll() is None, f"training ended before it could be interrupted: {proc.communicate()}"
        assert time.monotonic() < deadline, "training made no checkpoint"
        time.sleep(0.02)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1] if text.strip() else ""


def blank(path: Path, w: int = 64, h: int = 48, n: int = 4, fmt: str = "RGB24", props: str = "") -> Path:
    """A .vpy of `n` flat frames of one colour (`props`: calls appended to the clip, e.g. SetFrameProps)."""
    color = "[30, 90, 200]" if fmt.startswith("RGB") else "[90, 120, 140]"
    path.write_text(BLANK.format(fmt=fmt, w=w, h=h, n=n, color=color, props=props))
    return path
