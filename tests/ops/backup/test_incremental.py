"""The backup repository is content-addressed: a second backup copies only the objects that
are new since the first, and reuses the rest; two targets each get their own copy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from medops.backup.service import create_backup, list_backups, verify_backup
from medops.backup.stores import blob_backend, data_backend, stored_keys
from medops.config import Settings
from medops.storage.encrypted import open_blob_store
from medops.testing import FixedClock
from tests.helpers.backup import add_data_object, manifest_of, stored_objects
from tests.helpers.datastore import random_bytes


def test_a_second_backup_copies_only_new_objects(
    small: Settings, repo: Path, tmp_path: Path, clock: FixedClock
) -> None:
    held = stored_objects(small)  # 2 blobs, 2 dataset objects, each with its key record
    first = create_backup(small, targets=[str(repo)], clock=clock)
    assert first.objects == held
    assert (first.targets[0].copied, first.targets[0].reused) == (held, 0)

    before = set(stored_keys(data_backend(small))) | set(stored_keys(blob_backend(small)))
    add_data_object(small, seed=7)
    open_blob_store(small).put(random_bytes(1000, 8))
    after = set(stored_keys(data_backend(small))) | set(stored_keys(blob_backend(small)))
    new_keys = after - before
    clock.advance(timedelta(hours=1))
    second = create_backup(small, targets=[str(repo)], clock=clock)

    assert second.objects == held + len(new_keys)
    assert second.targets[0].copied == len(new_keys)
    assert second.targets[0].reused == held
    stored = [p for p in (repo / "objects").rglob("*") if p.is_file()]
    assert len(stored) == second.objects
    # Both backups are whole on their own: each verifies, and the first lists only its own.
    assert verify_backup(small, first.id, source=str(repo)).ok
    assert verify_backup(small, second.id, source=str(repo)).ok
    assert len(manifest_of(repo, first.id).digests()) == held
    listed = list_backups(small, targets=[str(repo)])
    assert [b.id for b in listed.backups] == [second.id, first.id]


def test_every_target_gets_the_backup_and_the_rule_counts_them(
    small: Settings, tmp_path: Path, clock: FixedClock
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    created = create_backup(small, targets=[str(one), str(two)], clock=clock)
    held = stored_objects(small)
    assert [t.copied for t in created.targets] == [held, held]
    assert created.rule.copies == 3
    assert not created.rule.met  # two folders: one medium, nothing offsite
    assert "1 of 2 media" in created.rule.reason
    assert list_backups(small, targets=[str(one), str(two)]).backups[0].targets == [
        str(one),
        str(two),
    ]
