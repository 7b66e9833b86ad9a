"""Retention keeps the newest backup of each of the last days, weeks and months that have
one (and always the newest); prune removes the others and every object no kept backup
needs. The clock is injected, so a year of backups is made in a moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from medops.backup import retention
from medops.backup.service import create_backup, prune_backups, verify_backup
from medops.backup.stores import blob_backend, stored_keys
from medops.config import Settings
from medops.storage.encrypted import open_blob_store
from medops.testing import FixedClock
from tests.helpers.datastore import random_bytes

START = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)  # a Thursday


def _at(days: float, hours: float = 0) -> datetime:
    return START + timedelta(days=days, hours=hours)


def test_retention_keeps_the_newest_of_each_period() -> None:
    backups = [
        ("a", _at(0)),  # Thu, week 1, January
        ("b", _at(0, 12)),  # same day, newer
        ("c", _at(1)),  # Fri
        ("d", _at(4)),  # Mon, week 2
        ("e", _at(5)),  # Tue
        ("f", _at(40)),  # February
        ("g", _at(41)),
    ]
    assert retention.keep(backups, daily=2, weekly=0, monthly=0) == {"g", "f"}
    assert retention.keep(backups, daily=0, weekly=2, monthly=0) == {"g", "e"}
    assert retention.keep(backups, daily=0, weekly=0, monthly=2) == {"g", "e"}
    assert retention.keep(backups, daily=0, weekly=3, monthly=0) == {"g", "e", "c"}
    assert retention.keep(backups, daily=5, weekly=0, monthly=0) == {"g", "f", "e", "d", "c"}
    assert retention.keep(backups, daily=0, weekly=0, monthly=0) == {"g"}  # the newest stays
    assert retention.keep([], daily=1, weekly=1, monthly=1) == set()


def test_prune_removes_old_backups_and_the_objects_only_they_needed(
    small: Settings, repo: Path
) -> None:
    settings = small.model_copy(
        update={"backup_keep_daily": 2, "backup_keep_weekly": 1, "backup_keep_monthly": 2}
    )
    clock = FixedClock(_at(0))
    made: dict[str, str] = {}
    blobs = open_blob_store(settings)
    only_first: set[str] = set()
    for name, when in (("jan-1", _at(0)), ("jan-2", _at(1)), ("feb", _at(40)),
                       ("feb-next", _at(41)), ("feb-last", _at(42))):  # fmt: skip
        clock.set(when)
        if name == "jan-1":  # an object that only the first backup holds (and its key record)
            before = set(stored_keys(blob_backend(settings)))
            blobs.put(random_bytes(3000, 55))
            only_first = set(stored_keys(blob_backend(settings))) - before
        made[name] = create_backup(settings, targets=[str(repo)], clock=clock).id
        if name == "jan-1":
            for key in only_first:
                blob_backend(settings).delete(key)

    dry = prune_backups(settings, targets=[str(repo)], dry_run=True)[0]
    assert dry.objects_removed == len(only_first) > 0
    assert len(list((repo / "backups").iterdir())) == 5

    result = prune_backups(settings, targets=[str(repo)])[0]
    # daily: feb-last, feb-next; weekly: feb-last; monthly: feb-last (February), jan-2 (January)
    assert set(result.kept) == {made["feb-last"], made["feb-next"], made["jan-2"]}
    assert set(result.removed) == {made["jan-1"], made["feb"]}
    assert result.objects_removed == len(only_first)
    for backup_id in result.kept:
        assert verify_backup(settings, backup_id, source=str(repo)).ok
    assert prune_backups(settings, targets=[str(repo)])[0].removed == []
