"""The group-commit writer: batched, durable before it returns, fail-closed when it cannot be."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from medops.audit.checkpoints import checkpoint_rows, record_rows
from medops.audit.schemas import AuditEntry
from medops.audit.tables import AuditEvent
from medops.audit.verify import verify
from medops.audit.writer import GroupCommitWriter
from medops.errors import AuditUnavailableError
from medops.services import Services
from medops.serving.tables import Prediction
from tests.helpers.people import SYSTEM_CTX


def test_concurrent_records_are_batched_durable_and_chained(services: Services) -> None:
    """8 threads x 40 records: every one is stored when submit returns, in fewer batches."""
    stored_when_returned: list[bool] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(40):
            services.audit.record_alone(
                SYSTEM_CTX, AuditEntry(action="test.write", resource_id=f"{n}-{i}")
            )
            with services.db.session() as session:
                found = session.scalar(
                    select(AuditEvent.seq).where(AuditEvent.resource_id == f"{n}-{i}")
                )
            with lock:
                stored_when_returned.append(found is not None)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert stored_when_returned == [True] * 320
    stats = services.audit.writer.stats
    assert stats.records == 320
    assert stats.batches < 320
    assert stats.largest_batch > 1
    _assert_chain_verifies(services)


def test_a_saturated_or_blocked_log_fails_closed(services: Services) -> None:
    """With the database held, submits raise AuditUnavailableError instead of returning."""
    writer = GroupCommitWriter(services.audit, capacity=1, timeout=0.3)
    services.audit.writer = writer
    released = threading.Event()

    def hold() -> None:
        with services.db.write_lock:
            released.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        with pytest.raises(AuditUnavailableError):
            services.audit.record_alone(SYSTEM_CTX, AuditEntry(action="test.blocked"))
    finally:
        released.set()
        holder.join()
        writer.close()


def test_record_alone_inside_a_write_transaction_is_a_programming_error(
    services: Services,
) -> None:
    """It would wait for a lock its own thread holds; it says so instead of hanging."""
    with pytest.raises(RuntimeError, match="use record"), services.db.transaction():
        services.audit.record_alone(SYSTEM_CTX, AuditEntry(action="test.nested"))


def test_a_submitter_that_gives_up_does_not_stop_the_writer(services: Services) -> None:
    """A prediction whose wait was cancelled (a client gone, a shutdown) leaves the writer
    running: its record is still committed, and later records are too."""
    writer = services.audit.writer

    async def submit_and_give_up() -> None:
        waiters = [
            writer.submit_rows(
                SYSTEM_CTX, [(AuditEntry(action="test.cancel", resource_id=str(i)), ())]
            )
            for i in range(20)
        ]
        cancelled = [w for w in waiters if w.cancel()]
        assert cancelled, "every wait had finished: nothing was cancelled"
        await asyncio.to_thread(
            services.audit.record_alone, SYSTEM_CTX, AuditEntry(action="test.after")
        )
        for waiter in waiters:
            if waiter not in cancelled:
                await asyncio.wait_for(waiter, 10)

    asyncio.run(submit_and_give_up())
    with services.db.session() as session:
        actions = list(session.scalars(select(AuditEvent.action)))
    assert actions.count("test.cancel") == 20
    assert "test.after" in actions


def test_a_lone_request_commits_its_own_records_when_the_writer_is_idle(
    services: Services,
) -> None:
    """``submit_rows(alone=True)`` commits on the caller's thread when nothing is queued and
    no transaction of the process runs (after the first batch has opened the chain); with the
    write lock held elsewhere it queues as usual. Either way the record is durable and chained
    when the future resolves."""
    writer = services.audit.writer

    async def submit(name: str, *, alone: bool) -> None:
        entry = AuditEntry(action="test.write", resource_id=name)
        await writer.submit_rows(SYSTEM_CTX, [(entry, ())], alone=alone)

    asyncio.run(submit("opening", alone=True))  # opens the chain: through the writer thread
    assert writer.stats.inline == 0
    asyncio.run(submit("alone", alone=True))
    assert writer.stats.inline == 1
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with services.db.write_lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)

    async def while_held() -> None:
        pending = asyncio.ensure_future(submit("queued", alone=True))
        await asyncio.sleep(0.05)
        assert not pending.done()  # queued behind the held lock, not committed inline
        release.set()
        await pending

    asyncio.run(while_held())
    holder.join(10)
    assert writer.stats.inline == 1
    with services.db.session() as session:
        stored = set(session.scalars(select(AuditEvent.resource_id)))
    assert {"opening", "alone", "queued"} <= stored
    _assert_chain_verifies(services)


def test_the_writer_stores_rows_exactly_as_a_sqlalchemy_insert_would(services: Services) -> None:
    """The writer inserts through prepared driver statements; each value must be stored as
    SQLAlchemy stores it (times in the dialect's format, flags, bytes, NULLs, the column
    named differently from its attribute), or queries comparing times would miss rows. The
    first record opens the chain (the session path), the second takes the prepared path."""
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

    def row(key: str) -> dict[str, object]:
        return {
            "id": key, "occurred_at": at, "deployment": "d", "model_name": "m", "version": 1,
            "artifact_digest": "a" * 64, "arm": "primary", "shadow": False, "cached": True,
            "requester": "r", "patient_ref": None, "request_id": "q", "inputs": "{}",
            "label": "1", "probabilities": "{}", "latency_ms": 1.5, "metadata_json": '{"k": 1}',
            "features": b"\x00\x01\xff", "score": 0.25,
        }  # fmt: skip

    async def submit(key: str) -> None:
        entry = AuditEntry(action="test.write", resource_id=key)
        await services.audit.writer.submit_rows(SYSTEM_CTX, [(entry, ((Prediction, row(key)),))])

    asyncio.run(submit("opening"))
    asyncio.run(submit("prepared"))
    assert services.audit.head_ready()
    with services.db.transaction() as session:
        session.execute(insert(Prediction), [row("orm")])
        services.audit.record(session, SYSTEM_CTX, AuditEntry(action="test.write"))
    columns = "occurred_at, shadow, cached, patient_ref, latency_ms, metadata, features, score"
    with services.db.engine.connect() as connection:
        stored = {
            key: tuple(values)
            for key, *values in connection.exec_driver_sql(f"SELECT id, {columns} FROM predictions")
        }
    assert stored["prepared"] == stored["orm"]
    assert stored["opening"] == stored["orm"]


def _assert_chain_verifies(services: Services) -> None:
    """Every record is stored, chained and MAC'd as the verifier expects."""
    key, mac_key = services.audit.signing_keys()
    report = verify(
        record_rows(services.db),
        checkpoint_rows(services.db),
        public_key=key.public_key(),
        mac_key=mac_key,
    )
    assert report.ok, report.first
