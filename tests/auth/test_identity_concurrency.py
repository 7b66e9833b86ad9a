"""Invariants of the identity domain hold under concurrent requests."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from medops.audit.schemas import AuditEntry
from medops.auth.tables import User
from medops.core.permissions import Role
from medops.errors import ConflictError
from medops.services import Services
from tests.helpers.people import SYSTEM_CTX, make_user


def _race_to_disable(services: Services, names: tuple[str, str]) -> list[str]:
    barrier = threading.Barrier(len(names))
    outcomes: list[str] = []

    def disable(target: str) -> None:
        barrier.wait()
        try:
            services.identity.disable_user(SYSTEM_CTX, target)
            outcomes.append("disabled")
        except ConflictError:
            outcomes.append("refused")

    threads = [threading.Thread(target=disable, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_two_admins_disabling_each_other_at_once_leave_one_active(services: Services) -> None:
    """The last-active-admin rule holds when both disables race (row locks / BEGIN IMMEDIATE)."""
    for round_ in range(5):
        pair = (f"admin-a{round_}", f"admin-b{round_}")
        for name in pair:
            make_user(services, name, Role.ADMIN)
        with services.db.transaction() as session:  # only this round's two admins are active
            services.audit.record(session, SYSTEM_CTX, AuditEntry(action="test.setup"))
            for user in session.scalars(select(User).where(User.role == Role.ADMIN)):
                if user.username not in pair:
                    user.disabled_at = user.disabled_at or services.clock.now()
        assert sorted(_race_to_disable(services, pair)) == ["disabled", "refused"]
        with services.db.session() as session:
            active = session.scalar(
                select(func.count()).where(User.role == Role.ADMIN, User.disabled_at.is_(None))
            )
        assert active == 1
