"""Running a .vpy through the real `vspipe | ffmpeg` pipeline, as encoders do (for the tests and the benchmarks)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def vspipe_exe() -> str:
    """The vspipe of this environment (a console script of the vapoursynth wheel)."""
    here = Path(sys.executable).with_name("vspipe")
    found = str(here) if here.exists() else shutil.which("vspipe")
    if not found:
        raise RuntimeError("vspipe not found; run scripts/setup.sh")
    return found


def ffmpeg_exe() -> str:
    """ffmpeg from the imageio-ffmpeg wheel, or the system's."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if not found:
            raise RuntimeError("ffmpeg not found; run scripts/setup.sh") from None
        return found


def encode(script: Path, output: Path, ffmpeg_args: list[str], script_args: dict[str, str] | None = None,
           timeout: float | None = None) -> None:
    """`vspipe -c y4m SCRIPT - | ffmpeg -i - ARGS OUTPUT`; raises with both tools' stderr on failure."""
    vsargs = [a for k, v in (script_args or {}).items() for a in ("-a", f"{k}={v}")]
    pipe = subprocess.Popen([vspipe_exe(), "-c", "y4m", *vsargs, str(script), "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ff = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "yuv4mpegpipe", "-i", "-",
                         *ffmpeg_args, str(output)], stdin=pipe.stdout, capture_output=True, timeout=timeout)
    pipe.stdout.close()
    vs_err = pipe.stderr.read().decode(errors="replace")
    pipe.wait()
    if pipe.returncode or ff.returncode:
        raise RuntimeError(f"vspipe exited {pipe.returncode}, ffmpeg exited {ff.returncode}\n"
                           f"vspipe: {vs_err.strip()}\nffmpeg: {ff.stderr.decode(errors='replace').strip()}")
