"""Local administration on the server's own files: the only actions that bypass the API.

``init`` runs before any user exists (so nobody could authenticate to an API) and ``upgrade``
must run before the API can serve. Both act as the local ``system`` actor, are audited, and
are what ``medops init`` and ``medops db upgrade`` call. So is ``mfa_rotate_key``: the TOTP
encryption key is a file (or variable) of the server, which no API should hand out.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medops.audit import signing
from medops.audit.checkpoints import read_exported, verify_database
from medops.audit.schemas import AuditEntry
from medops.audit.verify import Report
from medops.auth.mfa_store import RotationResult
from medops.auth.passwords import check_policy
from medops.auth.schemas import USERNAME_PATTERN, UserOut
from medops.config import Settings
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.db import migrate
from medops.errors import FieldError, InvalidInputError
from medops.files import FOLDER_MODE, private_folder
from medops.rowcheck import check_rows
from medops.services import Services, build_services
from medops.storage.encrypted import EncryptedBlobStore
from medops.storage.migrate import BlobEncryption, encrypt_legacy_blobs

LOCAL_ORIGIN = Origin(source_ip="local", user_agent="medops-cli", request_id=None)


@dataclass(frozen=True)
class InitResult:
    home: str
    database: str
    revision: str
    admin: UserOut
    generated_password: str | None


@dataclass(frozen=True)
class UpgradeResult:
    database: str
    before: str | None
    after: str
    blobs_encrypted: int = 0  # plaintext blobs of an earlier release encrypted now
    blobs_failed: tuple[str, ...] = ()  # plain files that fail their digest (left in place)


def generate_password() -> str:
    """A random password of 24 URL-safe characters (about 143 bits)."""
    return secrets.token_urlsafe(18)


def init(settings: Settings, admin_name: str = "admin") -> InitResult:
    """Create the home, migrate the database and create the first admin."""
    given = settings.admin_password.get_secret_value() if settings.admin_password else None
    password = given or generate_password()
    # Check the name and password before touching anything on disk or in the database.
    if not re.fullmatch(USERNAME_PATTERN, admin_name):
        reason = "must be 2-64 characters of a-z 0-9 _ . - starting with a letter"
        raise InvalidInputError(
            f"admin name {admin_name!r} {reason}", errors=[FieldError("admin", reason)]
        )
    check_policy(password, field="MEDOPS_ADMIN_PASSWORD", username=admin_name)
    private_folder(settings.home)
    settings.home.chmod(FOLDER_MODE)  # an existing home too: it holds the keys
    services = build_services(settings)
    try:
        migrate.upgrade(services.db)
        ctx = Context(actor=SYSTEM_ACTOR, origin=LOCAL_ORIGIN)
        admin = services.identity.bootstrap_admin(ctx, admin_name, password)
        services.checkpoints.key()  # create the checkpoint signing key now, mode 0600
        services.mfa_secrets.keys.ring()  # and the TOTP encryption key (unless given)
        return InitResult(
            home=str(settings.home.resolve()),
            database=services.db.dialect,
            revision=migrate.head_revision(),
            admin=admin,
            generated_password=None if given else password,
        )
    finally:
        services.close()


def upgrade(settings: Settings) -> UpgradeResult:
    """Migrate the database to the newest schema this release ships."""
    if settings.database_url is None:
        private_folder(settings.home)
    services = build_services(settings)
    try:
        before = migrate.current_revision(services.db)
        migrate.upgrade(services.db)
        after = migrate.head_revision()
        ctx = Context(actor=SYSTEM_ACTOR, origin=LOCAL_ORIGIN)
        if before != after:
            services.audit.record_alone(
                ctx,
                AuditEntry(
                    action="db.upgrade",
                    resource_type="database",
                    resource_id=services.db.dialect,
                    details={"before": before, "after": after},
                ),
            )
        # TOTP secrets of an installation from before encryption at rest are sealed now.
        services.mfa_secrets.seal_plaintext(ctx)
        blobs = _encrypt_legacy_blobs(services, ctx)
        return UpgradeResult(
            services.db.dialect,
            before,
            after,
            blobs_encrypted=blobs.encrypted if blobs else 0,
            blobs_failed=tuple(blobs.failed) if blobs else (),
        )
    finally:
        services.close()


def _encrypt_legacy_blobs(services: Services, ctx: Context) -> BlobEncryption | None:
    """Blobs an earlier release stored in plain are encrypted in place (audited when any
    were, or when any fail their digest)."""
    if not isinstance(services.blobs, EncryptedBlobStore):
        return None
    summary = encrypt_legacy_blobs(services.blobs)
    if summary.encrypted or summary.failed:
        services.audit.record_alone(
            ctx,
            AuditEntry(
                action="storage.blobs.encrypt",
                resource_type="blob_store",
                resource_id=summary.store[:200],
                details={"encrypted": summary.encrypted, "failed": summary.failed[:50]},
            ),
        )
    return summary


def status(settings: Settings) -> UpgradeResult:
    """The database's revision and the newest one (``before`` is the current revision)."""
    services = build_services(settings)
    try:
        return UpgradeResult(
            services.db.dialect,
            migrate.current_revision(services.db),
            migrate.head_revision(),
        )
    finally:
        services.close()


