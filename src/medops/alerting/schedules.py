"""Who is on call: a schedule's rotation, overridden while an override lasts. Pure."""

from __future__ import annotations

from datetime import datetime

from medops.alerting.schemas import Schedule


def on_call(schedule: Schedule, at: datetime) -> str:
    """The user on call at ``at``: the latest-starting override that covers ``at``, else the
    rotation (``users`` in turn, ``shift_hours`` each, counted from ``start``)."""
    covering = [o for o in schedule.overrides if o.start <= at < o.end]
    if covering:
        return max(covering, key=lambda o: o.start).user
    shift = (at - schedule.start).total_seconds() // (schedule.shift_hours * 3600)
    return schedule.users[int(shift) % len(schedule.users)]


def contact(schedule: Schedule, user: str) -> str | None:
    """Where the schedule pages ``user`` (None when it names no contact)."""
    return schedule.contacts.get(user)
