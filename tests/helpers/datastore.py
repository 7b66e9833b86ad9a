"""Small makers for the dataset store tests: deterministic bytes and their digest."""

from __future__ import annotations

import hashlib
import random


def digest_of(data: bytes) -> str:
    """The object address of ``data``: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic incompressible bytes."""
    return random.Random(seed).randbytes(size)
