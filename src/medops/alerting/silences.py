"""Silences and inhibition: which open alerts are tracked but not notified.

A silence mutes the alerts its matchers select from ``starts_at`` until ``ends_at`` (or until
someone expires it); author and reason are required, creation and expiry are audited. An
inhibition (``AlertingConfig.inhibitions``) mutes target alerts while a source alert with the
same values of the ``equal`` labels fires, as Alertmanager's inhibit_rules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from medops.alerting.records import SilenceOut
from medops.alerting.routing import matches
from medops.alerting.schemas import Inhibition, Matcher
from medops.alerting.tables import AlertSilence


def active(session: Session, now: datetime) -> list[list[Matcher]]:
    """The matchers of every silence in force at ``now``."""
    rows = session.scalars(
        select(AlertSilence).where(
            AlertSilence.starts_at <= now,
            AlertSilence.ends_at > now,
            AlertSilence.expired_at.is_(None),
        )
    )
    return [matchers_of(row) for row in rows]


def matchers_of(row: AlertSilence) -> list[Matcher]:
    """A stored silence's matchers."""
    return [Matcher.model_validate(m) for m in json.loads(row.matchers)]


def silenced(silences: Sequence[list[Matcher]], labels: dict[str, str]) -> bool:
    """Whether any silence selects ``labels``."""
    return any(matches(matchers, labels) for matchers in silences)


def inhibited(
    rules: Sequence[Inhibition], sources: Sequence[dict[str, str]], labels: dict[str, str]
) -> bool:
    """Whether a firing alert (its labels among ``sources``) inhibits one with ``labels``."""
    for rule in rules:
        if not matches(rule.target, labels):
            continue
        for source in sources:
            if source is labels or source == labels:
                continue
            if matches(rule.source, source) and all(
                source.get(name, "") == labels.get(name, "") for name in rule.equal
            ):
                return True
    return False


def listed(session: Session, now: datetime, *, everything: bool = False) -> list[SilenceOut]:
    """Silences, newest first: those not yet over, or all with ``everything``."""
    query = select(AlertSilence).order_by(AlertSilence.created_at.desc())
    if not everything:
        query = query.where(AlertSilence.expired_at.is_(None), AlertSilence.ends_at > now)
    return [out(row, now) for row in session.scalars(query)]


def out(row: AlertSilence, now: datetime) -> SilenceOut:
    """A stored silence as answered."""
    return SilenceOut(
        id=row.id,
        matchers=matchers_of(row),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        author=row.author,
        reason=row.reason,
        created_at=row.created_at,
        expired_at=row.expired_at,
        expired_by=row.expired_by,
        active=row.expired_at is None and row.starts_at <= now < row.ends_at,
    )
