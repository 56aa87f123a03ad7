"""Shared core: the geometry and maths both training and the filter rely on."""
