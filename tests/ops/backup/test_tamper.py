"""A backup changed after it was made is refused by verify and by restore, which writes
nothing: a manifest (its signature), an object (its tag and digest), the database dump."""

from __future__ import annotations

from pathlib import Path

import pytest

from medops.backup.service import create_backup, restore_backup, verify_backup
from medops.config import Settings
from medops.errors import ConfigurationError, IntegrityError
from medops.testing import FixedClock
from tests.helpers.backup import flip_byte, manifest_of, new_machine, store_files


def _backup(small: Settings, repo: Path, clock: FixedClock) -> str:
    created = create_backup(small, targets=[str(repo)], clock=clock)
    assert verify_backup(small, created.id, source=str(repo)).ok
    return created.id


def _refused(small: Settings, repo: Path, backup_id: str, tmp_path: Path, match: str) -> None:
    result = verify_backup(small, backup_id, source=str(repo))
    assert not result.ok
    assert match in result.problems[0]
    target = new_machine(small, tmp_path / "new", f"sqlite:///{tmp_path / 'new' / 'medops.db'}")
    with pytest.raises(IntegrityError, match=match):
        restore_backup(target, backup_id, source=str(repo))
    assert not (tmp_path / "new" / "medops.db").exists()
    assert store_files(target.blob_dir) == {}
    assert store_files(target.resolved_data_dir) == {}


def test_a_changed_manifest_is_refused(
    small: Settings, repo: Path, tmp_path: Path, clock: FixedClock
) -> None:
    backup_id = _backup(small, repo, clock)
    manifest = repo / "backups" / backup_id / "manifest.json"
    # Pretend the dump was another one: the JSON stays valid, the signature does not.
    text = manifest.read_text().replace('"size":', '"size": 1', 1)
    manifest.write_text(text)
    result = verify_backup(small, backup_id, source=str(repo))
    assert result.problems == ["the manifest's signature does not verify"]
    with pytest.raises(IntegrityError, match="signature"):
        restore_backup(
            new_machine(small, tmp_path / "new", f"sqlite:///{tmp_path / 'new.db'}"),
            backup_id,
            source=str(repo),
        )


def test_a_changed_object_is_refused(
    small: Settings, repo: Path, tmp_path: Path, clock: FixedClock
) -> None:
    backup_id = _backup(small, repo, clock)
    digest = manifest_of(repo, backup_id).stores["blobs"].objects[0].sha256
    flip_byte(repo / "objects" / digest[:2] / digest)
    _refused(small, repo, backup_id, tmp_path, f"object {digest} is corrupt")


def test_a_missing_object_is_refused(
    small: Settings, repo: Path, tmp_path: Path, clock: FixedClock
) -> None:
    backup_id = _backup(small, repo, clock)
    digest = manifest_of(repo, backup_id).stores["data"].objects[0].sha256
    (repo / "objects" / digest[:2] / digest).unlink()
    _refused(small, repo, backup_id, tmp_path, "missing")


def test_a_changed_dump_is_refused(
    small: Settings, repo: Path, tmp_path: Path, clock: FixedClock
) -> None:
    backup_id = _backup(small, repo, clock)
    flip_byte(repo / "backups" / backup_id / "database.enc", offset=100)
    _refused(small, repo, backup_id, tmp_path, "database dump is corrupt")


def test_another_key_cannot_read_a_backup(
    small: Settings, repo: Path, tmp_path: Path, clock: FixedClock
) -> None:
    """The backup key is not in the backup: without it nothing can be checked or restored."""
    backup_id = _backup(small, repo, clock)
    stranger = small.model_copy(update={"backup_key_file": tmp_path / "other.key"})
    with pytest.raises(ConfigurationError, match="no backup key"):
        verify_backup(stranger, backup_id, source=str(repo))
    create_backup(stranger, targets=[str(tmp_path / "elsewhere")], clock=clock)  # makes one
    with pytest.raises(ConfigurationError, match="does not hold"):
        verify_backup(stranger, backup_id, source=str(repo))
    key = small.resolved_backup_key_file.read_text().strip().encode()
    every_file = b"".join(p.read_bytes() for p in repo.rglob("*") if p.is_file())
    assert key not in every_file
