"""The stores a backup copies, as they are stored (already encrypted where the store encrypts):

* ``blobs``: the registry's blob store (MEDOPS_BLOB_URL: a folder, default blobs/ in the home,
  or s3://bucket/prefix);
* ``data``: the dataset object store (MEDOPS_DATA_DIR, default data/ in the home).

Each is seen as a backend of keys and opaque values, so a backup copies every stored value
byte for byte and a restore writes them back under the same keys: the store afterwards is
byte-identical, whatever its layout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from medops.config import Settings
from medops.storage.backends.base import Backend
from medops.storage.backends.local import LocalBackend

# Work in progress inside a store (a half-written blob): never part of a backup.
_SKIP_PREFIXES = ("tmp/",)


def blob_backend(settings: Settings) -> Backend:
    """The registry blob store's backend, as ``storage.encrypted.open_blob_store`` opens it."""
    from medops.storage.location import BlobLocation, parse_blob_url

    location = (
        parse_blob_url(settings.blob_url)
        if settings.blob_url
        else BlobLocation(folder=settings.blob_dir)
    )
    if location.folder is not None:
        return LocalBackend(location.folder)
    from medops.storage.backends.s3 import S3Backend  # boto3 loads only when needed

    return S3Backend(
        location.bucket,
        location.prefix,
        endpoint_url=settings.data_s3_endpoint_url,
        region=settings.data_s3_region,
    )


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


def tidy(backend: Backend) -> None:
    """Remove the empty scratch folder a restore's writes leave in a local store."""
    if isinstance(backend, LocalBackend):
        with contextlib.suppress(OSError):
            (backend.root / ".tmp").rmdir()
