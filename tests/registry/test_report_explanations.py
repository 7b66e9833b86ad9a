"""The global view of explanations in the validation report and the model card: the mean and
mean absolute contribution per feature over the validation rows equal the logistic model's
exact values computed by hand; the summary and card rank the features by it."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from medops.core import datasets
from medops.registry.explained import sample_rows
from medops.registry.validation_report import ReportDocument
from tests.helpers import model_data
from tests.helpers.registry import FEATURES, NAME, register, validate


def hand_contributions() -> np.ndarray:
    """Exact interventional contributions of every validation row against the background
    (the fixed-seed sample of the same rows), by hand from the fitted pipeline."""
    pipe = model_data.pipeline()
    scaler, lr = pipe[0], pipe[-1]
    parsed = datasets.parse_csv(
        model_data.eval_csv(), model_data.package().signature, label_column=model_data.LABEL
    )
    x = np.array([[parsed.columns[f][i] for f in FEATURES] for i in range(parsed.rows)], float)
    background = x[sample_rows(parsed.columns)]
    weights = np.asarray(lr.coef_[0] / scaler.scale_, dtype=np.float64)
    values: np.ndarray = (x - background.mean(axis=0)) * weights
    return values


def test_report_and_card_hold_mean_contributions(
    http: httpx.Client, model: None, people: dict[str, dict[str, str]]
) -> None:
    """The report's explanations part has, per feature, the mean and mean |contribution| of
    the hand-computed exact values (linear, log-odds, every row explained); the summary's
    feature_importance and the card's performance section list the mean |contribution|,
    largest first; the document round-trips through its typed model."""
    assert register(http, people["ds"]).status_code == 201
    created = validate(http, people["ds"])
    assert created.status_code == 201, created.text
    report = http.get(f"/api/v1/models/{NAME}/versions/1/report", headers=people["aud"]).json()
    part = report["report"]["explanations"]
    values = hand_contributions()
    assert (part["method"], part["exact"], part["scale"], part["unavailable"]) == (
        "linear",
        True,
        "log_odds",
        None,
    )
    assert part["rows"] == len(values)
    for j, name in enumerate(FEATURES):
        assert part["features"][name]["mean"] == pytest.approx(values[:, j].mean(), abs=1e-6)
        assert part["features"][name]["mean_abs"] == pytest.approx(
            np.abs(values[:, j]).mean(), abs=1e-6
        )
    ranking = report["feature_importance"]
    assert list(ranking) == [FEATURES[j] for j in np.argsort(-np.abs(values).mean(axis=0))]
    assert ReportDocument.load(report["report"]).dump() == report["report"]
    card = http.get(f"/api/v1/models/{NAME}/versions/1/card", headers=people["aud"]).json()
    performance = next(s for s in card["sections"] if s["id"] == "performance")
    shown = next(f for f in performance["fields"] if f["key"] == "feature_importance")
    assert shown["value"] == pytest.approx(ranking)
