"""The three online stores behave the same: newest row wins, reads in order, counts, deletes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from medops.features.online import OnlineStore, StoredRow, entity_key, open_online_store
from tests.helpers.online import ONLINE_KINDS, drop_namespace, online_url
from tests.helpers.postgres import PgServer

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(params=ONLINE_KINDS)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, pg_server: PgServer | None
) -> Iterator[OnlineStore]:
    url = online_url(str(request.param), tmp_path, pg_server)
    namespace = f"medops_test_{uuid.uuid4().hex[:10]}"
    opened = open_online_store(url, namespace=namespace)
    try:
        yield opened
    finally:
        opened.close()
        if request.param == "redis":
            drop_namespace(url, namespace)


def row(key: str, value: float, event: datetime, created: datetime | None = None) -> StoredRow:
    return StoredRow(key, {"hr": value, "unit": "bpm"}, event, created or event)


def test_write_then_read_in_request_order(store: OnlineStore) -> None:
    """Rows come back in the order of the keys asked, None for an unknown key."""
    assert store.write("vitals", [row("p1", 70.0, T0), row("p2", 80.5, T0)]) == 2
    got = store.read("vitals", ["p2", "nobody", "p1"])
    assert got[1] is None
    assert got[0] is not None
    assert got[0].values == {"hr": 80.5, "unit": "bpm"}
    assert got[0].event == T0
    assert got[2] is not None
    assert got[2].values["hr"] == 70.0
    assert store.read("vitals", ["p1"])[0] == got[2]
    assert store.read("labs", ["p1"]) == [None]  # views are separate
    assert store.count("vitals") == 2


def test_an_older_row_never_replaces_a_newer_one(store: OnlineStore) -> None:
    """Out-of-order writes keep the newest event time; at equal event time the later created
    time (the correction) wins, and an older correction does not undo it."""
    store.write("vitals", [row("p1", 90.0, T0 + timedelta(hours=1))])
    assert store.write("vitals", [row("p1", 60.0, T0)]) == 0
    got = store.read("vitals", ["p1"])[0]
    assert got is not None
    assert got.values["hr"] == 90.0
    corrected = row("p1", 91.0, T0 + timedelta(hours=1), T0 + timedelta(hours=3))
    assert store.write("vitals", [corrected]) == 1
    stale = row("p1", 92.0, T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    assert store.write("vitals", [stale]) == 0
    got = store.read("vitals", ["p1"])[0]
    assert got is not None
    assert got.values["hr"] == 91.0
    assert got.created == T0 + timedelta(hours=3)


def test_rewriting_the_same_row_changes_nothing(store: OnlineStore) -> None:
    """A re-read row (same times and values) is not counted as written; at equal times
    different values (a later full tie in the source) replace the stored ones."""
    assert store.write("vitals", [row("p1", 70.0, T0)]) == 1
    assert store.write("vitals", [row("p1", 70.0, T0)]) == 0
    assert store.write("vitals", [row("p1", 71.0, T0)]) == 1
    got = store.read("vitals", ["p1"])[0]
    assert got is not None
    assert got.values["hr"] == 71.0


def test_within_one_batch_the_last_of_full_ties_wins(store: OnlineStore) -> None:
    """A batch holding several rows of one key keeps the newest, the later one on a full tie."""
    batch = [row("p1", 1.0, T0), row("p1", 2.0, T0), row("p1", 0.5, T0 - timedelta(days=1))]
    store.write("vitals", batch)
    got = store.read("vitals", ["p1"])[0]
    assert got is not None
    assert got.values["hr"] == 2.0


def test_composite_keys_nulls_and_delete(store: OnlineStore) -> None:
    """Composite keys are distinct entities; null values survive; a view can be emptied."""
    a, b = entity_key(["p1", 7]), entity_key(["p17", ""])
    assert a != b
    store.write("enc", [StoredRow(a, {"x": None, "y": 3}, T0, T0), StoredRow(b, {"x": 1}, T0, T0)])
    store.write("other", [row("p1", 1.0, T0)])
    got = store.read("enc", [a])[0]
    assert got is not None
    assert got.values == {"x": None, "y": 3}
    assert store.delete_view("enc") == 2
    assert store.read("enc", [a, b]) == [None, None]
    assert store.count("other") == 1


def test_many_rows_in_batches(store: OnlineStore) -> None:
    """More rows than one batch are all written and read back."""
    rows = [row(f"p{i}", float(i), T0) for i in range(6000)]
    assert store.write("vitals", rows) == 6000
    keys = [f"p{i}" for i in range(0, 6000, 7)]
    got = store.read("vitals", keys)
    assert [g.values["hr"] if g else None for g in got] == [float(i) for i in range(0, 6000, 7)]


def test_an_unknown_url_is_refused() -> None:
    """Only sqlite:///, redis:// and postgresql:// name an online store."""
    from medops.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        open_online_store("mysql://x")
