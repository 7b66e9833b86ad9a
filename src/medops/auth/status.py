"""What an account's row does not say about it: when it last signed in, and whether its
logins are slowed or its re-authentication locked (what ``IdentityService.unlock`` clears).

Read-only, for whoever may list accounts (``users:read``): the times come from the login
tokens' creation (every CLI login and browser session makes one; expired ones are swept, so
"last login" is the latest login still on record) and the throttle rows under the account's
keys (``throttle.account_key``, ``throttle.reauth_key``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from medops.auth import throttle
from medops.auth.tables import ApiToken, LoginThrottle, User
from medops.db.engine import Database

LOGIN_KINDS = ("login", "session")


@dataclass(frozen=True)
class AccountStatus:
    """One account's last sign-in on record, failed logins counted against it, and until
    when its re-authentication is locked (None: not locked)."""

    last_login_at: datetime | None = None
    failed_logins: int = 0
    reauth_locked_until: datetime | None = None

    def slowed_or_locked(self, now: datetime) -> bool:
        """Whether ``unlock`` has something to clear."""
        locked = self.reauth_locked_until is not None and self.reauth_locked_until > now
        return locked or self.failed_logins > 0


def account_status(db: Database) -> dict[str, AccountStatus]:
    """Every account's status, by username (accounts with nothing to report are absent)."""
    with db.session() as session:
        users = {str(uid): name for uid, name in session.execute(select(User.id, User.username))}
        logins = {
            str(uid): at
            for uid, at in session.execute(
                select(ApiToken.user_id, func.max(ApiToken.created_at))
                .where(ApiToken.kind.in_(LOGIN_KINDS))
                .group_by(ApiToken.user_id)
            )
        }
        keys = {throttle.account_key(name): name for name in users.values()}
        keys |= {throttle.reauth_key(uid): name for uid, name in users.items()}
        rows = session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(list(keys))))
        failed: dict[str, int] = {}
        locked: dict[str, datetime | None] = {}
        for row in rows:
            name = keys[row.key]
            if row.key.startswith("account:"):
                failed[name] = row.failures
            else:
                locked[name] = row.blocked_until
    out: dict[str, AccountStatus] = {}
    for uid, name in users.items():
        last = logins.get(uid)
        if last is None and name not in failed and name not in locked:
            continue
        out[name] = AccountStatus(
            last_login_at=last,
            failed_logins=failed.get(name, 0),
            reauth_locked_until=locked.get(name),
        )
    return out
