"""A push run as its own process (the store tests kill it with SIGKILL half way): settings
from MEDOPS_* variables; after ``stop_after`` bytes it writes the marker file and waits to
be killed.

Usage: python push_worker.py DIGEST PART_SIZE STOP_AFTER MARKER
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from medops.config import Settings
from medops.datasets.transfer import push
from medops.db.engine import Database
from medops.storage.backends import open_remote
from medops.storage.objects import open_store


def main() -> None:
    digest, part_size, stop_after, marker = sys.argv[1:5]
    settings = Settings()
    database = Database(settings.resolved_database_url)
    store = open_store(settings)
    remote = open_remote(settings)

    def progress(done: int, total: int) -> None:
        if done >= int(stop_after):
            Path(marker).write_text(f"{done}/{total}")
            time.sleep(600)  # the test kills us here

    push(database, store, remote, remote.url, [digest], progress=progress, part_size=int(part_size))


if __name__ == "__main__":
    main()
