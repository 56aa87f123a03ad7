"""The shared core: models, patch geometry, colour, metrics, files, fingerprints, video reading and the bundle
format. Imports nothing from the rest of the package."""
