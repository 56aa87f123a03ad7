"""Tools around bundles: evaluation with pictures, `stdo info`, ONNX export. They may use every other part."""
