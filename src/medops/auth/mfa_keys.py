"""TOTP secrets encrypted at rest, with a key kept outside the database.

A secret is stored as ``v1.<key id>.<base64url(nonce | ciphertext | tag)>``: AES-256-GCM with a
random 96-bit nonce and the user's id as associated data, so a ciphertext moved to another
user's row does not decrypt. The key id is the first 16 hex digits of SHA-256 of the key.

The keys come, like the audit signing key, from outside the database:

* ``MEDOPS_MFA_KEY``: base64 keys, comma-separated, the current one first (a Kubernetes
  secret as an environment variable); or else
* ``MEDOPS_MFA_KEY_FILE`` (default ``mfa-secrets.key`` in the home): one base64 key per line,
  the current one first; created with mode 0600 on first need (``medops init`` creates it).

Keys after the first are still read, never written with: that is how a rotation keeps old
secrets readable until every one is re-encrypted (``medops mfa rotate-key``). A process that
meets a key id it does not hold, or finds the key file changed, reads the keys again, so a
rotation made by another process (the CLI next to a running server) is picked up.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medops.errors import ConfigurationError, IntegrityError

VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


def decode_keys(text: str, *, source: str) -> list[bytes]:
    """Keys from their text form (base64, separated by commas or lines); the first is current."""
    keys = []
    for item in text.replace(",", "\n").split():
        try:
            key = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            msg = f"{source}: each key must be {KEY_BYTES} random bytes in base64"
            raise ConfigurationError(msg)
        keys.append(key)
    if not keys:
        raise ConfigurationError(f"{source} holds no key")
    return keys


def is_sealed(stored: str) -> bool:
    """Whether a stored value is a ciphertext of this module (not a legacy plaintext)."""
    return stored.startswith(VERSION + ".")


def sealed_key_id(stored: str) -> str | None:
    parts = stored.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == VERSION else None


@dataclass(frozen=True)
class Keyring:
    """Keys by id; ``current`` encrypts, every key decrypts."""

    current: bytes
    others: tuple[bytes, ...] = ()

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def ids(self) -> list[str]:
        return [key_id(k) for k in (self.current, *self.others)]

    def find(self, wanted: str) -> bytes | None:
        return next((k for k in (self.current, *self.others) if key_id(k) == wanted), None)

    def seal(self, user_id: uuid.UUID, secret: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self.current).encrypt(nonce, secret.encode(), user_id.bytes)
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{VERSION}.{self.current_id}.{body}"

    def open(self, user_id: uuid.UUID, stored: str) -> str | None:
        """The secret, or None when this keyring lacks the key it was sealed with; raises
        IntegrityError when the value is not a ciphertext or was altered or moved."""
        wanted = sealed_key_id(stored)
        if wanted is None:
            raise IntegrityError("a stored TOTP secret is not encrypted")
        key = self.find(wanted)
        if key is None:
            return None
        body = stored.split(".")[2]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], user_id.bytes)
        except (binascii.Error, ValueError, InvalidTag):
            raise IntegrityError("a stored TOTP secret fails its integrity check") from None
        return plain.decode()


class MfaKeys:
    """The keyring of one installation, read from its source and re-read when it changes."""

    def __init__(self, key_file: Path, env_keys: str | None = None) -> None:
        self._file = key_file
        self._env = env_keys
        self._lock = threading.Lock()
        self._ring: Keyring | None = None
        self._stamp: tuple[int, int] | None = None

    @property
    def from_environment(self) -> bool:
        return self._env is not None

    @property
    def key_file(self) -> Path:
        return self._file

    def ring(self, *, create: bool = True) -> Keyring | None:
        """The keys now (from MEDOPS_MFA_KEY, else the key file, which is created when
        ``create`` and absent); None when there is no key and ``create`` is false."""
        with self._lock:
            if self._env is not None:
                if self._ring is None:
                    keys = decode_keys(self._env, source="MEDOPS_MFA_KEY")
                    self._ring = Keyring(keys[0], tuple(keys[1:]))
                return self._ring
            stamp = _stamp(self._file)
            if stamp is None:
                if not create:
                    return None
                write_key_file(self._file, [new_key()], exclusive=True)
                stamp = _stamp(self._file)
            if self._ring is None or stamp != self._stamp:
                keys = decode_keys(self._file.read_text(), source=str(self._file))
                self._ring, self._stamp = Keyring(keys[0], tuple(keys[1:])), stamp
            return self._ring

    def seal(self, user_id: uuid.UUID, secret: str) -> str:
        ring = self.ring()
        assert ring is not None
        return ring.seal(user_id, secret)

    def open(self, user_id: uuid.UUID, stored: str) -> str:
        """The plaintext secret; raises IntegrityError when it cannot be had."""
        ring = self.ring()
        assert ring is not None
        secret = ring.open(user_id, stored)
        if secret is None:
            with self._lock:
                self._ring = None  # perhaps rotated by another process: read the keys again
            ring = self.ring()
            assert ring is not None
            secret = ring.open(user_id, stored)
        if secret is None:
            msg = f"a TOTP secret is sealed with key {sealed_key_id(stored)}, which is not held"
            raise IntegrityError(msg)
        return secret


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return (info.st_mtime_ns, info.st_ino)


def write_key_file(path: Path, keys: list[bytes], *, exclusive: bool = False) -> None:
    """Write the keys (current first) to ``path``, mode 0600, atomically. ``exclusive``: only
    if no file is there yet (two processes creating it at once keep the first one's key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(encode_key(k) + "\n" for k in keys))
        handle.flush()
        os.fsync(handle.fileno())
    try:
        if exclusive:
            with contextlib.suppress(FileExistsError):  # another process made one first: keep it
                os.link(tmp, path)
        else:
            tmp.replace(path)
        _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
