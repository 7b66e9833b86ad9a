"""Reading the prediction log for monitoring (monitoring/logread.py): a window read from the
packed columns holds exactly what was sent and answered; rows logged before the packed
columns existed (migration 0013) are read from their JSON, alone or mixed with packed rows;
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import numpy as np
from sqlalchemy import select, text, update

from medops.core.signature import ModelSignature
from medops.monitoring.evaluate import WindowRows
from medops.monitoring.logread import LogSeries, read_count_window, read_window
from medops.registry.tables import ModelVersion
from medops.services import Services
from medops.serving.tables import Prediction
from medops.testing import FixedClock
from tests.helpers.registry import DEPLOYMENT, predict, random_records

SERIES = LogSeries(DEPLOYMENT, 1)


def _log(http: httpx.Client, clin: dict[str, str], n: int) -> list[dict[str, object]]:
    records = random_records(n, seed=11)
    body = {"records": [{"features": r, "patient_ref": f"p-{i}"} for i, r in enumerate(records)]}
    answer = predict(http, clin, body)
    assert answer.status_code == 200, answer.text
    for p in answer.json()["predictions"][: n // 2]:  # half get their outcome
        done = http.post(
            f"/api/v1/predictions/{p['id']}/outcome", json={"label": p["label"]}, headers=clin
        )
        assert done.status_code == 201, done.text
    return records


def _signature(services: Services) -> ModelSignature:
    with services.db.session() as session:
        stored = session.scalar(select(ModelVersion.signature).where(ModelVersion.version == 1))
    assert stored is not None
    return ModelSignature.model_validate_json(stored)


def _from_json(services: Services, signature: ModelSignature) -> WindowRows:
    """The window as the log's JSON says it, row by row (what monitoring read before 0013)."""
    with services.db.session() as session:
        rows = session.execute(
            text(
                "SELECT p.inputs, p.probabilities, o.label FROM predictions p "
                "LEFT JOIN prediction_outcomes o ON o.prediction_id = p.id "
                "ORDER BY p.occurred_at, p.id"
            )
        ).all()
    positive = str(signature.outputs.positive)
    names = signature.feature_names
    return WindowRows(
        features={n: [json.loads(r[0])[n] for r in rows] for n in names},
        scores=[json.loads(r[1])[positive] for r in rows],
        outcomes=[None if r[2] is None else str(json.loads(r[2])) == positive for r in rows],
    )


def _same(got: WindowRows, expected: WindowRows) -> None:
    assert got.rows == expected.rows
    for name, values in expected.features.items():
        assert np.asarray(got.features[name], dtype=float).tolist() == [float(v) for v in values]
    assert np.asarray(got.scores, dtype=float).tolist() == list(expected.scores)
    assert list(got.outcomes) == list(expected.outcomes)


def test_a_window_read_from_packed_columns_is_what_was_sent(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """Every row is packed; the window unpacks to the features sent, the scores answered and
    the outcomes recorded, by time and by count."""
    start = clock.now()
    _log(http, deployed["clin"], 60)
    with services.db.session() as session:
        unpacked = session.scalar(
            select(Prediction.id).where(Prediction.features.is_(None)).limit(1)
        )
    assert unpacked is None
    signature = _signature(services)
    expected = _from_json(services, signature)
    by_time = read_window(services.db, SERIES, signature, start, start + timedelta(hours=1))
    _same(by_time, expected)
    first, span, last = read_count_window(services.db, SERIES, signature, 0, 40)
    second, _, _ = read_count_window(services.db, SERIES, signature, 1, 40, after=last)
    assert first.rows == 40
    assert second.rows == 20
    assert span[0] <= span[1]
    assert list(first.outcomes) + list(second.outcomes) == list(expected.outcomes)


def test_rows_logged_before_the_packed_columns_are_read_from_their_json(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """A window of older rows (no packed features, no score) and a window that mixes them
    with packed rows read the same as an all-packed window."""
    start = clock.now()
    _log(http, deployed["clin"], 40)
    signature = _signature(services)
    expected = _from_json(services, signature)
    with services.db.engine.begin() as connection:  # as migration 0013 left older rows
        ids = connection.execute(text("SELECT id FROM predictions ORDER BY id")).scalars().all()
        connection.execute(
            update(Prediction).where(Prediction.id.in_(ids[::2])).values(features=None, score=None)
        )
    end = start + timedelta(hours=1)
    _same(read_window(services.db, SERIES, signature, start, end), expected)
    with services.db.engine.begin() as connection:
        connection.execute(text("UPDATE predictions SET features = NULL, score = NULL"))
    _same(read_window(services.db, SERIES, signature, start, end), expected)
