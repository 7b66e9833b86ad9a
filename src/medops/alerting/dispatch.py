"""The dispatcher: sends the outbox's due notifications, once, across replicas and restarts.

``run_once(now)`` claims each due row (``status='queued'``, ``next_attempt_at <= now``, not
claimed by a live claim) with one conditional UPDATE that moves ``claimed_until`` forward: the
database answers one replica with rowcount 1, so one replica sends each row, on PostgreSQL and
SQLite alike. The row is sent outside any transaction, then marked ``sent`` (audited as
``alert.notification.sent``), or its attempt is recorded: ``attempts + 1``, ``last_error`` (the
receiver's safe message: a status, a refused connection; never a secret or the payload) and
``next_attempt_at = now + min(30 s x 2^attempts, 1 h)``. After the receiver's ``max_attempts``
the row is ``dead`` (audited as ``alert.notification.dead``). The default of 12 attempts keeps
trying for about five hours (30 s, 1, 2, 4, 8, 16, 32 min, then hourly), so a receiver down
for an hour gets everything once when it is back; ``receiver_failing`` alerts on the way.

Delivery is at least once in one corner: a process that dies after its peer took a
notification and before it marked the row sees it sent again once the claim lapses
(``CLAIM_SECONDS``); webhooks carry the row id as ``Idempotency-Key`` (PagerDuty and Opsgenie
de-duplicate by group key, mail by ``Message-ID``) so the peer can drop the repeat.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.sql.elements import ColumnElement

from medops.alerting.links import Links, load_key
from medops.alerting.receivers import DeliveryError, Receiver, Secrets, build
from medops.alerting.records import DispatchSummary
from medops.alerting.schemas import NotificationPayload, ReceiverConfig
from medops.alerting.tables import AlertNotification
from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService, exempt_from_audit_guard
from medops.clock import Clock
from medops.config import Settings
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.db.engine import Database
from medops.logs import get_logger

if TYPE_CHECKING:
    from medops.services import Services

BASE_BACKOFF_SECONDS = 30
MAX_BACKOFF_SECONDS = 3600
CLAIM_SECONDS = 120  # longer than any one send (HTTP and SMTP time out after 10 s)
BATCH = 100
SYSTEM_CONTEXT = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))
log = get_logger("medops.alerting.dispatch")

ReceiverSource = Callable[[], Sequence[ReceiverConfig]]
ReceiverFactory = Callable[[ReceiverConfig, Secrets], Receiver]


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt (1, 2, ...)."""
    exponent = min(max(attempts - 1, 0), 20)
    return timedelta(seconds=min(BASE_BACKOFF_SECONDS * 2**exponent, MAX_BACKOFF_SECONDS))


def default_holder() -> str:
    """This process: host and pid."""
    return f"{socket.gethostname()}-{os.getpid()}"[:64]


