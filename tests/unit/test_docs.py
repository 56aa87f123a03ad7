"""The docs a user reads stay true to the code and short: generated tables current, links alive, no diary."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from scripts.tools import docs_tables
from vs_stdo.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SOURCES = [p for d in ("vs_stdo", "scripts", "tests") for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".sh", ".c")]


def test_generated_tables_match_the_code():
    assert docs_tables.stale() == [], "run .venv/bin/python -m scripts.tools.docs_tables"


def test_the_readme_is_a_page_not_a_notebook():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 160
    prose = [p for p in re.split(r"\n\s*\n", re.sub(r"```.*?```", "", text, flags=re.S))
             if not p.lstrip().startswith(("|", "#", "<!--"))]
    long = [p[:60] for p in prose if len(p.split()) > 120]
    assert not long, f"paragraphs over 120 words: {long}"
    assert "bash scripts/setup.sh && .venv/bin/python scripts/demo.py" in text and "bash scripts/test.sh" in text


def test_no_doc_or_source_names_how_the_work_was_organised():
    # working notes the project must not carry: numbered work sessions, pre-registration notes, tracker numbers
    # (spelt in pieces, so this file does not match itself)
    words = (r"sessions?" + r" [0-9]+", "pre" + "reg", "iss" + r"ue #?[0-9]+")
    pattern = re.compile("|".join(words), re.I)
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in DOCS + SOURCES
            for m in pattern.finditer(p.read_text(errors="replace"))]
    assert not hits, hits


def test_relative_links_point_at_files_that_exist():
    dead = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if not re.match(r"[a-z]+:", target) and not (doc.parent / target).exists():
                dead.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not dead, dead


def test_paths_the_docs_and_sources_name_exist():
    named = {m for p in DOCS + SOURCES for m in re.findall(r"\b(?:vs_stdo|scripts)/[a-z_/]+\.(?:py|sh)\b",
                                                            p.read_text(errors="replace"))}
    assert not [n for n in sorted(named) if not (ROOT / n).exists()]


STDO = (("stdo",), (".venv/bin/stdo",), ("python", "-m", "vs_stdo"), (".venv/bin/python", "-m", "vs_stdo"))


def readme_commands() -> list[list[str]]:
    """Every command in README.md's shell code blocks, as words (comments dropped, lines continued, `&&` and `|`
    split)."""
    blocks = re.findall(r"```(?:sh|bash)\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    commands = []
    for line in "\n".join(blocks).replace("\\\n", " ").splitlines():
        command: list[str] = []
        for word in shlex.split(line, comments=True) + ["&&"]:
            if word in ("&&", "|", ";"):
                commands += [command] if command else []
                command = []
            else:
                command.append(word)
    return commands


def test_readme_commands_parse_and_name_what_exists():
    """Each `stdo` command the README shows parses with the real parser (without running); the scripts and
    modules it names exist."""
    commands = readme_commands()
    stdo = [c[len(p):] for c in commands for p in STDO if tuple(c[:len(p)]) == p]
    assert len(stdo) >= 4, commands
    for args in stdo:
        assert build_parser().parse_args(args).command == args[0], args
    named = [w for c in commands for w in c if w.startswith("scripts/")]
    modules = [c[c.index("-m") + 1] for c in commands if "-m" in c and c[c.index("-m") + 1].startswith("scripts.")]
    assert named and all((ROOT / w).exists() for w in named), named
    assert all((ROOT / (m.replace(".", "/") + ".py")).exists() for m in modules), modules
