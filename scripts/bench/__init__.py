"""Benchmarks: quality, speed, delivery, scale and the studies behind the defaults.

Run from the repository root as modules, e.g. `.venv/bin/python -m scripts.bench.speed --help`."""
