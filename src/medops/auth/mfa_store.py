"""Keeping every stored TOTP secret sealed: encrypting legacy plaintext, and key rotation.

Both run as the local ``system`` actor (the server at start, ``medops db upgrade`` and
``medops mfa rotate-key`` on the server's own files) and each change is audited with counts
and key ids, never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth import mfa_keys
from medops.auth.tables import User
from medops.context import Context
from medops.db.engine import Database
from medops.errors import ConflictError
from medops.logs import get_logger

log = get_logger("medops.auth.mfa")
MAX_PASSES = 5


@dataclass(frozen=True)
class RotationResult:
    """What a key rotation did."""

    key_id: str
    retired_key_ids: list[str]
    secrets_reencrypted: int
    key_source: str


class MfaSecretStore:
    """Whole-table operations on the sealed TOTP secrets."""

    def __init__(self, db: Database, audit: AuditService, keys: mfa_keys.MfaKeys) -> None:
        self._db = db
        self._audit = audit
        self.keys = keys

    def seal_plaintext(self, ctx: Context) -> int:
        """Encrypt every secret still stored in plaintext (an installation from before
        encryption at rest); returns how many. Audited as ``mfa.encrypt-secrets``."""
        with self._db.session() as session:
            waiting = session.scalar(
                select(User.id).where(User.mfa_secret.is_not(None), ~User.mfa_secret.like("v1.%"))
            )
        if waiting is None:
            return 0
        ring = self.keys.ring()
        assert ring is not None
        with self._db.transaction() as session:
            users = session.scalars(
                select(User)
                .where(User.mfa_secret.is_not(None), ~User.mfa_secret.like("v1.%"))
                .with_for_update()
            ).all()
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="mfa.encrypt-secrets",
                    resource_type="users",
                    details={"secrets_encrypted": len(users), "key_id": ring.current_id},
                ),
            )
            for user in users:
                assert user.mfa_secret is not None
                user.mfa_secret = ring.seal(user.id, user.mfa_secret)
        log.info("plaintext TOTP secrets encrypted", count=len(users))
        return len(users)

    def unreadable(self) -> int:
        """How many stored secrets are sealed with a key this installation does not hold."""
        ring = self.keys.ring(create=False)
        with self._db.session() as session:
            stored = session.scalars(select(User.mfa_secret).where(User.mfa_secret.is_not(None)))
            ids = [mfa_keys.sealed_key_id(s) for s in stored if s and mfa_keys.is_sealed(s)]
        held = set(ring.ids()) if ring else set()
        return sum(1 for i in ids if i not in held)

    def check_at_start(self, ctx: Context) -> None:
        """At server start: seal legacy plaintext, and say loudly when secrets cannot be read."""
        self.seal_plaintext(ctx)
        lost = self.unreadable()
        if lost:
            log.error(
                "TOTP secrets sealed with a key this server does not hold: those users cannot "
                "log in with a code; give this server the key (MEDOPS_MFA_KEY or "
                "MEDOPS_MFA_KEY_FILE) or reset their MFA",
                count=lost,
            )

    def rotate(self, ctx: Context) -> RotationResult:
        """Re-encrypt every secret with a new current key, keeping the old keys readable until
        done. With a key file: a new key is generated, written first in the file with the old
        ones after it, every secret re-encrypted, then the old ones dropped. With
        MEDOPS_MFA_KEY the variable cannot be rewritten: put the new key first yourself, then
        this re-encrypts every secret with it, and the old keys can be removed."""
        ring = self.keys.ring()
        assert ring is not None
        if self.keys.from_environment:
            source = "MEDOPS_MFA_KEY"
            current, retired = ring.current, list(ring.others)
        else:
            source = str(self.keys.key_file)
            current, retired = mfa_keys.new_key(), [ring.current, *ring.others]
            mfa_keys.write_key_file(self.keys.key_file, [current, *retired])
        ring = self.keys.ring()
        assert ring is not None
        assert ring.current == current
        total = 0
        # A secret sealed by a process that had not yet seen the new key may commit after a
        # pass: pass again until none is left under an old key.
        for attempt in range(MAX_PASSES):
            done = self._reencrypt(ctx, ring, source, retired, always_audit=attempt == 0)
            total += done
            if done == 0:
                break
        else:
            raise ConflictError("TOTP secrets kept being written with an old key; run it again")
        if not self.keys.from_environment:
            mfa_keys.write_key_file(self.keys.key_file, [current])
        return RotationResult(
            key_id=mfa_keys.key_id(current),
            retired_key_ids=[mfa_keys.key_id(k) for k in retired],
            secrets_reencrypted=total,
            key_source=source,
        )

    def _reencrypt(
        self,
        ctx: Context,
        ring: mfa_keys.Keyring,
        source: str,
        retired: list[bytes],
        *,
        always_audit: bool,
    ) -> int:
        with self._db.transaction() as session:
            users = [
                u
                for u in session.scalars(
                    select(User).where(User.mfa_secret.is_not(None)).with_for_update()
                )
                if u.mfa_secret and mfa_keys.sealed_key_id(u.mfa_secret) != ring.current_id
            ]
            if users or always_audit:
                self._audit.record(
                    session,
                    ctx,
                    AuditEntry(
                        action="mfa.rotate-key",
                        resource_type="mfa-key",
                        resource_id=ring.current_id,
                        details={
                            "secrets_reencrypted": len(users),
                            "retired_key_ids": [mfa_keys.key_id(k) for k in retired],
                            "source": source,
                        },
                    ),
                )
            for user in users:
                assert user.mfa_secret is not None
                plain = (
                    self.keys.open(user.id, user.mfa_secret)
                    if mfa_keys.is_sealed(user.mfa_secret)
                    else user.mfa_secret
                )
                user.mfa_secret = ring.seal(user.id, plain)
        return len(users)
