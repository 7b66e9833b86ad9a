"""A window's trend (the numbers the console charts) is stored with it, equals what its
document gives, is filled on first read for windows stored before migration 0014, and is
read back as one array per name."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select, text, update

from medops.config import Settings
from medops.db import migrate
from medops.db.engine import Database
from medops.monitoring.results import WindowResult
from medops.monitoring.tables import MonitoringResult
from medops.monitoring.trend import TrendRow, assemble, numbers_of, trend_of
from medops.services import Services, build_services
from medops.testing import FixedClock
from tests.helpers.monitoring_windows import serve_days_with_canary
from tests.helpers.registry import DEPLOYMENT

RESULTS = Path(__file__).parent.parent / "data" / "results"


def _document(name: str) -> WindowResult:
    return WindowResult.load(json.loads((RESULTS / f"{name}.json").read_text()))


def test_a_drift_test_is_charted_by_its_effective_threshold_or_its_p_value() -> None:
    """PSI is charted against its stored effective threshold, KS by its p-value against
    alpha, a test only reported has no limit (NaN)."""
    document = _document("window_stable_day")
    numbers = dict(numbers_of(document))
    tests = {t.test: t for t in document.features["age"] or ()}
    psi, ks = tests["psi"], tests["ks"]
    assert numbers[("feature", "age", "psi", "limit")] == psi.parameters["effective_threshold"]
    assert numbers[("feature", "age", "psi", "value")] == psi.statistic
    assert numbers[("feature", "age", "ks", "value")] == ks.p_value
    assert numbers[("feature", "age", "ks", "limit")] == ks.threshold
    assert np.isnan(numbers[("feature", "age", "wasserstein", "limit")])
    share = document.dataset.share
    assert numbers[("dataset", "share")] == share


def test_rows_with_different_names_are_assembled_with_nan_where_a_name_is_missing() -> None:
    """A window without estimates beside one with them: the union of names, NaN filled."""
    full, bare = _document("window_stable_day"), _document("window_insufficient")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        TrendRow(i, at + timedelta(days=i), at + timedelta(days=i + 1), doc.verdict, doc.status,
                 doc.input_drift, doc.rows, doc.labelled, *trend_of(doc))
        for i, doc in enumerate((full, bare, full))
    ]  # fmt: skip
    trend = assemble("d", "day", 1, rows)
    assert len(trend) == 3
    only_full = set(dict(numbers_of(full))) - set(dict(numbers_of(bare)))
    assert only_full, "the insufficient window lacks some numbers"
    key = sorted(only_full)[0]
    values = trend.get(*key)
    assert np.isnan(values[1])
    assert not np.isnan(values[0])
    expected = dict(numbers_of(full))[("dataset", "share")]
    assert trend.get("dataset", "share")[2] == expected


def test_each_stored_window_holds_the_trend_of_its_document_and_reads_it_back(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    people: dict[str, dict[str, str]],
    deployed: dict[str, dict[str, str]],
) -> None:
    """Every stored row's trend equals trend_of(its document); a row without one (an older
    server's) is computed from its document when read, giving the same numbers."""
    serve_days_with_canary(http, deployed, clock, days=2)
    with services.db.session() as session:
        rows = session.scalars(select(MonitoringResult)).all()
    assert rows
    for row in rows:
        assert (row.trend_keys, row.trend) == trend_of(WindowResult.load(json.loads(row.result)))
    before = services.monitoring.trend(DEPLOYMENT, "day", 1)
    assert len(before) == 2
    with services.db.transaction() as session:
        session.execute(update(MonitoringResult).values(trend=None, trend_keys=None))
    after = services.monitoring.trend(DEPLOYMENT, "day", 1)
    assert list(after.values) == list(before.values)
    for key, values in before.values.items():
        np.testing.assert_array_equal(after.values[key], values)
    assert after.verdicts == before.verdicts
    since = services.monitoring.trend(DEPLOYMENT, "day", 1, since=before.ends[0])
    assert list(since.sequences) == [before.sequences[1]]


@pytest.mark.parametrize("name", ["window_stable_day", "window_canary_learned"])
def test_a_window_stored_before_0014_gets_its_trend_on_first_read(
    empty_db_url: str, tmp_path: Path, name: str
) -> None:
    """Migration 0014 adds the columns empty (it runs no live code); the first chart read
    computes the trend from the document and keeps it, equal to what storing it would have
    written; a downgrade removes the columns again."""
    database = Database(empty_db_url)
    document = (RESULTS / f"{name}.json").read_text()
    try:
        migrate.upgrade(database, "0013")
        at = datetime(2026, 1, 1, tzinfo=UTC)
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO monitoring_results (deployment, model_name, version,"
                    " window_kind, sequence, window_start, window_end, rows, labelled, status,"
                    " verdict, drifted, alerts, result, computed_at) VALUES ('d', 'm', 1, 'day',"
                    " 1, :s, :e, 600, 600, 'ok', 'stable', false, '[]', :r, :e)"
                ),
                {"s": at, "e": at + timedelta(days=1), "r": document},
            )
        migrate.upgrade(database)
        with database.session() as session:
            assert session.scalars(select(MonitoringResult)).one().trend is None
        settings = Settings(home=tmp_path / "home", database_url=empty_db_url)
        services = build_services(settings, clock=FixedClock(at))
        try:
            read = services.monitoring.trend("d", "day", 1)
        finally:
            services.close()
        expected = trend_of(WindowResult.load(json.loads(document)))
        with database.session() as session:
            row = session.scalars(select(MonitoringResult)).one()
        assert (row.trend_keys, row.trend) == expected
        assert read.sequences == (1,)
        migrate.downgrade(database, "0013")
        with database.engine.connect() as connection:
            columns = connection.execute(text("SELECT * FROM monitoring_results")).keys()
        assert "trend" not in columns
    finally:
        database.dispose()
