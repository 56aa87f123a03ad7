#!/usr/bin/env bash
# One-command set-up: a virtual environment at .venv/ with vs-stdo, its test extras, the native
# VapourSynth plugin and ffmpeg (the imageio-ffmpeg wheel's binary). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {  # a Python >= 3.12 (VapourSynth's wheels need it)
  local c
  for c in python3.12 python3.13 python3.14 python3 \
           "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9]; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  py=$(find_python) || {
    if command -v apt-get >/dev/null; then
      echo "setup: installing python3.12 from the system packages" >&2
      apt-get update -qq && apt-get install -y -qq python3.12 python3.12-venv >/dev/null
      py=$(find_python)
    else
      echo "setup: Python 3.12 or newer is needed (VapourSynth's wheels need it); install it and rerun" >&2
      exit 1
    fi
  }
  echo "setup: creating .venv with $py" >&2
  "$py" -m venv .venv
fi

pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip setuptools
# vapoursynth is also a build requirement (the plugin compiles against its headers).
"${pip[@]}" install -e '.[test]'
# vspipe (VSScript) must be told which Python library to embed; this writes ~/.config/vapoursynth.
.venv/bin/vapoursynth config >/dev/null
.venv/bin/python - <<'PY'
import vapoursynth as vs, imageio_ffmpeg
print("setup: ok; VapourSynth", vs.core.core_version.release_major, "| stdo plugin", vs.core.stdo.Version(),
      "| ffmpeg", imageio_ffmpeg.get_ffmpeg_exe())
PY
