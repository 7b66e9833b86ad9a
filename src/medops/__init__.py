"""medops: clinical ML models from notebook to patients, under hospital governance."""

__version__ = "0.1.0"

# Imported after __version__, which client.py reads.
from medops.client import Client
from medops.errors import MedopsError

__all__ = ["Client", "MedopsError", "__version__"]
