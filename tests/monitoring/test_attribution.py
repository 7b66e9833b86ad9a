"""Attribution drift: the statistic on known numbers, and a monitoring window in which a
shift the model barely weighs (age) drifts its input but not its contribution while a smaller
shift in a feature it leans on (s5) drifts both."""

from __future__ import annotations

from datetime import timedelta

import httpx
import numpy as np
import pytest

from medops.monitoring.attribution import THRESHOLD, attribution_drift, summary_lines
from medops.testing import FixedClock
from tests.helpers import model_data
from tests.helpers.registry import DEPLOYMENT, predict, random_records


def test_the_statistic_on_known_contributions() -> None:
    """change = window mean - reference mean, relative to the reference's summed mean |phi|;
    drifted past the threshold; a too small window judges nothing."""
    reference = np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]])  # sum of mean |phi| = 2
    window = np.tile([[0.5, 0.1, -0.1]], (40, 1))
    part = attribution_drift(
        ("a", "b", "c"), reference, window, method="linear", scale="log_odds",
        input_drifted=("c",),
    )  # fmt: skip
    a, b, c = (part["features"][n] for n in "abc")
    assert (a["change"], a["relative_change"], a["drifted"]) == (0.5, 0.25, True)
    assert b["relative_change"] == pytest.approx(0.05)
    assert not b["drifted"]
    assert c["relative_change"] == pytest.approx(-0.05)
    assert (c["drifted"], c["input_drifted"]) == (False, True)
    assert part["drifted_features"] == ["a"]
    assert summary_lines(part) == ["attribution drift: the model's output moved through a +25%"]
    small = attribution_drift(("a", "b", "c"), reference, window[:5], method="linear",
                              scale="log_odds")  # fmt: skip
    assert small["status"] == "insufficient-data"
    assert small["drifted_features"] == []


def test_a_window_reports_attribution_drift_beside_input_drift(
    http: httpx.Client, clock: FixedClock, deployed: dict[str, dict[str, str]]
) -> None:
    """A day whose ages are two standard deviations older and whose s5 one higher: both
    inputs drift; age's contribution moves by about 5% of a typical explanation (not
    attribution drift), s5's by about 24% (attribution drift, with its alert)."""
    _, x_eval, _, _ = model_data.frames()
    age_sd, s5_sd = x_eval["age"].std(), x_eval["s5"].std()
    records = [
        r | {"age": float(min(round(r["age"] + 2 * age_sd), 110)), "s5": r["s5"] + s5_sd}
        for r in random_records(120, seed=21)
    ]
    answer = predict(http, deployed["clin"], {"records": [{"features": r} for r in records]})
    assert answer.status_code == 200, answer.text
    clock.advance(timedelta(days=1))
    run = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=deployed["mle"])
    assert run.status_code == 200, run.text
    document = http.get(
        "/api/v1/monitoring/report", params={"deployment": DEPLOYMENT}, headers=deployed["clin"]
    ).json()["result"]
    part = document["attribution"]
    assert (part["status"], part["method"], part["rows"]) == ("ok", "linear", 120)
    age, s5 = part["features"]["age"], part["features"]["s5"]
    assert age["input_drifted"]
    assert s5["input_drifted"]
    assert 0 < age["relative_change"] < THRESHOLD
    assert not age["drifted"]
    assert s5["relative_change"] > 2 * THRESHOLD
    assert part["drifted_features"] == ["s5"]
    assert any(a.startswith("attribution drift: ") and "s5" in a for a in document["alerts"])
