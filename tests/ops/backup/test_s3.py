"""A backup to an S3-compatible remote (a real moto_server process on the loopback) with a
local folder next to it meets the 3-2-1 rule, verifies and restores from the bucket."""

from __future__ import annotations

from pathlib import Path

from medops.backup.service import create_backup, list_backups, restore_backup, verify_backup
from medops.config import Settings
from medops.testing import FixedClock
from tests.helpers.backup import new_machine, store_files, stored_objects
from tests.helpers.s3 import MotoServer


def test_backup_to_s3_and_a_folder_restores_from_the_bucket(
    small: Settings,
    repo: Path,
    tmp_path: Path,
    clock: FixedClock,
    s3_server: MotoServer,
    s3_target: str,
) -> None:
    settings = small.model_copy(update={"data_s3_endpoint_url": s3_server.endpoint})
    created = create_backup(settings, targets=[str(repo), s3_target], clock=clock)
    assert created.ok
    held = stored_objects(settings)
    assert [t.copied for t in created.targets] == [held, held]
    assert created.rule.met  # live + folder + bucket; disk and object storage; one offsite
    again = create_backup(settings, targets=[s3_target], clock=clock)
    assert (again.targets[0].copied, again.targets[0].reused) == (0, held)
    listed = list_backups(settings, targets=[s3_target])
    assert {b.id for b in listed.backups} == {created.id, again.id}
    assert verify_backup(settings, created.id, source=s3_target).ok

    target = new_machine(settings, tmp_path / "new", f"sqlite:///{tmp_path / 'new.db'}")
    restored = restore_backup(target, created.id, source=s3_target)
    assert restored.chain_heads_match
    assert store_files(target.blob_dir) == store_files(settings.blob_dir)
    assert store_files(target.resolved_data_dir) == store_files(settings.resolved_data_dir)
