"""The stores a backup copies, as they are stored (already encrypted where the store encrypts):

* ``blobs``: the registry's blob store (MEDOPS_BLOB_URL: a folder, default blobs/ in the home,
  or s3://bucket/prefix);
* ``data``: the dataset object store (MEDOPS_DATA_DIR, default data/ in the home).

Each is seen as a backend of keys and opaque values, so a backup copies every stored value
byte for byte and a restore writes them back under the same keys: the store afterwards is
byte-identical, whatever its layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlparse

from medops.config import Settings
from medops.datasets.backends.base import Backend, Buffer
from medops.datasets.backends.local import LocalBackend
from medops.files import BLOB_MODE

# Work in progress inside a store (a half-written blob): never part of a backup.
_SKIP_PREFIXES = ("tmp/",)


def blob_backend(settings: Settings) -> Backend:
    url = getattr(settings, "blob_url", None)  # MEDOPS_BLOB_URL (the storage package's)
    if url:
        parsed = urlparse(str(url))
        if parsed.scheme == "s3":
            from medops.datasets.backends.s3 import S3Backend

            return S3Backend(
                parsed.netloc,
                parsed.path,
                endpoint_url=settings.data_s3_endpoint_url,
                region=settings.data_s3_region,
            )
        path = Path(parsed.path) if parsed.scheme == "file" else Path(str(url)).expanduser()
        return _ReadOnlyBlobs(path)
    return _ReadOnlyBlobs(settings.blob_dir)


class _ReadOnlyBlobs(LocalBackend):
    """The local blob store: its files are written mode 0400, as the store writes them."""

    def put(self, key: str, chunks: Iterable[Buffer]) -> None:
        super().put(key, chunks)
        self._path(key).chmod(BLOB_MODE)


def data_backend(settings: Settings) -> Backend:
    return LocalBackend(settings.resolved_data_dir)


def sources(settings: Settings) -> dict[str, Backend]:
    """The stores of this installation by name."""
    return {"blobs": blob_backend(settings), "data": data_backend(settings)}


def stored_keys(backend: Backend) -> Iterator[str]:
    """Every key of a store, less work in progress."""
    for key in backend.list_keys(""):
        if not key.startswith(_SKIP_PREFIXES):
            yield key


def is_empty(backend: Backend) -> bool:
    return next(iter(stored_keys(backend)), None) is None
