"""medops: clinical ML models from notebook to patients, under hospital governance."""

__version__ = "0.1.0"
