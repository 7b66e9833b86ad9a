"""Serving: ONNX Runtime sessions, micro-batching, deployments and the prediction log."""
