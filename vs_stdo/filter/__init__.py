"""The filter: what `core.stdo.Upscale` runs per frame (routing, regions, batched model calls, stitching), and the
vs-jetpack scaler. Imports only the core; never training code."""
