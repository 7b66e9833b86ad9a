"""WAL archiving for point-in-time recovery keeps PostgreSQL's rules for archive and restore
commands: idempotent for the same file, refused for another under the same name, and a file
the archive lacks is an error (the end of recovery)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medops.backup import wal
from medops.config import Settings
from medops.errors import ConflictError, InvalidInputError, NotFoundError
from tests.helpers.datastore import random_bytes

SEGMENT = "000000010000000000000003"


def test_push_then_fetch_gives_the_segment_back(small: Settings, tmp_path: Path) -> None:
    settings = small.model_copy(
        update={"backup_targets": (str(tmp_path / "one"), str(tmp_path / "two"))}
    )
    segment = tmp_path / "pg_wal" / SEGMENT
    segment.parent.mkdir()
    segment.write_bytes(random_bytes(64 * 1024, 3))
    assert wal.push(settings, segment) == 2
    assert wal.push(settings, segment) == 0  # again after a crash: fine, nothing new
    stored = (tmp_path / "one" / "wal" / SEGMENT).read_bytes()
    assert segment.read_bytes() not in stored  # encrypted

    back = tmp_path / "restored"
    wal.fetch(settings, SEGMENT, back)
    assert back.read_bytes() == segment.read_bytes()

    segment.write_bytes(random_bytes(64 * 1024, 4))
    with pytest.raises(ConflictError, match="other content"):
        wal.push(settings, segment)
    with pytest.raises(NotFoundError):
        wal.fetch(settings, "000000010000000000000004", back)
    with pytest.raises(InvalidInputError, match="not a WAL file name"):
        wal.fetch(settings, "../../etc/passwd", back)
