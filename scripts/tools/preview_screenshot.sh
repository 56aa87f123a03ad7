#!/usr/bin/env bash
# Reproduce docs/img/vspreview.png: train a small bundle on bigbuckbunny, open the README's .vpy (its x4 LR
# through core.stdo.Upscale) in vspreview on a virtual X display, and screenshot the window.
# Needs (Debian): apt-get install xvfb xdotool imagemagick libxkbcommon-x11-0 libxcb-cursor0 libegl1 libgl1
#                 libfontconfig1 libdbus-1-3 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0
#           and vspreview in .venv (pip install vspreview).
# Usage: bash scripts/tools/preview_screenshot.sh [OUT.png]   (default docs/img/vspreview.png; work files in $WORK)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-docs/img/vspreview.png}")
work=${WORK:-/tmp/stdo-preview}
py=.venv/bin/python
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$work"
for tool in Xvfb xdotool import convert .venv/bin/vspreview; do
    command -v "$tool" > /dev/null || { echo "$tool is missing: see the apt-get and pip lines above" >&2; exit 1; }
done

clip=$($py scripts/clips.py bigbuckbunny.mp4)
[ -f "$work/b.stdo" ] || $py -m vs_stdo train "$clip" --frames 0:6 -o "$work/b.stdo" --steps 100
ffmpeg=$($py -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())")
"$ffmpeg" -v error -y -i "$clip" -frames:v 6 -vf scale=iw/4:ih/4:flags=bicubic -c:v ffv1 "$work/video_lr.mkv"
cat > "$work/upscale.vpy" <<EOF
import vapoursynth as vs
core = vs.core
lr = core.bs.VideoSource("$work/video_lr.mkv")
hr = core.stdo.Upscale(lr, "$work/b.stdo")          # same as vs_stdo.upscale(lr, "video.stdo")
hr.set_output()
EOF

# vspreview 0.20.1 (the newest on PyPI) imports vstools.vs_object, which vsjetpack 2.0 removed: where the venv
# has vsjetpack >= 2, give vspreview vsjetpack 1.5 from a folder of its own (the venv is not changed)
if ! $py -c "import vstools; vstools.vs_object" 2>/dev/null; then
    [ -d "$work/vsp-site/vstools" ] || $py -m pip install -q --target "$work/vsp-site" --no-deps \
        "vsjetpack==1.5.0" "jetpytools~=2.2.1"
    export PYTHONPATH=$PYTHONPATH:$work/vsp-site        # PYTHONPATH comes before the venv's site-packages
fi

display=:$((90 + RANDOM % 100))
Xvfb "$display" -screen 0 1600x1000x24 -nolisten tcp &
xvfb=$!
vsp=
trap 'kill $vsp $xvfb 2>/dev/null || true' EXIT
export DISPLAY=$display QT_QPA_PLATFORM=xcb XDG_RUNTIME_DIR=$work/xdg
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
sleep 2
.venv/bin/vspreview -f 3 "$work/upscale.vpy" > "$work/vspreview.log" 2>&1 &
vsp=$!
for _ in $(seq 120); do                      # the window appears once the script and frame 3 are ready
    win=$(xdotool search --onlyvisible --name VSPreview 2>/dev/null | head -1) && [ -n "$win" ] && break
    sleep 1
done
[ -n "${win:-}" ] || { echo "no vspreview window after 120 s; log: $work/vspreview.log" >&2; exit 1; }
xdotool windowmove "$win" 0 0 windowsize "$win" 1600 1000
sleep 15                                     # let it re-render at the new size
import -window "$win" "$work/shot.png"
convert "$work/shot.png" -resize 1000x -dither None -colors 256 -define png:compression-level=9 "$out.tmp.png" && mv "$out.tmp.png" "$out"
echo "wrote $out ($(stat -c %s "$out") bytes); vspreview log: $work/vspreview.log"
