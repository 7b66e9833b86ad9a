"""The monitoring window page: what it shows of a stored window (effective thresholds beside
the configured ones, the compared distributions as proportions, categories unseen in the
reference), the console route (by kind, version and sequence, count kinds with their colon,
neighbours, refusals and bad paths as pages) and the self-contained API page."""

from __future__ import annotations

import html
import json
import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, select

from medops.api.console.assets import asset_text
from medops.api.console.window import render
from medops.audit.service import exempt_from_audit_guard
from medops.core.permissions import Role
from medops.monitoring.drift import CategoricalReference, categorical_drift
from medops.monitoring.results import DriftTestResult, WindowDocument
from medops.services import Services
from medops.serving.tables import Prediction
from medops.testing import FixedClock
from tests.helpers.http import bearer
from tests.helpers.monitoring_windows import serve_with_outcomes
from tests.helpers.registry import DEPLOYMENT, ready_version

STORED = Path(__file__).parents[2] / "data" / "results"


def stored(name: str, **summary: Any) -> WindowDocument:
    """A stored window document from tests/data/results with a summary around it."""
    result = json.loads((STORED / f"{name}.json").read_text())
    fields = {
        "deployment": DEPLOYMENT, "model": "diabetes-risk", "version": 1, "window": "day",
        "sequence": 20454, "start": "2026-01-01T00:00:00+00:00",
        "end": "2026-01-02T00:00:00+00:00", "rows": result["rows"],
        "labelled": result["labelled"], "status": result["status"],
        "verdict": result["verdict"], "drifted": False, "alerts": result["alerts"],
    }  # fmt: skip
    return WindowDocument.load(fields | summary | {"result": result})


def rows_of(markup: str, caption_start: str) -> list[list[str]]:
    """The body rows (cell text) of the first table after ``caption_start``."""
    after = markup[markup.index(caption_start) :]
    body = after[after.index("<tbody>") : after.index("</tbody>")]
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body)
    ]


def test_a_psi_result_shows_its_effective_threshold_beside_the_configured_one() -> None:
    """In a 12-row window PSI's noise floor (0.765) exceeds the configured 0.2: the row shows
    0.2 configured and 2.2950 effective, naming three times the noise floor."""
    document = stored("window_insufficient")
    psi = next(r for r in document.result.features["bmi"] or () if r.test == "psi")
    assert psi.parameters["noise_floor"] > 0.2
    page = render(document)
    rows = rows_of(page, 'id="feature-bmi"')
    (row,) = [r for r in rows if r[0] == "PSI"]
    assert row[4] == "0.2000"
    assert row[5] == f"{psi.parameters['effective_threshold']:.4f} (3 × noise floor 0.765)"


def test_histogram_numbers_are_the_stored_counts_as_proportions() -> None:
    """bmi's table view lists each bin's stored reference and window counts and their shares
    (count / total, four decimals); the open bins read "< x" and "≥ y"."""
    document = stored("window_shift_count")
    psi = next(r for r in document.result.features["bmi"] or () if r.test == "psi")
    reference, current = psi.parameters["reference_counts"], psi.parameters["current_counts"]
    page = render(document)
    after = page[page.index('id="feature-bmi"') :]
    rows = rows_of(after, "Numbers of this chart")
    assert [int(r[1]) for r in rows] == reference
    assert [int(r[3]) for r in rows] == current
    assert [r[2] for r in rows] == [f"{c / sum(reference):.4f}" for c in reference]
    assert [r[4] for r in rows] == [f"{c / sum(current):.4f}" for c in current]
    assert rows[0][0] == f"< {psi.parameters['edges'][1]:.4g}"
    assert rows[-1][0] == f"≥ {psi.parameters['edges'][-2]:.4g}"


def test_a_categorical_feature_is_drawn_as_category_bars_with_unseen_categories_named() -> None:
    """A chi-square result's categories become bars; one the reference never held is marked
    unseen in the chart and in its table."""
    reference = CategoricalReference.fit(["a"] * 40 + ["b"] * 60)
    results = categorical_drift(reference, ["a"] * 30 + ["b"] * 20 + ["c"] * 10, feature="ward")
    document = stored("window_stable_day")
    features = dict(document.result.features) | {
        "ward": tuple(DriftTestResult.load(r.to_dict()) for r in results)
    }
    page = render(document.model_copy(update={"result": document.result.model_copy(
        update={"features": features})}))  # fmt: skip
    after = page[page.index('id="feature-ward"') :]
    rows = rows_of(after, "Numbers of this chart")
    assert [r[0] for r in rows] == ["a", "b", "c (unseen in the reference)"]
    assert [r[2] for r in rows] == ["0.4000", "0.6000", "0.0000"]
    assert [r[4] for r in rows] == ["0.5000", "0.3333", "0.1667"]
    assert "c (unseen)" in after[: after.index("</svg>")]


def test_every_chart_has_a_title_a_legend_a_table_and_no_style_attribute() -> None:
    """Each SVG is an image with a title, a legend and its numbers in a details table."""
    page = render(stored("window_shift_count"))
    charts = re.findall(r'<figure class="chart">(.*?)</figure>', page, re.DOTALL)
    assert len(charts) >= 15  # 10 features, scores, outcome, performance, reliability, ...
    for figure in charts:
        assert 'role="img"' in figure
        assert "<title>" in figure
        assert 'class="legend-item"' in figure
        assert '<details class="numbers">' in figure
    assert " style=" not in page
    assert "Reliability curve" in page
    assert "Estimated against realized" in page


