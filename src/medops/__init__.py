"""medops: clinical ML models from notebook to patients, under hospital governance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

from medops.errors import MedopsError

if TYPE_CHECKING:
    from medops.client import Client

__all__ = ["Client", "MedopsError", "__version__"]


def __getattr__(name: str) -> Any:
    """``medops.Client`` is imported on first use: the HTTP client (httpx, pydantic,
    SQLAlchemy; about 44 MB) is not loaded by code that needs only, say, the drift
    statistics."""
    if name == "Client":
        from medops.client import Client

        return Client
    msg = f"module 'medops' has no attribute {name!r}"
    raise AttributeError(msg)
