"""Which backups retention keeps (pure: no storage, no clock).

Grandfather-father-son, counted in periods that hold backups (as restic's ``--keep-daily``
does): the newest backup of each of the newest ``daily`` days that have one, of the newest
``weekly`` ISO weeks, and of the newest ``monthly`` months; the newest backup is always kept.
Counting periods that hold a backup (rather than days back from today) means a site whose
backups stopped for a while never loses its last ones to a prune.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime


def _newest_per_period(
    backups: Sequence[tuple[str, datetime]], period: Callable[[datetime], object], count: int
) -> set[str]:
    kept: set[str] = set()
    seen: set[object] = set()
    for backup_id, created in sorted(backups, key=lambda b: (b[1], b[0]), reverse=True):
        key = period(created)
        if key in seen:
            continue
        if len(seen) >= count:
            break
        seen.add(key)
        kept.add(backup_id)
    return kept


def keep(
    backups: Sequence[tuple[str, datetime]], *, daily: int, weekly: int, monthly: int
) -> set[str]:
    """The ids to keep of ``(id, created_at)`` pairs."""
    if not backups:
        return set()
    newest = max(backups, key=lambda b: (b[1], b[0]))[0]
    return (
        {newest}
        | _newest_per_period(backups, lambda t: t.date(), daily)
        | _newest_per_period(backups, lambda t: t.isocalendar()[:2], weekly)
        | _newest_per_period(backups, lambda t: (t.year, t.month), monthly)
    )
