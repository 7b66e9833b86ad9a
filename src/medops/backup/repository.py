"""A backup repository: a folder or an S3 prefix (the datasets' backends) holding

* ``objects/<ab>/<hex>``: every stored object of the blob stores once, addressed by the
  SHA-256 of its stored bytes and encrypted with the backup key (so a second backup copies
  only what is new, and a backup shares unchanged objects with the ones before it);
* ``backups/<id>/database.enc``: that backup's encrypted database dump;
* ``backups/<id>/manifest.json`` and ``manifest.sig``: its manifest and Ed25519 signature,
  written last, so a backup whose manifest is there is complete.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from medops.backup import keys as crypto
from medops.backup.schemas import Manifest
from medops.config import Settings
from medops.errors import FieldError, IntegrityError, InvalidInputError, NotFoundError
from medops.storage.backends import open_url
from medops.storage.backends.base import Backend

BACKUP_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
READ_CHUNK = crypto.STORED_SEGMENT * 4


def open_target(settings: Settings, target: str) -> Backend:
    """The backend of a target: ``s3://bucket/prefix``, ``file:///path`` or a folder path."""
    return open_url(settings, target, field="target", what="backup target")


def check_id(backup_id: str) -> str:
    if not BACKUP_ID.match(backup_id):
        reason = "a backup id looks like 20260101T120000Z-1a2b3c ('medops backup list' shows them)"
        raise InvalidInputError(
            f"not a backup id: {backup_id!r}", errors=[FieldError("id", reason)]
        )
    return backup_id


def object_key(sha256: str) -> str:
    return f"objects/{sha256[:2]}/{sha256}"


def object_context(sha256: str) -> bytes:
    return b"object:" + sha256.encode()


def database_context(backup_id: str) -> bytes:
    return b"database:" + backup_id.encode()


class Repository:
    """One target's objects and backups."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def url(self) -> str:
        return self.backend.url

    # -- objects ---------------------------------------------------------------------------

    def object_digests(self) -> set[str]:
        return {key.rsplit("/", 1)[-1] for key in self.backend.list_keys("objects/")}

    def put_object(self, key: crypto.BackupKey, sha256: str, data: bytes) -> None:
        self.backend.put(object_key(sha256), crypto.seal(key, object_context(sha256), [data]))

    def read_object(self, keys: crypto.BackupKeys, sha256: str) -> bytes:
        """The object's bytes, decrypted and checked against its address."""
        stored = self._chunks(object_key(sha256), f"object {sha256}")
        try:
            data = b"".join(crypto.open_sealed(keys, object_context(sha256), stored))
        except IntegrityError as exc:
            raise IntegrityError(f"object {sha256} is corrupt: {exc.message}") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(f"object {sha256} is corrupt: its content hashes to {actual}")
        return data

    def delete_object(self, sha256: str) -> None:
        self.backend.delete(object_key(sha256))

    def object_size(self, sha256: str) -> int:
        return self.backend.size(object_key(sha256)) or 0

    # -- backups ---------------------------------------------------------------------------

    @staticmethod
    def database_key(backup_id: str) -> str:
        return f"backups/{backup_id}/database.enc"

    def backup_ids(self) -> list[str]:
        """Ids of the complete backups (those with a manifest), oldest first."""
        ids = set()
        for key in self.backend.list_keys("backups/"):
            parts = key.split("/")
            if len(parts) == 3 and parts[2] == "manifest.json" and BACKUP_ID.match(parts[1]):
                ids.add(parts[1])
        return sorted(ids)

    def write_manifest(self, key: crypto.BackupKey, manifest: Manifest) -> None:
        body = manifest.model_dump_json(indent=1).encode()
        base = f"backups/{manifest.id}"
        self.backend.put(f"{base}/manifest.sig", [crypto.sign(key, body)])
        self.backend.put(f"{base}/manifest.json", [body])

    def read_manifest(self, backup_id: str, keys: crypto.BackupKeys | None) -> Manifest:
        """The manifest of ``backup_id``; with ``keys``, its signature is checked first."""
        base = f"backups/{check_id(backup_id)}"
        try:
            body = self.backend.get(f"{base}/manifest.json")
        except NotFoundError:
            msg = f"backup {backup_id} is not in {self.url} ('medops backup list' shows them)"
            raise NotFoundError(msg) from None
        if keys is not None:
            try:
                signature = self.backend.get(f"{base}/manifest.sig")
            except NotFoundError:
                raise IntegrityError(f"backup {backup_id} has no manifest signature") from None
            key_id = _peek_key_id(body)
            crypto.check_signature(keys.find(key_id), body, signature)
        try:
            return Manifest.model_validate_json(body)
        except ValidationError:
            raise IntegrityError(f"the manifest of backup {backup_id} is malformed") from None

    def delete_backup(self, backup_id: str) -> None:
        base = f"backups/{check_id(backup_id)}"
        # The manifest first: from then on the backup is incomplete, so never half-listed.
        for name in ("manifest.json", "manifest.sig", "database.enc"):
            self.backend.delete(f"{base}/{name}")

    def put_database(self, key: crypto.BackupKey, backup_id: str, path: Path) -> tuple[str, int]:
        """Encrypt the dump file into the repository; returns the stored file's SHA-256 and
        size."""
        hasher = hashlib.sha256()
        size = 0

        def counted() -> Iterator[bytes]:
            nonlocal size
            for piece in crypto.seal(key, database_context(backup_id), _read_file(path)):
                hasher.update(piece)
                size += len(piece)
                yield piece

        self.backend.put(self.database_key(backup_id), counted())
        return hasher.hexdigest(), size

    def read_database(self, keys: crypto.BackupKeys, manifest: Manifest, into: Path) -> None:
        """Decrypt the dump into the file ``into``, checking the stored file's and the
        plaintext's SHA-256 against the manifest."""
        expected = manifest.database
        stored_hash = hashlib.sha256()
        plain_hash = hashlib.sha256()

        def stored() -> Iterator[bytes]:
            for chunk in self._chunks(expected.file, "the database dump"):
                stored_hash.update(chunk)
                yield chunk

        try:
            with into.open("wb") as handle:
                for piece in crypto.open_sealed(keys, database_context(manifest.id), stored()):
                    plain_hash.update(piece)
                    handle.write(piece)
        except IntegrityError as exc:
            raise IntegrityError(f"the database dump is corrupt: {exc.message}") from None
        if stored_hash.hexdigest() != expected.stored_sha256:
            raise IntegrityError("the database dump is corrupt: its file does not match")
        if plain_hash.hexdigest() != expected.sha256:
            raise IntegrityError("the database dump is corrupt: its content does not match")

    def _chunks(self, key: str, what: str) -> Iterator[bytes]:
        size = self.backend.size(key)
        if size is None:
            raise IntegrityError(f"{what} is missing from {self.url}")
        offset = 0
        while offset < size:
            chunk = self.backend.get_range(key, offset, min(READ_CHUNK, size - offset))
            if not chunk:
                break
            offset += len(chunk)
            yield chunk


def _peek_key_id(body: bytes) -> str:
    """The key id a manifest names, read before it is trusted (only to pick the key)."""
    match = re.search(rb'"key_id"\s*:\s*"([0-9a-f]{16})"', body)
    if match is None:
        raise IntegrityError("the manifest names no backup key")
    return match.group(1).decode()


def _read_file(path: Path) -> Iterable[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(crypto.SEGMENT):
            yield chunk
