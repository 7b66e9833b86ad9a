"""The console's explanation page: a logged prediction's contributions as an SVG bar chart
(bars right for raising, left for lowering, one per feature, the shown ones unmarked), its
facts and audit match, linked from the audit page; auditors only; bad and unknown ids as
4xx pages. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

import httpx

from tests.helpers.registry import FEATURES, predict, random_records


def test_an_auditor_sees_a_prediction_explained_as_a_bar_chart(
    http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """One bar per feature, each bar's exact contribution in its title equal to the logged
    one, raising ones drawn right of the axis (bar-up) and lowering ones left (bar-down);
    the audit match shown; the audit page links the prediction's record to the page."""
    answer = predict(
        http,
        deployed["clin"],
        {"features": random_records(1, seed=8)[0], "patient_ref": "pt-x", "explain": True},
    )
    prediction = answer.json()["predictions"][0]
    logged = http.get(
        f"/api/v1/predictions/{prediction['id']}/explanation", headers=deployed["aud"]
    ).json()
    page = http.get("/explanation", params={"prediction": prediction["id"]},
                    headers=deployed["aud"])  # fmt: skip
    assert page.status_code == 200, page.text
    assert page.headers["content-security-policy"]
    bars = re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="14" '
                      r'class="(bar-up|bar-down)"><title>([^<]*)</title>', page.text)  # fmt: skip
    assert len(bars) == len(FEATURES)
    axis = float(re.search(r'<line x1="([\d.]+)"[^>]*class="axis"', page.text).group(1))  # type: ignore[union-attr]
    for (x, width, css, title), item in zip(bars, logged["contributions"], strict=True):
        name, _, value = html.unescape(title).rpartition(": ")
        assert name.removesuffix(" (not shown)") == item["feature"]
        assert float(value) == float(f"{item['contribution']:+.6g}")
        if item["contribution"] > 0:
            assert (css, float(x)) == ("bar-up", axis)
        else:
            assert css == "bar-down"
            assert abs(float(x) + float(width) - axis) < 0.02
    assert "matches" in page.text
    audit = http.get("/audit", params={"patient": "pt-x"}, headers=deployed["aud"]).text
    assert f'href="/explanation?prediction={prediction["id"]}"' in audit


def test_the_page_is_for_auditors_and_refuses_bad_ids(
    http: httpx.Client, deployed: dict[str, dict[str, str]]
) -> None:
    """A clinician is refused (403); a malformed id is a 422 page, an unexplained
    prediction a 404 page naming it."""
    plain = predict(http, deployed["clin"], {"features": random_records(1)[0]})
    prediction_id = plain.json()["predictions"][0]["id"]
    refused = http.get("/explanation", params={"prediction": prediction_id},
                       headers=deployed["clin"])  # fmt: skip
    assert refused.status_code == 403
    bad = http.get("/explanation", params={"prediction": "nothex"}, headers=deployed["aud"])
    assert bad.status_code == 422
    missing = http.get("/explanation", params={"prediction": prediction_id},
                       headers=deployed["aud"])  # fmt: skip
    assert missing.status_code == 404
    assert prediction_id in missing.text
    empty = http.get("/explanation", headers=deployed["aud"])
    assert empty.status_code == 200
    assert 'name="prediction"' in empty.text
