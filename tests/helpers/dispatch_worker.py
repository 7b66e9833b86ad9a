"""One replica for the three-process test: ``python -m tests.helpers.dispatch_worker
<database url> <home> <receiver url> <go file>`` builds its own services on the shared
database, waits for the go file, and runs the dispatcher until no row is left queued; it
prints how many rows it sent."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from medops.alerting.tables import AlertNotification
from medops.config import Settings
from medops.services import build_services
from tests.helpers.notify_outbox import HOOK_KEY, dispatcher, hook


def main(database_url: str, home: str, url: str, go: str) -> None:
    os.environ["MEDOPS_ALERT_SECRET_OPS_HOOK"] = HOOK_KEY
    services = build_services(Settings(home=Path(home), database_url=database_url))
    try:
        worker = dispatcher(services, [hook(url)], holder=f"replica-{os.getpid()}")
        deadline = time.monotonic() + 60
        while not Path(go).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        sent = 0
        while time.monotonic() < deadline:
            sent += worker.run_once().sent
            with services.db.session() as session:
                left = session.query(AlertNotification).filter_by(status="queued").count()
            if left == 0:
                break
            time.sleep(0.02)
        print(sent)  # noqa: T201 (the test reads it)
    finally:
        services.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
