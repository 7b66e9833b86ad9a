"""A stat cache: the digest of each file already hashed, so an unchanged file is not read again.

One SQLite table (WAL) keyed by the file's absolute path, holding the inode, size, mtime and
ctime seen when it was hashed, and its digest. ``lookup`` answers a digest only when all four
still match; any write, truncation, replacement or ``touch`` changes at least one.

Racy timestamps (as git's index handles them): a file written in the same clock tick as it was
read could change again without its mtime moving. ``remember`` therefore skips files whose
mtime or ctime is not safely older than the moment reading began (``started_ns``), by 100 ms
on file systems with sub-second times and 2 s on those that keep whole seconds; such files are
simply hashed again next time. The file holds paths and digests (no content) and is made
readable by its owner only, like the rest of the home.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medops.config import Settings
    from medops.datasets.scan import LocalFile

__all__ = ["StatCache", "default_path"]

_FINE_MARGIN_NS = 100_000_000
_COARSE_MARGIN_NS = 2_000_000_000
_BATCH = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    abspath TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL
) WITHOUT ROWID
"""


def default_path(settings: Settings) -> Path:
    """Where the stat cache lives by default: ``statcache.sqlite`` in the home."""
    return settings.home / "statcache.sqlite"


class StatCache:
    """Digests of files already hashed, keyed by absolute path and checked against ``stat``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if fresh:
            path.chmod(0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> StatCache:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def lookup(self, files: Sequence[LocalFile]) -> dict[str, str]:
        """Manifest path -> digest for each of ``files`` whose inode, size, mtime and ctime
        match what was remembered (files not known or changed are absent)."""
        by_abspath = {str(item.abspath): item for item in files}
        keys = list(by_abspath)
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(keys), _BATCH):
                batch = keys[start : start + _BATCH]
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    "SELECT abspath, inode, size, mtime_ns, ctime_ns, digest FROM files "  # noqa: S608 - only placeholders are formatted in  # nosec B608
                    f"WHERE abspath IN ({marks})",
                    batch,
                )
                for abspath, inode, size, mtime_ns, ctime_ns, digest in rows:
                    item = by_abspath[abspath]
                    if (item.inode, item.size, item.mtime_ns, item.ctime_ns) == (
                        inode,
                        size,
                        mtime_ns,
                        ctime_ns,
                    ):
                        found[item.path] = digest
        return found

    def remember(
        self, pairs: Iterable[tuple[LocalFile, str]], *, started_ns: int | None = None
    ) -> int:
        """Record ``(file, digest)`` pairs hashed from reads that began at ``started_ns``
        (``time.time_ns()``; default now); returns how many were recorded (racy ones are not)."""
        since = time.time_ns() if started_ns is None else started_ns
        rows = [
            (str(item.abspath), item.inode, item.size, item.mtime_ns, item.ctime_ns, digest)
            for item, digest in pairs
            if _settled(item, since)
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return len(rows)


def _settled(item: LocalFile, since_ns: int) -> bool:
    coarse = item.mtime_ns % 1_000_000_000 == 0 and item.ctime_ns % 1_000_000_000 == 0
    margin = _COARSE_MARGIN_NS if coarse else _FINE_MARGIN_NS
    return max(item.mtime_ns, item.ctime_ns) < since_ns - margin