def mfa_rotate_key(settings: Settings) -> RotationResult:
    """Re-encrypt every TOTP secret with a new key (MEDOPS_MFA_KEY: with its first key)."""
    services = build_services(settings)
    try:
        return services.mfa_secrets.rotate(Context(actor=SYSTEM_ACTOR, origin=LOCAL_ORIGIN))
    finally:
        services.close()


def audit_checkpoint(settings: Settings, accept: str | None = None) -> dict[str, object] | None:
    """Sign a checkpoint of the records since the last one (None: nothing new); with
    ``accept``, sign it even though some of its records fail verification (the reason is
    recorded)."""
    services = build_services(settings)
    try:
        return services.checkpoints.checkpoint(accept=accept)
    finally:
        services.close()


def audit_verify(
    settings: Settings, exported: Path | None = None, public_key_file: Path | None = None
) -> Report:
    """Verify every chain, checkpoint and bound row straight from the database (no server,
    no login).

    The public key comes from ``public_key_file`` (PEM), else the signing key file, else the
    exported checkpoints; the exported folder defaults to MEDOPS_AUDIT_CHECKPOINT_DIR. The
    records' MACs are checked when the signing key file is at hand (and matches that key)."""
    folder = exported or settings.audit_checkpoint_dir
    if folder is not None and not folder.is_dir():
        reason = "is not a folder of exported checkpoints"
        raise InvalidInputError(f"{folder} {reason}", errors=[FieldError("checkpoints", reason)])
    public_key = _public_key(settings, folder, public_key_file)
    services = build_services(settings)
    try:
        report, _records = verify_database(
            services.db,
            rows=check_rows,
            exported=folder,
            public_key=public_key,
            mac_key=_mac_key(settings, public_key),
        )
        return report
    finally:
        services.close()


def _mac_key(settings: Settings, public_key: Ed25519PublicKey | None) -> bytes | None:
    """The records' MAC key, when the signing key file exists and is the verifying key's."""
    key_file = settings.resolved_audit_key_file
    if public_key is None or not key_file.exists():
        return None
    private = signing.load_or_create(key_file)
    if signing.public_bytes(private.public_key()) != signing.public_bytes(public_key):
        return None
    return signing.mac_key(private)


def _public_key(
    settings: Settings, folder: Path | None, public_key_file: Path | None
) -> Ed25519PublicKey | None:
    if public_key_file is not None:
        try:
            key = serialization.load_pem_public_key(public_key_file.read_bytes())
        except (OSError, ValueError) as exc:
            reason = f"cannot be read as a PEM public key ({type(exc).__name__})"
            raise InvalidInputError(
                f"{public_key_file} {reason}", errors=[FieldError("public_key", reason)]
            ) from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInputError(f"{public_key_file} is not an Ed25519 public key")
        return key
    key_file = settings.resolved_audit_key_file
    if key_file.exists():
        return signing.load_or_create(key_file).public_key()
    for copy in read_exported(folder) if folder else []:
        return signing.public_from_b64(copy["public_key"])
    return None


def audit_public_key(settings: Settings) -> str:
    """The checkpoint verification key as PEM, to hand to auditors."""
    key = signing.load_or_create(settings.resolved_audit_key_file).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
