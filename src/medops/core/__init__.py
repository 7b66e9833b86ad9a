"""What every domain uses, with no database and no HTTP: the model signature and its
columns, accepting and running ONNX artifacts, classification metrics, tabular datasets,
canonical JSON and SVG charts."""
