"""Queue notifications in the outbox as the engine does (the tests of the dispatcher insert
rows themselves), and a dispatcher over the tests' services."""

from __future__ import annotations

import uuid
from datetime import datetime

from medops.alerting.dispatch import Dispatcher
from medops.alerting.schemas import ReceiverConfig
from medops.alerting.tables import AlertNotification
from medops.audit.service import exempt_from_audit_guard
from medops.core.canonical import canonical_json
from medops.db.engine import Database
from medops.services import Services
from tests.helpers.notify_peers import alert, payload

HOOK_KEY = "whsec-dispatch-0123456789"


def queue(db: Database, now: datetime, count: int, receiver: str = "ops-hook") -> list[str]:
    """``count`` queued rows for ``receiver``, due at ``now``; their ids."""
    ids = []
    with db.transaction() as session:
        exempt_from_audit_guard(session)  # the engine audits the transition that queues them
        for n in range(count):
            row_id = uuid.uuid4().hex
            group = f'{{}}:{{alertname="AccuracyDrop",deployment="d{n}"}}'
            body = payload(receiver=receiver, group_key=group, alerts=[alert(ident=f"a{n}")])
            session.add(
                AlertNotification(
                    id=row_id,
                    dedup_key=f"{group}|firing|0|{receiver}|{row_id}",
                    receiver=receiver,
                    kind="firing",
                    group_key=group,
                    payload=canonical_json(body.model_dump(mode="json")),
                    status="queued",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            ids.append(row_id)
    return ids


def hook(url: str, max_attempts: int = 12) -> ReceiverConfig:
    return ReceiverConfig(
        name="ops-hook", kind="webhook", url=url, secret="ops-hook", max_attempts=max_attempts
    )


def dispatcher(services: Services, receivers: list[ReceiverConfig], holder: str) -> Dispatcher:
    return Dispatcher(
        services.db, services.clock, services.audit, services.settings,
        lambda: receivers, holder=holder,
    )  # fmt: skip


def rows(db: Database) -> dict[str, AlertNotification]:
    with db.session() as session:
        return {r.id: r for r in session.query(AlertNotification).all()}
