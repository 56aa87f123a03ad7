#!/usr/bin/env bash
# The test command: set up when the environment is missing or what it is built from changed, then run the
# whole suite (arguments go to pytest, e.g. `-m "not slow"` for the fast tier).
# `scripts/test.sh --dry-run` only says whether setup would run, and runs nothing.
set -uo pipefail
cd "$(dirname "$0")/.."

# The editable install belongs to this checkout, so its path counts too.
stamp=.venv/.stdo-setup
want=$({ pwd; cat pyproject.toml setup.py plugin/stdo.c scripts/setup.sh; } | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  setup=""
else
  setup="yes"
fi

if [ "${1:-}" = "--dry-run" ]; then
  if [ -n "$setup" ]; then echo "test: setup would run"; else echo "test: setup is up to date ($stamp)"; fi
  exit 0
fi
if [ -n "$setup" ]; then
  bash scripts/setup.sh || exit 1
  echo "$want" > "$stamp"
fi
.venv/bin/python -m pytest -q "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "test: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
