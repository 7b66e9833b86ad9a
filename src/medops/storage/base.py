"""The blob store interface: immutable content addressed by its SHA-256 digest.

Implementations: ``LocalBlobStore`` (a folder) now; an S3-compatible store later. Callers see
only digests (``sha256:<64 hex>``), never paths or keys.
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO, Protocol

from medops.errors import FieldError, InvalidInputError

DIGEST_PREFIX = "sha256:"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
CHUNK_SIZE = 1024 * 1024


def digest_of(data: bytes) -> str:
    """The content address of ``data``."""
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    """Return the 64-hex part of a well-formed digest; refuse anything else."""
    if not _DIGEST_RE.match(digest):
        reason = "must be 'sha256:' followed by 64 lower-case hex digits"
        raise InvalidInputError(f"digest {reason}", errors=[FieldError("digest", reason)])
    return digest.removeprefix(DIGEST_PREFIX)


class BlobStore(Protocol):
    """Content-addressed, immutable storage of byte strings of any size."""

    def put(self, data: bytes) -> str:
        """Store bytes; return their digest. Storing the same content twice is a no-op."""
        ...

    def put_stream(self, stream: BinaryIO) -> str:
        """Store a stream of any size in chunks; return its digest."""
        ...

    def get(self, digest: str) -> bytes:
        """The content; raises NotFoundError if absent, IntegrityError if it no longer matches."""
        ...

    def open(self, digest: str) -> BinaryIO:
        """A verifying reader: reading it to the end raises IntegrityError on a mismatch."""
        ...

    def exists(self, digest: str) -> bool:
        """True when the content is stored."""
        ...

    def size(self, digest: str) -> int:
        """Size in bytes of the stored content."""
        ...
