"""The server's signing key is created once, even when threads of one process race for it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from medops.audit import signing


def test_threads_racing_to_create_the_key_all_get_the_same_one(tmp_path: Path) -> None:
    """16 threads of one process find no key at the same moment: each gets the one key that
    was written, and no temporary file is left behind."""
    path = tmp_path / "keys" / ".audit-signing.key"
    start = threading.Barrier(16)

    def create() -> bytes:
        start.wait()
        return signing.public_bytes(signing.load_or_create(path).public_key())

    with ThreadPoolExecutor(16) as pool:
        keys = list(pool.map(lambda _: create(), range(16)))
    assert len(set(keys)) == 1
    assert keys[0] == signing.public_bytes(signing.load_or_create(path).public_key())
    assert [p.name for p in path.parent.iterdir()] == [path.name]
