"""Helpers shared by the demo, the benchmarks and the tests: real clips (clips.py), vspipe/ffmpeg (encode.py)."""
