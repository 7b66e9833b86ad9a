"""Shared pieces of the alerting tests: a person's context, a settable signal source (the
documented ``AlertService.signal_sources`` hook, as the SLO work uses it), a routing config."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from medops.alerting.defaults import DEFAULT_INHIBITIONS
from medops.alerting.schemas import (
    AlertingConfig,
    EscalationLevel,
    EscalationPolicy,
    Matcher,
    NotificationPayload,
    Observation,
    ReceiverConfig,
    Route,
    Schedule,
    ScheduleOverride,
)
from medops.alerting.tables import AlertNotification
from medops.context import Actor, Context, Origin
from medops.services import Services

PERSON = Context(
    actor=Actor(user_id="u-ana", username="ana", role="ml_engineer", auth_method="token"),
    origin=Origin(source_ip="127.0.0.1"),
)


class Signals:
    """Observations a test sets, handed to the evaluator through the signal-source hook."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str | None, tuple[tuple[str, str], ...]], float] = {}

    def set(
        self, signal: str, value: float, deployment: str | None = "sepsis", **labels: str
    ) -> None:
        self.values[(signal, deployment, tuple(sorted(labels.items())))] = value

    def clear(self) -> None:
        self.values.clear()

    def __call__(self, _session: Session, _now: datetime) -> list[Observation]:
        return [
            Observation(signal=s, deployment=d, labels=dict(ls), value=v, evidence="/deployments/x")
            for (s, d, ls), v in self.values.items()
        ]


def hooked(services: Services) -> Signals:
    """Make the evaluator read only the test's signals."""
    source = Signals()
    services.alerts.signal_sources[:] = [source]
    return source


def config(start: datetime, *, group_wait: int = 30) -> AlertingConfig:
    """Ops alerts to ``ops-hook`` with the ``ops-pager`` escalation; clinical ones to
    ``clinical-hook``; everything else to ``catch-all``."""
    hook = "https://example.invalid/hook"
    return AlertingConfig(
        route=Route(
            receiver="catch-all",
            routes=[
                Route(
                    matchers=[Matcher(label="team", value="ops")],
                    receiver="ops-hook",
                    escalation="ops-pager",
                ),
                Route(
                    matchers=[Matcher(label="team", value="clinical_safety")],
                    receiver="clinical-hook",
                ),
            ],
        ),
        receivers=[
            ReceiverConfig(name=n, kind="webhook", url=hook)
            for n in ("catch-all", "ops-hook", "clinical-hook", "ops-l1", "ops-l2")
        ],
        escalation_policies=[
            EscalationPolicy(
                name="ops-pager",
                levels=[
                    EscalationLevel(receivers=["ops-l1"], schedule="ops-week", after_minutes=10),
                    EscalationLevel(receivers=["ops-l2"], after_minutes=10),
                ],
                repeat=1,
            )
        ],
        schedules=[
            Schedule(
                name="ops-week",
                users=["bo", "cy"],
                start=start,
                shift_hours=24,
                overrides=[],
                contacts={"bo": "+100", "cy": "+200", "di": "+300"},
            )
        ],
        inhibitions=list(DEFAULT_INHIBITIONS),
        group_wait_seconds=group_wait,
        group_interval_seconds=300,
        repeat_interval_seconds=3600,
    )


def override(user: str, start: datetime, end: datetime) -> ScheduleOverride:
    return ScheduleOverride(user=user, start=start, end=end)


def outbox(services: Services) -> list[tuple[str, NotificationPayload]]:
    """The queued notifications, oldest first: (dedup key, payload)."""
    with services.db.session() as session:
        rows = session.scalars(
            select(AlertNotification).order_by(
                AlertNotification.created_at, AlertNotification.dedup_key
            )
        )
        return [(r.dedup_key, NotificationPayload.model_validate_json(r.payload)) for r in rows]
