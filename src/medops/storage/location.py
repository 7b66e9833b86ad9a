"""Where the registry's blob store lives: ``MEDOPS_BLOB_URL`` parsed (no I/O, no boto3).

A folder path (``/srv/medops/blobs``, ``~/blobs``, ``file:///srv/blobs``) or an S3 bucket with
an optional prefix (``s3://bucket/prefix``). Anything else is refused when the settings load,
so a typo stops the server at start with one line naming the setting, never at the first
upload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

# S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens, starting and ending
# with a letter or digit (the rule S3 and S3-compatible servers share).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_HINT = "use a folder path or s3://bucket/prefix"


@dataclass(frozen=True)
class BlobLocation:
    """A parsed ``MEDOPS_BLOB_URL``: a ``folder`` or an S3 ``bucket`` and ``prefix``."""

    folder: Path | None = None
    bucket: str = ""
    prefix: str = ""

    @property
    def is_s3(self) -> bool:
        return self.folder is None


def parse_blob_url(url: str) -> BlobLocation:
    """The location ``url`` names; ValueError (one line, with the fix) when it names none."""
    text = url.strip()
    if not text:
        msg = f"is empty: {_HINT}"
        raise ValueError(msg)
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        if not _BUCKET.match(parsed.netloc):
            msg = f"s3:// needs a bucket name (3-63 of a-z, 0-9, '.', '-'): {_HINT}"
            raise ValueError(msg)
        if parsed.query or parsed.fragment or parsed.params:
            msg = f"takes no ?query or #fragment: {_HINT}"
            raise ValueError(msg)
        prefix = parsed.path.strip("/")
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            msg = f"the prefix has an empty, '.' or '..' part: {_HINT}"
            raise ValueError(msg)
        return BlobLocation(bucket=parsed.netloc, prefix=prefix)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost") or not parsed.path:
            msg = f"file:// takes an absolute path (file:///srv/blobs): {_HINT}"
            raise ValueError(msg)
        return BlobLocation(folder=Path(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive, a path
        msg = f"{parsed.scheme}:// is not a supported store: {_HINT}"
        raise ValueError(msg)
    return BlobLocation(folder=Path(text).expanduser())
