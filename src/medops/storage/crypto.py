"""Encryption of the dataset store: the key-encryption keys (KEKs), the segmented AES-256-GCM
format of an object, and sealed small secrets for database columns.

**Keys.** The operator's KEKs come from ``MEDOPS_DATA_KEK`` (``id:base64``, comma-separated,
the current key first; a Kubernetes secret) or else from the keyring file
(``MEDOPS_DATA_KEK_FILE``, default ``data-kek.key`` in the home: one ``id:base64`` a line, the
current first), which is made with mode 0600 on first use. Keys after the first still unwrap;
only the current one wraps. A KEK never touches data: every object gets its own random
256-bit data key, and only that key is wrapped by the KEK (envelope encryption), in a small
*key record* kept beside the object. Rotation re-wraps key records; ciphertext is untouched.

**Objects.** The plaintext is cut into segments of ``SEGMENT_SIZE`` (1 MiB); each segment is
sealed with AES-256-GCM under the object's data key, nonce = the segment index (safe: the key
is never reused across objects), associated data = the object header (magic, salt, segment
size, plaintext size) + the object's digest + the segment index + a last-segment flag. So a
range read decrypts and authenticates only the segments it touches, while a flipped byte, a
segment moved within the object, an object stored under another digest, a truncated or an
extended object all fail with :class:`medops.errors.IntegrityError`. The random ``salt`` of
the header names the object's key record, so two writers racing to store the same digest
never pair one's data with the other's key.

**Sealed secrets** (``seal``/``open``: the project secrets and re-identification mappings in
the database) use the same envelope: ``ms1.<kek id>.<wrapped key>.<nonce|ciphertext>``, the
caller's ``context`` as associated data, so a value moved to another row fails; rotation
re-wraps the key part without knowing the context.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medops.config import Settings
from medops.errors import ConfigurationError, IntegrityError
from medops.files import private_folder

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
SALT_BYTES = 16
SEGMENT_SIZE = 1024 * 1024
MAGIC = b"MDOENC1\0"
HEADER = struct.Struct(">8s16sIQ")  # magic, salt, segment size, plaintext size
HEADER_SIZE = HEADER.size
SEAL_VERSION = "ms1"
KEY_RECORD_VERSION = b"MDOKEY1\0"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_WRAP_AAD = b"medops-data-key\0"
_SEAL_AAD = b"medops-sealed\0"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_keys(text: str, *, source: str) -> list[tuple[str, bytes]]:
    """KEKs from their text form (``id:base64``, separated by commas or lines), current first."""
    keys: list[tuple[str, bytes]] = []
    for item in text.replace(",", "\n").split():
        kek_id, _, encoded = item.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not _KEY_ID.match(kek_id) or len(key) != KEY_BYTES:
            msg = f"{source}: each key must be id:base64 of {KEY_BYTES} random bytes"
            raise ConfigurationError(msg)
        if any(kek_id == known for known, _ in keys):
            raise ConfigurationError(f"{source}: the key id {kek_id} appears twice")
        keys.append((kek_id, key))
    if not keys:
        raise ConfigurationError(f"{source} holds no key")
    return keys


def format_keys(keys: list[tuple[str, bytes]]) -> str:
    return "".join(f"{kek_id}:{base64.b64encode(key).decode()}\n" for kek_id, key in keys)


def write_keyring_file(path: Path, keys: list[tuple[str, bytes]], *, exclusive: bool) -> None:
    """Write the keys (current first) to ``path``, mode 0600, atomically; ``exclusive``: only
    if no file is there yet (two processes creating it at once keep the first one's key)."""
    private_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(format_keys(keys))
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            with contextlib.suppress(FileExistsError):  # another made one first: keep it
                os.link(tmp, path)
        else:
            tmp.replace(path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class KeyRecord:
    """The wrapped data key of one object: which KEK wrapped it, and the wrapped bytes."""

    kek_id: str
    nonce: bytes
    wrapped: bytes

    def encode(self) -> bytes:
        kek = self.kek_id.encode()
        return KEY_RECORD_VERSION + bytes([len(kek)]) + kek + self.nonce + self.wrapped

    @classmethod
    def decode(cls, data: bytes) -> KeyRecord:
        try:
            if not data.startswith(KEY_RECORD_VERSION):
                raise ValueError
            at = len(KEY_RECORD_VERSION)
            size = data[at]
            kek_id = data[at + 1 : at + 1 + size].decode("ascii")
            rest = data[at + 1 + size :]
            if len(rest) != NONCE_BYTES + KEY_BYTES + TAG_BYTES or not _KEY_ID.match(kek_id):
                raise ValueError
        except (ValueError, IndexError, UnicodeDecodeError):
            raise IntegrityError("a data key record is malformed") from None
        return cls(kek_id, rest[:NONCE_BYTES], rest[NONCE_BYTES:])


class Keyring:
    """The KEKs by id: ``current`` wraps, every key unwraps."""

    def __init__(self, keys: list[tuple[str, bytes]], *, source: str = "keys") -> None:
        if not keys:
            raise ConfigurationError(f"{source} holds no key")
        self._keys = dict(keys)
        self.current_id = keys[0][0]
        self.ids = [kek_id for kek_id, _ in keys]
        self.source = source

    def derive(self, label: bytes) -> bytes:
        """A 256-bit key for ``label`` derived from the current KEK (HMAC-SHA-256): the same
        on every replica holding the keyring, and a different one after a rotation."""
        return hmac.new(self._keys[self.current_id], b"medops-derive:" + label, "sha256").digest()

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The KEKs of this installation: MEDOPS_DATA_KEK, else the keyring file (made 0600
        with a fresh key when absent)."""
        if settings.data_kek is not None:
            text = settings.data_kek.get_secret_value()
            return cls(parse_keys(text, source="MEDOPS_DATA_KEK"), source="MEDOPS_DATA_KEK")
        path = settings.resolved_data_kek_file
        if not path.exists():
            write_keyring_file(path, [cls.generate_key()], exclusive=True)
        return cls(parse_keys(path.read_text(), source=str(path)), source=str(path))

    @staticmethod
    def generate_key() -> tuple[str, bytes]:
        """A fresh KEK and its id (``k`` + 15 hex digits of the key's SHA-256)."""
        key = secrets.token_bytes(KEY_BYTES)
        return "k" + hashlib.sha256(key).hexdigest()[:15], key

    def items(self) -> list[tuple[str, bytes]]:
        """The keys as (id, key), current first (to write a keyring file)."""
        return [(kek_id, self._keys[kek_id]) for kek_id in self.ids]

    def with_current(self, key: tuple[str, bytes]) -> Keyring:
        """This keyring with ``key`` first (wrapping from now on), the others still held."""
        rest = [(kek_id, self._keys[kek_id]) for kek_id in self.ids if kek_id != key[0]]
        return Keyring([key, *rest], source=self.source)

    def _kek(self, kek_id: str) -> bytes:
        key = self._keys.get(kek_id)
        if key is None:
            msg = f"data key-encryption key {kek_id} is not held ({self.source} has {self.ids})"
            raise IntegrityError(msg)
        return key

    # -- data keys -----------------------------------------------------------------------

    def wrap(self, data_key: bytes, binding: bytes) -> KeyRecord:
        """Wrap ``data_key`` with the current KEK; ``binding`` (the object digest and salt)
        is associated data, so a key record moved to another object fails to unwrap."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        aad = _WRAP_AAD + self.current_id.encode() + b"\0" + binding
        wrapped = AESGCM(self._keys[self.current_id]).encrypt(nonce, data_key, aad)
        return KeyRecord(self.current_id, nonce, wrapped)

    def unwrap(self, record: KeyRecord, binding: bytes) -> bytes:
        aad = _WRAP_AAD + record.kek_id.encode() + b"\0" + binding
        try:
            return AESGCM(self._kek(record.kek_id)).decrypt(record.nonce, record.wrapped, aad)
        except InvalidTag:
            raise IntegrityError("a data key fails its integrity check") from None

    # -- sealed secrets ------------------------------------------------------------------

    def seal(self, plaintext: bytes, *, context: bytes) -> str:
        """``plaintext`` encrypted for a database column; ``context`` (say, the table, row
        and column) must be given again to open it."""
        data_key = AESGCM.generate_key(bit_length=256)
        record = self.wrap(data_key, _SEAL_AAD)
        nonce = secrets.token_bytes(NONCE_BYTES)
        body = AESGCM(data_key).encrypt(nonce, plaintext, _SEAL_AAD + context)
        return _join_sealed(record, nonce + body)

    def open(self, sealed: str, *, context: bytes) -> bytes:
        """The plaintext of ``seal``; IntegrityError when altered, moved or not held."""
        record, body = _split_sealed(sealed)
        data_key = self.unwrap(record, _SEAL_AAD)
        try:
            return AESGCM(data_key).decrypt(
                body[:NONCE_BYTES], body[NONCE_BYTES:], _SEAL_AAD + context
            )
        except InvalidTag:
            raise IntegrityError("a sealed value fails its integrity check") from None

    def reseal(self, sealed: str) -> str:
        """The same sealed value with its data key re-wrapped by the current KEK (the
        ciphertext part is kept byte for byte; no context needed)."""
        record, body = _split_sealed(sealed)
        if record.kek_id == self.current_id:
            return sealed
        fresh = self.wrap(self.unwrap(record, _SEAL_AAD), _SEAL_AAD)
        return _join_sealed(fresh, body)


def _join_sealed(record: KeyRecord, body: bytes) -> str:
    return f"{SEAL_VERSION}.{record.kek_id}.{_b64(record.nonce + record.wrapped)}.{_b64(body)}"


def sealed_kek_id(sealed: str) -> str:
    """The id of the KEK a sealed value is wrapped with."""
    return _split_sealed(sealed)[0].kek_id


def _split_sealed(sealed: str) -> tuple[KeyRecord, bytes]:
    parts = sealed.split(".")
    try:
        if len(parts) != 4 or parts[0] != SEAL_VERSION or not _KEY_ID.match(parts[1]):
            raise ValueError
        key_part, body = _unb64(parts[2]), _unb64(parts[3])
        if (
            len(key_part) != NONCE_BYTES + KEY_BYTES + TAG_BYTES
            or len(body) < NONCE_BYTES + TAG_BYTES
        ):
            raise ValueError
    except (ValueError, binascii.Error):
        raise IntegrityError("a sealed value is malformed") from None
    return KeyRecord(parts[1], key_part[:NONCE_BYTES], key_part[NONCE_BYTES:]), body


# -- the object format ---------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """The clear header of an encrypted object."""

    salt: bytes
    segment_size: int
    size: int  # of the plaintext

    @property
    def raw(self) -> bytes:
        return HEADER.pack(MAGIC, self.salt, self.segment_size, self.size)

    @property
    def segments(self) -> int:
        return max(1, -(-self.size // self.segment_size))

    @property
    def stored_size(self) -> int:
        return HEADER_SIZE + self.size + self.segments * TAG_BYTES

    def segment_span(self, index: int) -> tuple[int, int]:
        """Where segment ``index`` lies in the stored object: (offset, length with tag)."""
        start = index * self.segment_size
        plain = min(self.segment_size, self.size - start)
        return HEADER_SIZE + index * (self.segment_size + TAG_BYTES), plain + TAG_BYTES

    @classmethod
    def parse(cls, data: bytes) -> Header:
        if len(data) < HEADER_SIZE:
            raise IntegrityError("an encrypted object is truncated (no header)")
        magic, salt, segment_size, size = HEADER.unpack_from(data)
        if magic != MAGIC or not 0 < segment_size <= 1 << 30:
            raise IntegrityError("an encrypted object has a malformed header")
        return cls(salt, segment_size, size)


def new_header(size: int, segment_size: int = SEGMENT_SIZE) -> Header:
    return Header(secrets.token_bytes(SALT_BYTES), segment_size, size)


def binding(digest: str, header: Header) -> bytes:
    """What a data key and each segment are bound to: the object's digest and header."""
    return digest.encode() + b"\0" + header.raw


def _nonce(index: int) -> bytes:
    return struct.pack(">IQ", 0, index)


def _segment_aad(bound: bytes, header: Header, index: int) -> bytes:
    last = 1 if index == header.segments - 1 else 0
    return bound + struct.pack(">QB", index, last)


class SegmentCipher:
    """Encrypts and decrypts the segments of one object under its data key."""

    def __init__(self, data_key: bytes, digest: str, header: Header) -> None:
        self._aead = AESGCM(data_key)
        self._bound = binding(digest, header)
        self.header = header

    def encrypt(self, index: int, plaintext: bytes | memoryview) -> bytes:
        return self._aead.encrypt(
            _nonce(index), plaintext, _segment_aad(self._bound, self.header, index)
        )

    def decrypt(self, index: int, stored: bytes | memoryview) -> bytes:
        _, expected = self.header.segment_span(index)
        if len(stored) != expected:
            raise IntegrityError("an encrypted object is truncated")
        try:
            return self._aead.decrypt(
                _nonce(index), stored, _segment_aad(self._bound, self.header, index)
            )
        except InvalidTag:
            raise IntegrityError("an encrypted object fails its integrity check") from None

    def spans(self) -> Iterator[tuple[int, int, int]]:
        """(index, plaintext start, plaintext end) of every segment."""
        for index in range(self.header.segments):
            start = index * self.header.segment_size
            yield index, start, min(start + self.header.segment_size, self.header.size)
