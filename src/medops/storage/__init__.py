"""Content-addressed blob storage (SHA-256)."""

from medops.storage.base import BlobStore, digest_of
from medops.storage.local import LocalBlobStore

__all__ = ["BlobStore", "LocalBlobStore", "digest_of"]
