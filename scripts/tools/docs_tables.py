"""Write the docs' generated tables from the code that owns them: `stdo train`'s options (Settings) into
docs/training.md and Upscale's arguments (UpscaleOptions) into README.md and docs/filter.md, between
`<!-- NAME:begin -->` and `<!-- NAME:end -->` lines.

    .venv/bin/python -m scripts.tools.docs_tables          # rewrite the blocks
    .venv/bin/python -m scripts.tools.docs_tables --check  # exit 1 naming each stale block (the tests run this)
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from vs_stdo.filter import options
from vs_stdo.train import settings

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = {("docs/training.md", "options"): settings.table, ("docs/filter.md", "upscale"): options.table,
          ("README.md", "upscale"): options.table}


def rewritten(text: str, name: str, table: str) -> str:
    """`text` with the block `name` holding `table`; ValueError when the markers are missing."""
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"no <!-- {name}:begin --> ... <!-- {name}:end --> block")
    return pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)


def stale(root: Path = ROOT) -> list[str]:
    """The blocks whose text differs from what the code gives."""
    return [f"{path} ({name})" for (path, name), make in BLOCKS.items()
            if rewritten((root / path).read_text(), name, make()) != (root / path).read_text()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only say which blocks are stale (exit 1 if any)")
    a = p.parse_args()
    if a.check:
        old = stale()
        for block in old:
            print(f"stale: {block}; run .venv/bin/python -m scripts.tools.docs_tables", file=sys.stderr)
        return 1 if old else 0
    for (path, name), make in BLOCKS.items():
        f = ROOT / path
        f.write_text(rewritten(f.read_text(), name, make()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
