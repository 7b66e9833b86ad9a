"""Local administration on the server's own files: the only actions that bypass the API.

``init`` runs before any user exists (so nobody could authenticate to an API) and ``upgrade``
must run before the API can serve. Both act as the local ``system`` actor, are audited, and
are what ``medops init`` and ``medops db upgrade`` call.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from medops.audit import signing
from medops.audit.checkpoints import verify_database
from medops.audit.schemas import AuditEntry
from medops.audit.verify import Report
from medops.auth.passwords import check_policy
from medops.auth.schemas import USERNAME_PATTERN, UserOut
from medops.config import Settings
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.db import migrate
from medops.errors import FieldError, InvalidInputError
from medops.services import build_services

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
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.home.chmod(0o700)
    services = build_services(settings)
    try:
        migrate.upgrade(services.db)
        ctx = Context(actor=SYSTEM_ACTOR, origin=LOCAL_ORIGIN)
        admin = services.identity.bootstrap_admin(ctx, admin_name, password)
        services.checkpoints.key()  # create the checkpoint signing key now, mode 0600
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
        settings.home.mkdir(parents=True, exist_ok=True)
    services = build_services(settings)
    try:
        before = migrate.current_revision(services.db)
        migrate.upgrade(services.db)
        after = migrate.head_revision()
        if before != after:
            services.audit.record_alone(
                Context(actor=SYSTEM_ACTOR, origin=LOCAL_ORIGIN),
                AuditEntry(
                    action="db.upgrade",
                    resource_type="database",
                    resource_id=services.db.dialect,
                    details={"before": before, "after": after},
                ),
            )
        return UpgradeResult(services.db.dialect, before, after)
    finally:
        services.close()


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


def audit_checkpoint(settings: Settings) -> dict[str, object] | None:
    """Sign a checkpoint of the records since the last one (None: nothing new)."""
    services = build_services(settings)
    try:
        return services.checkpoints.checkpoint()
    finally:
        services.close()


def audit_verify(settings: Settings, exported: Path | None = None) -> Report:
    """Verify every chain and checkpoint straight from the database (no server, no login)."""
    services = build_services(settings)
    try:
        key_file = settings.resolved_audit_key_file
        public_key = signing.load_or_create(key_file).public_key() if key_file.exists() else None
        report, _records = verify_database(services.db, exported=exported, public_key=public_key)
        return report
    finally:
        services.close()
