"""Electronic signatures on model versions (21 CFR 11.50, 11.70, 11.200), pure functions.

A signature's *manifest* is the canonical JSON of what was signed: the signer (id, username,
printed name, role), the meaning, the UTC time, how the signer re-authenticated, and the
content it is bound to (model, version, artifact digest, validation report id and hash, model
card hash, and the hash of the promotion policy it was signed under). Its SHA-256 is
countersigned with the server's Ed25519 key (the audit key), so the signature cannot be copied
onto other content or edited in the database (11.70). A signature is valid only while the
content it names is the content the version has now, under the same policy.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medops.audit import signing
from medops.auth.schemas import SignatureRecord
from medops.core.canonical import canonical_json, sha256_json
from medops.errors import FieldError, InvalidInputError
from medops.registry.tables import Approval, SignedBy

# canonical_json and sha256_json live in medops.core.canonical; they stay importable from here.
__all__ = [
    "MANIFEST_SCHEMA",
    "Current",
    "canonical_json",
    "manifest",
    "problems",
    "seal",
    "sha256_json",
]

MANIFEST_SCHEMA = "medops.signature-manifest/1"


def signed_by(row: SignedBy) -> dict[str, Any]:
    """The part of every signature manifest that says who signed, how, when and meaning
    what (canonical JSON sorts keys, so where it sits in a manifest changes no hash)."""
    return {
        "signer": {
            "user_id": row.user_id,
            "username": row.username,
            "printed_name": row.printed_name,
            "role": row.role,
        },
        "meaning": row.meaning,
        "comment": row.comment,
        "signed_at": row.signed_at.isoformat(),
        "method": row.method,
    }


def manifest(row: Approval, *, model: str, version: int) -> dict[str, Any]:
    """What a signature row says was signed."""
    return {
        "schema": MANIFEST_SCHEMA,
        "model": model,
        "version": version,
        **signed_by(row),
        "artifact_digest": row.artifact_digest,
        "report": {"id": row.report_id, "hash": row.report_hash},
        "card_hash": row.card_hash,
        "policy_hash": row.policy_hash,
    }


def seal(row: Approval, key: Ed25519PrivateKey, key_id: str, *, model: str, version: int) -> None:
    """Fill the manifest hash and the server's countersignature of a new signature row."""
    row.manifest_hash = sha256_json(manifest(row, model=model, version=version))
    row.key_id = key_id
    row.server_signature = countersign(row.manifest_hash, key)


def signer_columns(
    record: SignatureRecord, printed_name: str, comment: str | None, key: Ed25519PrivateKey
) -> dict[str, Any]:
    """The ``SignedBy`` columns of a new signature row from its re-authentication record;
    the seal stays empty until :func:`seal_manifest` (the manifest names the row's parent)."""
    return {
        "user_id": record.user_id,
        "username": record.username,
        "printed_name": printed_name,
        "role": record.role,
        "meaning": record.meaning,
        "comment": comment,
        "method": record.method,
        "signed_at": record.signed_at,
        "key_id": signing.key_id(key.public_key()),
        "manifest_hash": "",
        "server_signature": "",
    }


def seal_manifest(row: SignedBy, signed: dict[str, Any], key: Ed25519PrivateKey) -> None:
    """Fill a signature row's manifest hash and the server's countersignature of it."""
    row.manifest_hash = sha256_json(signed)
    row.server_signature = countersign(row.manifest_hash, key)


def require_printed_name(printed_name: str) -> str:
    """The signer's printed name (21 CFR 11.50); refused, naming the field, when the account
    has none."""
    if not printed_name:
        reason = "your account has no full name for the printed name of a signature"
        raise InvalidInputError(
            f"{reason}; an admin sets it with 'medops users set-name'",
            errors=[FieldError("full_name", reason)],
        )
    return printed_name


def countersign(manifest_hash: str, key: Ed25519PrivateKey) -> str:
    """The server's Ed25519 signature of a manifest hash, base64."""
    return base64.b64encode(key.sign(manifest_hash.encode())).decode()


def seal_problems(
    recomputed: str,
    manifest_hash: str,
    row_key_id: str,
    server_signature: str,
    public_key: Ed25519PublicKey,
    key_id: str,
) -> list[str]:
    """Why a sealed signature record no longer holds as a record: its manifest recomputed
    (``recomputed``) differs from the sealed hash, or the countersignature fails."""
    found: list[str] = []
    if recomputed != manifest_hash:
        found.append("the signature record was altered after signing (manifest hash differs)")
    if row_key_id != key_id:
        found.append(f"countersigned with key {row_key_id}, not this server's key {key_id}")
    else:
        try:
            public_key.verify(base64.b64decode(server_signature), manifest_hash.encode())
        except (InvalidSignature, ValueError):
            found.append("the server countersignature does not verify")
    return found


@dataclass(frozen=True)
class Current:
    """The content a version has now, which a signature must still match."""

    artifact_digest: str
    report_id: str | None
    report_hash: str | None
    card_hash: str | None
    card_revision: int | None
    policy_hash: str


def problems(
    row: Approval,
    current: Current,
    public_key: Ed25519PublicKey,
    key_id: str,
    *,
    model: str,
    version: int,
) -> list[str]:
    """Why a signature no longer holds; empty when it is valid."""
    found = seal_problems(
        sha256_json(manifest(row, model=model, version=version)),
        row.manifest_hash,
        row.key_id,
        row.server_signature,
        public_key,
        key_id,
    )
    if row.artifact_digest != current.artifact_digest:
        found.append("the model artifact differs from the one signed")
    if current.report_hash is None:
        found.append("the signed validation report no longer exists")
    elif row.report_hash != current.report_hash:
        found.append(
            f"the validation report changed since signing (signed {row.report_id}, "
            f"current {current.report_id})"
        )
    if current.card_hash is None:
        found.append("the model card no longer exists")
    elif row.card_hash != current.card_hash:
        found.append(
            f"the model card changed since signing (now at revision {current.card_revision})"
        )
    if row.policy_hash != current.policy_hash:
        found.append("the model's promotion policy changed since signing")
    return found
