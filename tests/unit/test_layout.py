"""The package's layout holds: imports go one way (core <- filter <- train <- tools <- cli) and have no cycles, and
playing a bundle loads no training code."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vs_stdo"
LAYERS = ("core", "filter", "train", "tools")  # each may import the ones before it, never those after


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every vs_stdo module `path` imports, at module level or inside functions."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("vs_stdo")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if base.startswith("vs_stdo"):
                modules = {f"{base}.{a.name}" for a in node.names}
                found |= {m if m in MODULES else base for m in modules}
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> int:
    """core 0, filter 1, train 2, tools 3; the package's own files (cli, __main__) sit on top."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


def test_every_module_sits_in_one_of_the_layers():
    loose = sorted(m for m in MODULES if layer(m) == len(LAYERS) and m not in ("vs_stdo", "vs_stdo.cli",
                                                                               "vs_stdo.__main__"))
    assert not loose, f"modules outside core/filter/train/tools: {loose}"


def test_imports_never_go_up_a_layer():
    upward = [(m, t) for m, p in MODULES.items() for t in imports(p)
              if layer(t) > layer(m) and m != "vs_stdo"]
    assert not upward, f"imports from a lower layer into a higher one: {upward}"
    # the package's __init__ offers the filter (vs_stdo.upscale, vs_stdo.STDOScaler) and nothing above it
    assert all(layer(t) <= LAYERS.index("filter") for t in imports(MODULES["vs_stdo"]))


def test_the_import_graph_has_no_cycle():
    graph = {m: {t for t in imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        if m in path:
            raise AssertionError(f"import cycle: {' -> '.join(path[path.index(m):] + [m])}")
        if m in done:
            return
        for t in sorted(graph[m]):
            visit(t, path + [m])
        done.add(m)

    for m in sorted(graph):
        visit(m, [])


@pytest.mark.slow
def test_playing_a_bundle_loads_no_training_code(tiny_bundle, pair):
    """core.stdo.Upscale (through the C plugin) with route auto and blind loads core and filter modules only."""
    code = (
        "import sys, vapoursynth as vs\n"
        "clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=%d, height=%d, length=2, color=[128, 100, 150])\n"
        "for route in ('auto', 'blind'):\n"
        "    vs.core.stdo.Upscale(clip, %r, route=route).get_frame(1)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('vs_stdo'))\n"
        "print(' '.join(loaded))\n" % (pair[1].width, pair[1].height, str(tiny_bundle)))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    loaded = r.stdout.split()
    assert "vs_stdo.filter.engine" in loaded and "vs_stdo.filter.blind" in loaded
    above = [m for m in loaded if m != "vs_stdo" and layer(m) > LAYERS.index("filter")]
    assert not above, f"playing a bundle loaded {above}"
