"""The deployment monitoring page: every feature charted against its effective threshold from
stored trends, canary and count windows selectable, read by the monitoring roles, actions for
those who manage deployments, bad query values answered as 4xx pages, and the CSV."""

from __future__ import annotations

import csv
import io

import httpx
import numpy as np
import pytest

from medops.api.console.layout import cell
from medops.monitoring.results import WindowDocument
from medops.monitoring.trend import charted_limit
from medops.services import Services
from medops.testing import FixedClock
from tests.helpers.monitoring_windows import serve_days_with_canary
from tests.helpers.registry import DEPLOYMENT, random_records

PAGE = f"/deployments/{DEPLOYMENT}"


@pytest.fixture
def monitored(
    http: httpx.Client, clock: FixedClock, deployed: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """The deployment with three days of day and count:50 windows of v1 and canary v2."""
    assert serve_days_with_canary(http, deployed, clock, days=3) == 2
    return deployed


def test_every_feature_is_charted_with_its_effective_threshold(
    http: httpx.Client, monitored: dict[str, dict[str, str]]
) -> None:
    """Each feature has a chart titled with its judged test, and the table view holds the
    latest window's effective threshold of that test (the stored number, rounded)."""
    page = http.get(PAGE, headers=monitored["clin"])
    assert page.status_code == 200, page.text
    assert ' style="' not in page.text
    assert "<script>" not in page.text
    latest = WindowDocument.load(
        http.get("/api/v1/monitoring/report",
                 params={"deployment": DEPLOYMENT, "window": "day", "version": 1},
                 headers=monitored["clin"]).json()
    )  # fmt: skip
    features = set(random_records(1)[0])
    assert set(latest.result.features) == features
    for feature in features:
        tests = latest.result.features[feature] or ()
        judged = next(t for t in tests if np.isfinite(charted_limit(t)))
        assert f"{feature}: {judged.test}</title>" in page.text, feature
        assert f'<td class="num">{cell(charted_limit(judged), 4)}</td>' in page.text, feature
    psi = http.get(PAGE, params={"test": "psi"}, headers=monitored["clin"])
    for feature in features:
        found = {t.test: t for t in latest.result.features[feature] or ()}
        if "psi" in found:
            assert f"{feature}: psi</title>" in psi.text
            limit = found["psi"].parameters["effective_threshold"]
            assert f'<td class="num">{cell(limit, 4)}</td>' in psi.text
    assert 'role="group"' in page.text
    assert f'href="{PAGE}/windows/day/1/' in page.text


def test_the_canary_version_and_count_windows_are_selectable(
    http: httpx.Client, monitored: dict[str, dict[str, str]]
) -> None:
    """The page links v2 and count:50; both views answer with their own windows."""
    clin = monitored["clin"]
    page = http.get(PAGE, headers=clin).text
    assert "version=2" in page
    assert "window=count%3A50" in page
    canary = http.get(PAGE, params={"version": "2"}, headers=clin)
    assert canary.status_code == 200, canary.text
    assert "day windows of v2" in canary.text
    assert f'href="{PAGE}/windows/day/2/' in canary.text
    counted = http.get(PAGE, params={"window": "count:50", "version": "1"}, headers=clin)
    assert counted.status_code == 200, counted.text
    assert "count:50 windows of v1" in counted.text
    assert f'href="{PAGE}/windows/count:50/1/0"' in counted.text
    every = http.get(PAGE, params={"range": "all", "window": "count:50"}, headers=clin)
    assert every.status_code == 200


@pytest.mark.parametrize(
    ("who", "status", "actions"),
    [("clin", 200, False), ("aud", 200, False), ("ds", 200, False), ("mle", 200, True),
     ("admin", 403, False)],
)  # fmt: skip
def test_monitoring_readers_see_the_page_and_only_managers_its_actions(
    http: httpx.Client,
    monitored: dict[str, dict[str, str]],
    who: str,
    status: int,
    actions: bool,
) -> None:
    """monitoring:read opens the page; the actions panel shows for deployments:manage."""
    page = http.get(PAGE, headers=monitored[who])
    assert page.status_code == status, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert ('id="actions"' in page.text) is actions
    if actions:
        assert f'data-api="/api/v1/deployments/{DEPLOYMENT}/rollback"' in page.text
        assert "data-confirm=" in page.text
        assert 'data-method="PUT"' in page.text
        assert 'name="percent"' in page.text


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [({"window": "fortnight"}, 422, "unknown window"),
     ({"window": "week"}, 404, "no week windows"),
     ({"version": "0"}, 422, "whole number"),
     ({"version": "x"}, 422, "whole number"),
     ({"version": "9"}, 404, "version 9"),
     ({"range": "x"}, 422, "unknown range"),
     ({"test": "bogus"}, 422, "unknown drift test")],
)  # fmt: skip
def test_bad_query_values_are_answered_with_a_clear_page(
    http: httpx.Client,
    monitored: dict[str, dict[str, str]],
    query: dict[str, str],
    status: int,
    words: str,
) -> None:
    """A selector naming nothing is a 4xx page saying what is wrong, never a 500."""
    for path in (PAGE, f"{PAGE}/trend.csv"):
        answer = http.get(path, params=query, headers=monitored["clin"])
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
        assert words in answer.text
    unknown = http.get("/deployments/nope", headers=monitored["clin"])
    assert unknown.status_code == 404


def test_the_csv_holds_every_number_of_the_trend(
    http: httpx.Client, services: Services, monitored: dict[str, dict[str, str]]
) -> None:
    """One row per window with every stored number, equal to the service's trend."""
    answer = http.get(f"{PAGE}/trend.csv", params={"version": "2"}, headers=monitored["aud"])
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    trend = services.monitoring.trend(DEPLOYMENT, "day", 2)
    assert [int(r["sequence"]) for r in rows] == trend.sequences.tolist()
    assert [r["verdict"] for r in rows] == list(trend.verdicts)
    for key, values in trend.values.items():
        read = [float(r["/".join(key)]) if r["/".join(key)] else np.nan for r in rows]
        np.testing.assert_array_equal(np.array(read), values)
