"""The filter: the graph `core.stdo.Upscale` is (colour conversion, the engine's frame filter, a remaster bundle's
geometry), what it runs per frame (routing, regions, batched model calls, stitching), and the vs-jetpack scaler.
Imports only the core; never training code."""
