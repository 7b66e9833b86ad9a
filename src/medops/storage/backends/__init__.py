"""Where encrypted objects live: a folder (``LocalBackend``) or an S3 bucket (``S3Backend``),
behind one ``Backend`` interface; ``open_remote`` picks one from a URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from medops.config import Settings
from medops.errors import ConfigurationError, FieldError, InvalidInputError
from medops.storage.backends.base import Backend, Buffer
from medops.storage.backends.local import LocalBackend

__all__ = ["Backend", "Buffer", "LocalBackend", "open_remote", "open_url"]


def open_url(settings: Settings, url: str, *, field: str, what: str) -> Backend:
    """The backend at ``url``: ``s3://bucket/prefix`` (endpoint and region from the
    MEDOPS_DATA_S3_* settings), ``file:///path`` or a folder path; anything else is an
    InvalidInputError naming ``field`` (``what`` names the URL in the message)."""
    parsed = urlparse(url)
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
    # a path (or a Windows drive letter)
    if url.strip() and (parsed.scheme == "" or len(parsed.scheme) == 1):
        return LocalBackend(Path(url).expanduser().absolute())
    reason = "use a folder path or s3://bucket/prefix"
    raise InvalidInputError(
        f"unsupported {what} {url!r}: {reason}", errors=[FieldError(field, reason)]
    )


def open_remote(settings: Settings, url: str | None = None) -> Backend:
    """The remote at ``url`` (default ``MEDOPS_DATA_REMOTE``): ``s3://bucket/prefix`` or a
    folder (``file:///path`` or a path)."""
    target = url or settings.data_remote
    if not target:
        msg = "no data remote is set: set MEDOPS_DATA_REMOTE to s3://bucket/prefix or a folder"
        raise ConfigurationError(msg)
    return open_url(settings, target, field="remote", what="data remote")
