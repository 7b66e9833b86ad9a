"""Where encrypted objects live: a folder (``LocalBackend``) or an S3 bucket (``S3Backend``),
behind one ``Backend`` interface; ``open_remote`` picks one from a URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from medops.config import Settings
from medops.errors import ConfigurationError, FieldError, InvalidInputError
from medops.storage.backends.base import Backend, Buffer
from medops.storage.backends.local import LocalBackend

__all__ = ["Backend", "Buffer", "LocalBackend", "open_remote"]


def open_remote(settings: Settings, url: str | None = None) -> Backend:
    """The remote at ``url`` (default ``MEDOPS_DATA_REMOTE``): ``s3://bucket/prefix`` or a
    folder (``file:///path`` or a path)."""
    target = url or settings.data_remote
    if not target:
        msg = "no data remote is set: set MEDOPS_DATA_REMOTE to s3://bucket/prefix or a folder"
        raise ConfigurationError(msg)
    parsed = urlparse(target)
    if parsed.scheme == "s3":
        from medops.storage.backends.s3 import S3Backend  # boto3 loads only when needed

        return S3Backend(
            parsed.netloc,
            parsed.path,
            endpoint_url=settings.data_s3_endpoint_url,
            region=settings.data_s3_region,
        )
    if parsed.scheme == "file":
        return LocalBackend(Path(parsed.path))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # a path (or a Windows drive letter)
        return LocalBackend(Path(target).expanduser())
    raise InvalidInputError(
        f"unsupported data remote {parsed.scheme}://",
        errors=[FieldError("remote", "use s3://bucket/prefix or a folder path")],
    )
