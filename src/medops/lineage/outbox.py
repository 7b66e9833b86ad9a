"""The OpenLineage outbox: events are rows of ``lineage_events`` written in the transaction of
the fact they describe (a version added, a model registered, a deployment changed), then sent
to ``MEDOPS_OPENLINEAGE_URL`` by the server's background loop or ``medops lineage send``.

Targets: ``file:///path`` appends one JSON line per event (flushed and fsynced per pass);
``http(s)://...`` POSTs each event as JSON (a 2xx answer counts as sent). Events go in the
order they were written; a pass stops at the first failure, which is counted on the row
(``attempts``, ``last_error``) and tried again on the next pass, so a collector that was down
receives everything, in order, once it is back. Delivery is at least once: a crash between
the POST and the commit sends that event again (the run id is stable, so a consumer can
drop the repeat). On PostgreSQL the rows of a pass are locked (SKIP LOCKED): two replicas
never send the same event at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medops.audit.service import exempt_from_audit_guard
from medops.clock import Clock
from medops.db.engine import Database
from medops.lineage.openlineage import dumps
from medops.lineage.schemas import SendSummary
from medops.lineage.tables import LineageEvent

BATCH = 200
SEND_SECONDS = 30.0  # the server's loop: a pass this often while a target is set
HTTP_TIMEOUT_S = 10.0


def enqueue(session: Session, events: Iterable[dict[str, Any]], now: datetime) -> None:
    """Add events to the outbox in the caller's transaction."""
    for event in events:
        session.add(LineageEvent(event=dumps(event), created_at=now, attempts=0))


class DeliveryError(Exception):
    """The target refused or could not be reached (the message says how)."""


def _deliver_file(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write("".join(line + "\n" for line in lines))
        out.flush()
        os.fsync(out.fileno())


def _target(url: str) -> tuple[str, Path | None]:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return "file", Path(unquote(parsed.path))
    if parsed.scheme in {"http", "https"}:
        return "http", None
    msg = f"MEDOPS_OPENLINEAGE_URL must be file:///path or http(s)://..., not {parsed.scheme!r}"
    raise DeliveryError(msg)


def pending(db: Database) -> int:
    """Events not sent yet."""
    with db.session() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(LineageEvent).where(LineageEvent.sent_at.is_(None))
            )
            or 0
        )


def send(db: Database, clock: Clock, url: str | None, *, limit: int = 10_000) -> SendSummary:
    """Send waiting events to ``url`` in order, up to ``limit``; stop at the first failure."""
    if not url:
        return SendSummary(sent=0, failed=0, pending=pending(db), target=None)
    kind, path = _target(url)
    sent = failed = 0
    while sent < limit and not failed:
        with db.transaction() as session:
            exempt_from_audit_guard(session)  # delivery bookkeeping, not an action
            rows = list(
                session.scalars(
                    select(LineageEvent)
                    .where(LineageEvent.sent_at.is_(None))
                    .order_by(LineageEvent.id)
                    .limit(min(BATCH, limit - sent))
                    .with_for_update(skip_locked=True)
                )
            )
            if not rows:
                break
            done, error = _deliver(kind, path, url, rows)
            now = clock.now()
            for row in rows[:done]:
                row.sent_at = now
                row.attempts += 1
                row.last_error = None
            sent += done
            if done < len(rows):
                failed = 1
                row = rows[done]
                row.attempts += 1
                row.last_error = error
    return SendSummary(sent=sent, failed=failed, pending=pending(db), target=_shown(url))


def _shown(url: str) -> str:
    """The target without credentials or query (it may carry a token)."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


def _deliver(
    kind: str, path: Path | None, url: str, rows: list[LineageEvent]
) -> tuple[int, str | None]:
    """How many of ``rows`` (from the first) reached the target, and why the next did not."""
    if kind == "file":
        assert path is not None
        try:
            _deliver_file(path, [r.event for r in rows])
        except OSError as exc:
            return 0, f"cannot write {path}: {exc.strerror}"
        return len(rows), None
    import httpx

    done = 0
    with httpx.Client(timeout=HTTP_TIMEOUT_S) as http:
        for row in rows:
            try:
                answer = http.post(
                    url, content=row.event, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as exc:
                return done, f"{type(exc).__name__}: {str(exc)[:200]}"
            if not 200 <= answer.status_code < 300:
                return done, f"HTTP {answer.status_code}"
            done += 1
    return done, None


async def run_loop(
    send_pass: Callable[[], SendSummary], seconds: float, stopping: asyncio.Event
) -> None:
    """The server's loop: a pass (``LineageService.send``) every ``seconds`` until the app
    stops."""
    from medops.logs import get_logger

    log = get_logger("medops.lineage")
    while not stopping.is_set():
        try:
            summary = await asyncio.to_thread(send_pass)
            if summary.failed:
                log.warning("openlineage.send_failed", pending=summary.pending)
        except Exception:  # a bad pass must not end the loop; the next one retries
            log.exception("openlineage.send_error")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), seconds)