class Dispatcher:
    """Sends due notifications through the configured receivers."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        settings: Settings,
        receivers: ReceiverSource,
        *,
        holder: str | None = None,
        factory: ReceiverFactory = build,
        batch: int = BATCH,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._settings = settings
        self._receivers = receivers
        self._factory = factory
        self._secrets = Secrets(settings.secrets_dir)
        self.holder = holder or default_holder()
        self._batch = batch

    def run_once(self, now: datetime | None = None) -> DispatchSummary:
        """Claim and send every due row (up to the batch size). Without a given ``now``, each
        claim is made at the clock's time when it is made: a batch whose sends take longer
        than CLAIM_SECONDS must not claim its last rows with claims that have already lapsed
        (another replica could then claim and send them too)."""
        fixed = now
        now = now or self._clock.now()
        summary = DispatchSummary()
        configs = {c.name: c for c in self._receivers()}
        key = load_key(self._settings)
        for row_id in self._due(now):
            now = fixed or self._clock.now()
            if not self._claim(row_id, now):
                summary.skipped += 1
                continue
            summary.claimed += 1
            outcome = self._deliver(row_id, configs, key, now)
            setattr(summary, outcome, getattr(summary, outcome) + 1)
        return summary

    def _due(self, now: datetime) -> list[str]:
        with self._db.session() as session:
            return list(
                session.scalars(
                    select(AlertNotification.id)
                    .where(_claimable(now))
                    .order_by(AlertNotification.next_attempt_at, AlertNotification.created_at)
                    .limit(self._batch)
                )
            )

    def _claim(self, row_id: str, now: datetime) -> bool:
        """One conditional UPDATE: True when this process holds the row now."""
        with self._db.transaction() as session:
            exempt_from_audit_guard(session)  # bookkeeping, not an action
            result = session.execute(
                update(AlertNotification)
                .where(AlertNotification.id == row_id, _claimable(now))
                .values(
                    claimed_by=self.holder, claimed_until=now + timedelta(seconds=CLAIM_SECONDS)
                )
                .execution_options(synchronize_session=False)
            )
            assert isinstance(result, CursorResult)
            return result.rowcount == 1

    def _deliver(
        self, row_id: str, configs: dict[str, ReceiverConfig], key: bytes, now: datetime
    ) -> str:
        with self._db.session() as session:
            row = session.get(AlertNotification, row_id)
            assert row is not None
            receiver_name, text = row.receiver, row.payload
        config = configs.get(receiver_name)
        try:
            if config is None:
                raise DeliveryError(f"receiver {receiver_name!r} is not configured")
            payload = NotificationPayload.model_validate_json(text)
            links = Links.for_settings(self._settings, key, now, row_id)
            self._factory(config, self._secrets).send(payload, links)
        except DeliveryError as exc:
            limit = config.max_attempts if config is not None else 12
            return self._failed(row_id, exc.message, limit, now)
        except Exception as exc:  # a bug in a receiver must not stop the others
            log.exception("receiver raised", receiver=receiver_name)
            limit = config.max_attempts if config is not None else 12
            return self._failed(row_id, f"internal error: {type(exc).__name__}", limit, now)
        self._sent(row_id, receiver_name, now)
        return "sent"

    def _holds(self, row: AlertNotification | None) -> bool:
        return row is not None and row.claimed_by == self.holder

    def _sent(self, row_id: str, receiver: str, now: datetime) -> None:
        with self._db.transaction() as session:
            row = session.get(AlertNotification, row_id, with_for_update=True)
            if row is None or not self._holds(row) or row.status != "queued":
                return
            row.status, row.sent_at, row.attempts = "sent", now, row.attempts + 1
            row.claimed_until, row.last_error = None, None
            self._audit.record(session, SYSTEM_CONTEXT, _entry("sent", row, receiver))

    def _failed(self, row_id: str, error: str, limit: int, now: datetime) -> str:
        with self._db.transaction() as session:
            row = session.get(AlertNotification, row_id, with_for_update=True)
            if row is None or not self._holds(row) or row.status != "queued":
                return "skipped"
            exempt_from_audit_guard(session)  # an attempt is bookkeeping; dying is audited
            row.attempts += 1
            row.last_error = error[:500]
            row.claimed_until = None
            if row.attempts >= limit:
                row.status = "dead"
                self._audit.record(session, SYSTEM_CONTEXT, _entry("dead", row, row.receiver))
                log.warning("notification dead", receiver=row.receiver, attempts=row.attempts)
                return "dead"
            row.next_attempt_at = now + backoff(row.attempts)
            log.info("notification failed; retried later", receiver=row.receiver,
                     attempts=row.attempts, error=row.last_error)  # fmt: skip
            return "failed"


def _claimable(now: datetime) -> ColumnElement[bool]:
    return and_(
        AlertNotification.status == "queued",
        AlertNotification.next_attempt_at <= now,
        or_(AlertNotification.claimed_until.is_(None), AlertNotification.claimed_until < now),
    )


def _entry(what: str, row: AlertNotification, receiver: str) -> AuditEntry:
    details = {"receiver": receiver, "kind": row.kind, "group_key": row.group_key,
               "attempts": row.attempts}  # fmt: skip
    if what == "dead":
        details["last_error"] = row.last_error
    return AuditEntry(
        action=f"alert.notification.{what}",
        resource_type="alert_notification",
        resource_id=row.id,
        details=details,
    )


def receivers_of(services: Services) -> ReceiverSource:
    """The receivers of the routing configuration in force (the alert engine's
    ``AlertService.config()``), read at each run so a change applies at the next one."""

    def source() -> Sequence[ReceiverConfig]:
        alerts = getattr(services, "alerts", None)  # the engine's service, where installed
        if alerts is None:
            return []
        return list(alerts.config().config.receivers)

    return source


def dispatcher_for(services: Services, holder: str | None = None) -> Dispatcher:
    """The dispatcher of an installation's services."""
    return Dispatcher(
        services.db,
        services.clock,
        services.audit,
        services.settings,
        receivers_of(services),
        holder=holder,
    )
