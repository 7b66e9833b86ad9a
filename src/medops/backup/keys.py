"""The backup key: it encrypts every file of a backup (AES-256-GCM) and signs its manifest
(Ed25519); both keys are derived from one secret with HKDF-SHA256, so there is one thing to
keep apart from the backups.

The keys come, like the TOTP key (auth/mfa_keys.py, whose text format they share), from
``MEDOPS_BACKUP_KEY`` (base64 keys, comma-separated, current first) or else from
``MEDOPS_BACKUP_KEY_FILE`` (default ``backup.key`` in the home, one base64 key per line,
current first), which ``create`` makes with mode 0600 on first use. A restore never makes one:
a backup is only readable with the key that made it.

File format (``seal``/``open_sealed``): ``MEDOPSBK`` | version 1 | key id (8 bytes) | salt
(16 bytes), then segments of at most 1 MiB of plaintext, each AES-256-GCM with a per-file key
(HKDF of the backup key and the salt), a nonce holding the segment's index and whether it is
the last, and the header plus a context (what the file is: ``object:<hex>``, ``database:<id>``)
as associated data. A segment moved, cut off, reordered or a file moved to another name fails
its tag.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medops.auth.mfa_keys import decode_keys, new_key, write_key_file
from medops.config import Settings
from medops.errors import ConfigurationError, IntegrityError

MAGIC = b"MEDOPSBK"
VERSION = 1
KEY_ID_BYTES = 8
SALT_BYTES = 16
HEADER_SIZE = len(MAGIC) + 1 + KEY_ID_BYTES + SALT_BYTES
SEGMENT = 1024 * 1024
TAG = 16
STORED_SEGMENT = SEGMENT + TAG


def key_id(key: bytes) -> str:
    """16 hex digits naming a backup key (SHA-256 of it)."""
    return hashlib.sha256(b"medops-backup-key-id" + key).hexdigest()[:16]


def _derive(key: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


@dataclass(frozen=True)
class BackupKey:
    """One backup key and what is derived from it."""

    secret: bytes

    @property
    def id(self) -> str:
        return key_id(self.secret)

    def signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(_derive(self.secret, b"medops-backup-sign"))

    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key().public_key()

    def file_key(self, salt: bytes) -> bytes:
        return _derive(self.secret, b"medops-backup-file", salt)


@dataclass(frozen=True)
class BackupKeys:
    """The keys at hand: the first makes new backups, every one reads old ones."""

    keys: tuple[BackupKey, ...]
    source: str

    @property
    def current(self) -> BackupKey:
        return self.keys[0]

    def find(self, wanted: str) -> BackupKey:
        for key in self.keys:
            if key.id == wanted:
                return key
        msg = (
            f"this backup was made with backup key {wanted}, which {self.source} does not "
            "hold: set MEDOPS_BACKUP_KEY or MEDOPS_BACKUP_KEY_FILE to the key that made it"
        )
        raise ConfigurationError(msg)


def load_keys(settings: Settings, *, create: bool) -> BackupKeys:
    """The backup keys of ``settings``; the key file is made when absent and ``create``."""
    if settings.backup_key is not None:
        raw = decode_keys(settings.backup_key.get_secret_value(), source="MEDOPS_BACKUP_KEY")
        return BackupKeys(tuple(BackupKey(k) for k in raw), "MEDOPS_BACKUP_KEY")
    path = settings.resolved_backup_key_file
    if not path.exists():
        if not create:
            msg = (
                f"no backup key: {path} does not exist; copy the backup key there (or set "
                "MEDOPS_BACKUP_KEY / MEDOPS_BACKUP_KEY_FILE) before reading a backup"
            )
            raise ConfigurationError(msg)
        # Made at the same moment by another process: use theirs.
        with contextlib.suppress(FileExistsError):
            write_key_file(path, [new_key()], exclusive=True)
    raw = decode_keys(path.read_text(), source=str(path))
    return BackupKeys(tuple(BackupKey(k) for k in raw), str(path))


def _nonce(index: int, last: bool) -> bytes:
    return struct.pack(">QI", index, 1 if last else 0)


def seal(key: BackupKey, context: bytes, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Encrypt the concatenation of ``chunks``; yields the header, then each segment."""
    salt = os.urandom(SALT_BYTES)
    header = MAGIC + bytes([VERSION]) + bytes.fromhex(key.id) + salt
    aead = AESGCM(key.file_key(salt))
    aad = header + context
    yield header
    buffer = bytearray()
    index = 0
    for chunk in chunks:
        buffer += chunk
        while len(buffer) > SEGMENT:  # keep at least one byte back: the last one is marked
            yield aead.encrypt(_nonce(index, False), bytes(buffer[:SEGMENT]), aad)
            del buffer[:SEGMENT]
            index += 1
    yield aead.encrypt(_nonce(index, True), bytes(buffer), aad)


def header_key_id(header: bytes) -> str:
    """The id of the key a sealed file was made with; IntegrityError when it is no such file."""
    if len(header) < HEADER_SIZE or header[: len(MAGIC)] != MAGIC or header[8] != VERSION:
        raise IntegrityError("not a medops backup file (bad header)")
    return header[9 : 9 + KEY_ID_BYTES].hex()


def open_sealed(keys: BackupKeys, context: bytes, stored: Iterable[bytes]) -> Iterator[bytes]:
    """Decrypt a sealed file given as chunks of any size; yields plaintext segments and raises
    IntegrityError at the first one that fails (or when the file ends early)."""
    aead: AESGCM | None = None
    aad = b""
    buffer = bytearray()
    index = 0
    done = False

    def segment(data: bytes, last: bool) -> bytes:
        assert aead is not None
        try:
            return aead.decrypt(_nonce(index, last), data, aad)
        except InvalidTag:
            raise IntegrityError(f"segment {index} fails its authentication tag") from None

    for chunk in stored:
        buffer += chunk
        if aead is None:
            if len(buffer) < HEADER_SIZE:
                continue
            header = bytes(buffer[:HEADER_SIZE])
            key = keys.find(header_key_id(header))
            aead = AESGCM(key.file_key(header[HEADER_SIZE - SALT_BYTES :]))
            aad = header + context
            del buffer[:HEADER_SIZE]
        while len(buffer) > STORED_SEGMENT:
            if done:
                raise IntegrityError("data after the last segment")
            yield segment(bytes(buffer[:STORED_SEGMENT]), False)
            del buffer[:STORED_SEGMENT]
            index += 1
    if aead is None:
        raise IntegrityError("not a medops backup file (too short)")
    if len(buffer) < TAG:
        raise IntegrityError("the file ends before its last segment")
    yield segment(bytes(buffer), True)


def sign(key: BackupKey, data: bytes) -> bytes:
    return key.signing_key().sign(data)


def check_signature(key: BackupKey, data: bytes, signature: bytes) -> None:
    try:
        key.public_key().verify(signature, data)
    except InvalidSignature:
        raise IntegrityError("the manifest's signature does not verify") from None
