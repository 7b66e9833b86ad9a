"""Merkle tree hash of RFC 6962 (Certificate Transparency), section 2.1. Pure.

Leaves are hashed as SHA-256(0x00 || leaf) and inner nodes as SHA-256(0x01 || left || right),
so a leaf can never pose as a node; an empty tree hashes to SHA-256 of nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]): split at the largest power of two smaller than n, recursively."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(root(leaves[:split]), root(leaves[split:]))