def _serve(http: httpx.Client, clin: dict[str, str], clock: FixedClock, n: int) -> None:
    """``n`` predictions, each given its outcome, then two minutes pass (past the grace)."""
    serve_with_outcomes(http, clin, clock, n, timedelta(minutes=2))


def test_count_windows_are_opened_by_version_and_sequence_with_neighbours(
    http: httpx.Client, clock: FixedClock, deployed: dict[str, dict[str, str]]
) -> None:
    """Two count:50 windows share a start: each opens by its sequence (the colon raw or
    encoded), with crumbs and links to the other; the self-contained API page shows the
    same body with the console's style inlined."""
    clin, mle = deployed["clin"], deployed["mle"]
    _serve(http, clin, clock, 120)
    ran = http.post("/api/v1/monitoring/run", json={"window": "count:50"}, headers=mle)
    assert [c["sequence"] for c in ran.json()["computed"]] == [0, 1], ran.text
    second = http.get(f"/deployments/{DEPLOYMENT}/windows/count:50/1/1", headers=clin)
    assert second.status_code == 200, second.text
    assert "window #2 (predictions 51 to 100)" in second.text
    assert f'href="/deployments/{DEPLOYMENT}/windows/count:50/1/0"' in second.text
    assert "Next window: none" in second.text
    assert '<li><a href="/deployments">Overview</a></li>' in second.text
    encoded = http.get(f"/deployments/{DEPLOYMENT}/windows/count%3A50/1/0", headers=clin)
    assert encoded.status_code == 200, encoded.text
    assert "window #1 (predictions 1 to 50)" in encoded.text
    assert f'href="/deployments/{DEPLOYMENT}/windows/count:50/1/1"' in encoded.text

    api = http.get(
        "/api/v1/monitoring/report",
        params={"deployment": DEPLOYMENT, "window": "count:50", "version": 1, "sequence": 1},
        headers=clin | {"accept": "text/html"},
    )
    assert api.status_code == 200
    assert f"<style>{asset_text('console.css')}</style>" in api.text
    assert "<script" not in api.text
    assert "<link" not in api.text
    body = second.text[second.text.index('<section id="window">') : second.text.index("</main>")]
    without_links = re.sub(r'<nav class="series".*?</nav>', "", body, flags=re.DOTALL)
    assert without_links in api.text


def test_a_canary_versions_window_opens_by_its_version(
    http: httpx.Client,
    services: Services,
    clock: FixedClock,
    deployed: dict[str, dict[str, str]],
) -> None:
    """A day logged under versions 1 and 2 (as a canary's log holds them): the page of
    version 2's window is version 2's, version 1's is version 1's."""
    number = ready_version(http, deployed, c=0.5)
    _serve(http, deployed["clin"], clock, 60)
    columns = [attr.key for attr in inspect(Prediction).column_attrs]
    with services.db.transaction() as session:
        exempt_from_audit_guard(session)  # test set-up, as a canary's log would hold them
        for row in session.scalars(select(Prediction)).all():
            copy = {key: getattr(row, key) for key in columns}
            session.add(Prediction(**copy | {"id": uuid.uuid4().hex, "version": number}))
    clock.advance(timedelta(days=1))
    ran = http.post("/api/v1/monitoring/run", json={"window": "day"}, headers=deployed["mle"])
    computed = ran.json()["computed"]
    assert sorted(c["version"] for c in computed) == [1, number], ran.text
    (sequence,) = {c["sequence"] for c in computed}
    for version in (1, number):
        page = http.get(
            f"/deployments/{DEPLOYMENT}/windows/day/{version}/{sequence}",
            headers=deployed["clin"],
        )
        assert page.status_code == 200, page.text
        assert f"<dd>diabetes-risk v{version}</dd>" in page.text


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("x/1/0", 422, "window_kind"),
        ("count:5/1/0", 422, "window_kind"),
        ("day/1/-1", 422, "sequence"),
        ("day/0/1", 422, "version"),
        ("day/one/1", 422, "version"),
        ("day/1/99999999999999999999", 422, "sequence"),
        ("day/1/5", 404, "no window computed"),
    ],
)
def test_bad_or_unknown_windows_are_pages_never_a_500(
    http: httpx.Client, tokens: dict[Role, str], path: str, status: int, says: str
) -> None:
    """A bad kind, version or sequence is a 422 page naming it; a window not computed is a
    404 page."""
    answer = http.get(
        f"/deployments/{DEPLOYMENT}/windows/{path}", headers=bearer(tokens[Role.CLINICIAN])
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert says in answer.text


def test_the_window_page_refuses_an_admin_and_sends_the_anonymous_to_sign_in(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """An admin lacks monitoring:read (a 403 page naming it); no session is a 303 to sign-in."""
    path = f"/deployments/{DEPLOYMENT}/windows/day/1/0"
    refused = http.get(path, headers=bearer(tokens[Role.ADMIN]))
    assert refused.status_code == 403
    assert "monitoring:read" in refused.text
    anonymous = http.get(path)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
