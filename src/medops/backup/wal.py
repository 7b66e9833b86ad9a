"""PostgreSQL WAL archiving into the backup targets, for point-in-time recovery.

``archive_command = 'medops backup wal push %p'`` encrypts each finished WAL segment (or
history file) with the backup key into ``wal/<name>`` of every target; ``restore_command =
'medops backup wal fetch %f %p'`` brings one back during recovery. PostgreSQL's rules for
these commands are kept: ``push`` succeeds again for a segment already archived with the same
content (after a crash between copy and acknowledgement) and fails for one archived with
other content; ``fetch`` fails (non-zero) for a segment the archive does not hold, which is
how recovery learns it has reached the end of the archive.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from medops.backup import keys as crypto
from medops.backup.repository import Repository, open_target
from medops.config import Settings
from medops.errors import (
    ConflictError,
    FieldError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
)

_NAME = re.compile(r"^[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?$|^[0-9A-F]{8}\.history$")


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        reason = "expected a WAL segment name such as 000000010000000000000003 (PostgreSQL's %f)"
        raise InvalidInputError(
            f"not a WAL file name: {name!r}", errors=[FieldError("wal", reason)]
        )
    return name


def _context(name: str) -> bytes:
    return b"wal:" + name.encode()


def _targets(settings: Settings) -> list[Repository]:
    if not settings.backup_targets:
        raise InvalidInputError("no backup target: set MEDOPS_BACKUP_TARGETS for WAL archiving")
    return [Repository(open_target(settings, t)) for t in settings.backup_targets]


def push(settings: Settings, path: Path) -> int:
    """Archive the WAL file at ``path`` to every target; returns how many got a new copy."""
    name = _check_name(path.name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    keys = crypto.load_keys(settings, create=True)
    sealed = b"".join(crypto.seal(keys.current, _context(name), [data]))
    written = 0
    for repository in _targets(settings):
        key = f"wal/{name}"
        if repository.backend.size(key) is not None:
            held = b"".join(crypto.open_sealed(keys, _context(name), [repository.backend.get(key)]))
            if hashlib.sha256(held).digest() != hashlib.sha256(data).digest():
                msg = f"{name} is archived in {repository.url} already, with other content"
                raise ConflictError(msg)
            continue
        repository.backend.put(key, [sealed])
        written += 1
    return written


def fetch(settings: Settings, name: str, into: Path) -> None:
    """Write WAL file ``name`` from the first target that holds it to ``into``."""
    _check_name(name)
    keys = crypto.load_keys(settings, create=False)
    for repository in _targets(settings):
        try:
            stored = repository.backend.get(f"wal/{name}")
        except NotFoundError:
            continue
        try:
            data = b"".join(crypto.open_sealed(keys, _context(name), [stored]))
        except IntegrityError as exc:
            raise IntegrityError(f"archived {name} is corrupt: {exc.message}") from None
        into.write_bytes(data)
        return
    raise NotFoundError(f"{name} is not in the WAL archive")
