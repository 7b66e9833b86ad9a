"""Encrypt the plaintext blobs of an installation from before encryption at rest.

Run by ``medops db upgrade`` (the one step an operator already runs after installing a
release, and the Kubernetes migration Job's command), after the schema migration. Each plain
file is encrypted, read back and verified, and only then removed (``EncryptedBlobStore.
encrypt_legacy``): a crash leaves the plain file, which the next run takes up again; a blob
whose plain file no longer matches its digest is left in place and named, never encrypted.
Reads find either form meanwhile, so a server may serve while it runs.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field

from medops.errors import IntegrityError, NotFoundError
from medops.storage.encrypted import EncryptedBlobStore


class BlobEncryption(BaseModel):
    """What one pass over the legacy plaintext blobs did."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str = Field(description="Where the blobs are.")
    encrypted: int = Field(description="Plaintext blobs encrypted (and their plain file removed).")
    failed: list[str] = Field(
        description="Digests of plain files that fail their integrity check (left in place)."
    )
    remaining: int = Field(description="Plaintext blobs still there after this pass.")
    seconds: float


def encrypt_legacy_blobs(store: EncryptedBlobStore) -> BlobEncryption:
    """Encrypt every plaintext blob of ``store``'s folder in place (idempotent)."""
    started = time.monotonic()
    encrypted = 0
    failed: list[str] = []
    for digest in list(store.legacy_digests()):
        try:
            store.encrypt_legacy(digest)
        except IntegrityError:
            failed.append(digest)
        except NotFoundError:  # another process finished it meanwhile
            continue
        else:
            encrypted += 1
    return BlobEncryption(
        store=store.url,
        encrypted=encrypted,
        failed=failed,
        remaining=sum(1 for _ in store.legacy_digests()),
        seconds=round(time.monotonic() - started, 3),
    )
