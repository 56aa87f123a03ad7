"""Builds the native VapourSynth plugin (plugin/stdo.c) into VapourSynth's plugin folder.

A regular install puts `libstdo.so` and `manifest.vs` under `vapoursynth/plugins/stdo/` inside the
wheel. An editable install (`pip install -e .`) cannot do that through the wheel, so the build writes
them straight into the target environment's plugin folder instead (see README).

The version lives only in pyproject.toml: the plugin gets it as STDO_VERSION (and its major/minor
numbers), Python reads it from the installed metadata. The wheel is tagged abi3 because the plugin
uses only the limited API of CPython 3.12.
"""
import os
import re
import sysconfig
import tomllib
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PLUGIN_SUBDIR = Path("vapoursynth", "plugins", "stdo")
MANIFEST = "[VapourSynth Manifest V1]\nlibstdo\n"
VERSION = tomllib.loads(Path(__file__).with_name("pyproject.toml").read_text())["project"]["version"]
MAJOR, MINOR = re.match(r"(\d+)\.(\d+)", VERSION).groups()


def vapoursynth_include() -> str:
    import vapoursynth  # the build requirement; only its headers are used

    return vapoursynth.get_include()


class BuildPlugin(build_ext):
    """Compile the plugin as `libstdo.so` (no ABI tag: VapourSynth loads it by manifest name)."""

    def get_ext_filename(self, ext_name: str) -> str:
        return str(PLUGIN_SUBDIR / "libstdo.so")

    def run(self) -> None:
        editable = self.inplace or getattr(self, "editable_mode", False)
        if editable:
            # Build into the environment that pip installs into, where VapourSynth autoloads from.
            self.inplace = False
            self.build_lib = sysconfig.get_paths()["platlib"]
        super().run()
        target = Path(self.build_lib, PLUGIN_SUBDIR)
        target.mkdir(parents=True, exist_ok=True)
        (target / "manifest.vs").write_text(MANIFEST)

    def get_outputs(self):
        return super().get_outputs() + [os.path.join(self.build_lib, PLUGIN_SUBDIR, "manifest.vs")]


setup(
    ext_modules=[
        Extension(
            "libstdo",
            sources=["plugin/stdo.c"],
            depends=["pyproject.toml"],  # the version: rebuild when it changes
            include_dirs=[vapoursynth_include()],
            define_macros=[("Py_LIMITED_API", "0x030C0000"), ("STDO_VERSION", f'"{VERSION}"'),
                           ("STDO_VERSION_MAJOR", MAJOR), ("STDO_VERSION_MINOR", MINOR)],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            py_limited_api=True,
        )
    ],
    cmdclass={"build_ext": BuildPlugin},
    options={"bdist_wheel": {"py_limited_api": "cp312"}},
)
