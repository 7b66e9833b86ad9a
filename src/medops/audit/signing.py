"""The Ed25519 key that signs audit checkpoints and chain openings: created once, kept in a
0600 file. The key of the audit records' MACs is derived from it (HKDF-SHA256), so one secret
file holds everything that makes the audit log unforgeable."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medops.files import create_private

MAC_INFO = b"medops audit record MAC v1"


def load_or_create(path: Path) -> Ed25519PrivateKey:
    """The signing key in ``path``; a new one is written (mode 0600) if the file is absent."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            msg = f"{path} does not hold an Ed25519 private key"
            raise ValueError(msg)
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Unique per process and thread (two requests of one server may both find the key
    # missing); the link below decides which key wins. 0600 whatever the umask, and a
    # missing folder is made 0700.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = create_private(tmp)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)  # atomic, and never replaces a key another process made first
    except FileExistsError:
        return load_or_create(path)
    finally:
        tmp.unlink()
    return key


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(public_bytes(key)).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint: the first 16 hex digits of SHA-256 of the raw public key."""
    return hashlib.sha256(public_bytes(key)).hexdigest()[:16]


def public_from_b64(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text))


def mac_key(key: Ed25519PrivateKey) -> bytes:
    """The 256-bit key of the audit records' HMACs, derived from the signing key."""
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=MAC_INFO).derive(raw)
