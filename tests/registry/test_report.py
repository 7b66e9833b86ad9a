"""The validation report: shape, sklearn-equal values, subgroups, input errors, HTML rendering."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm  # type: ignore[import-untyped]

from medops.core.metrics import METRIC_NAMES
from medops.errors import InvalidInputError
from medops.registry.report import SCHEMA, compute_report
from medops.registry.report_html import render_report_html
from medops.registry.validation_report import ReportDocument

INJECTED = "<script>alert('x')</script>"


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, list[str]]]:
    """Informative scores with two attributes: sex (2 groups) and a skewed site (4 groups)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    scores = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.0, 1.0)
    sex = [str(v) for v in rng.choice(["F", "M"], n)]
    site = [str(v) for v in rng.choice(["A", "B", "C"], n, p=[0.45, 0.3, 0.25])]
    site[:5] = ["tiny"] * 5
    return y, scores, {"sex": sex, "site": site}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    y, scores, groups = make_data(400)
    return compute_report(y_true=y, scores=scores, groups=groups, n_bootstrap=300, seed=4)


def _subgroup(report: dict[str, Any], attribute: str, group: str) -> dict[str, Any]:
    return next(
        g for g in report["subgroups"] if g["attribute"] == attribute and g["group"] == group
    )


def test_report_is_strict_json_with_the_documented_shape(report: dict[str, Any]) -> None:
    """The report survives json.dumps(allow_nan=False) and has every documented key."""
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert report["schema"] == SCHEMA
    assert set(report) == {
        "schema", "n", "positives", "prevalence", "threshold", "metrics", "confusion",
        "calibration", "roc_curve", "pr_curve", "thresholds", "subgroups", "bootstrap",
    }  # fmt: skip
    assert list(report["metrics"]) == list(METRIC_NAMES)
    assert report["bootstrap"] == {"n": 300, "seed": 4, "confidence": 0.95, "method": "bca"}
    assert [row["threshold"] for row in report["thresholds"]] == [
        round(k * 0.05, 2) for k in range(1, 20)
    ]
    assert report["thresholds"][9]["threshold"] == 0.5
    assert len(report["roc_curve"]["fpr"]) <= 200
    assert report["roc_curve"]["fpr"][0] == 0.0
    assert report["roc_curve"]["fpr"][-1] == report["roc_curve"]["tpr"][-1] == 1.0
    assert report["pr_curve"]["recall"][0] == 0.0
    assert report["pr_curve"]["recall"][-1] == 1.0


def test_overall_metrics_and_confusion_equal_sklearn() -> None:
    """Headline values and the confusion matrix equal scikit-learn at the threshold."""
    y, scores, _ = make_data(300, seed=2)
    found = compute_report(y_true=y, scores=scores, threshold=0.4, n_bootstrap=0)
    pred = scores >= 0.4
    expected = {
        "auroc": skm.roc_auc_score(y, scores),
        "auprc": skm.average_precision_score(y, scores),
        "accuracy": skm.accuracy_score(y, pred),
        "sensitivity": skm.recall_score(y, pred),
        "specificity": skm.recall_score(y, pred, pos_label=0),
        "ppv": skm.precision_score(y, pred),
        "npv": skm.precision_score(y, pred, pos_label=0),
        "f1": skm.f1_score(y, pred),
        "brier": skm.brier_score_loss(y, scores),
    }
    for name, value in expected.items():
        assert found["metrics"][name]["value"] == pytest.approx(value, abs=1e-9), name
        assert found["metrics"][name]["ci_low"] is None
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert found["confusion"] == {"tp": tp, "fp": fp, "tn": tn, "fn": fn}
    row = next(r for r in found["thresholds"] if r["threshold"] == 0.4)
    assert row["sensitivity"] == pytest.approx(expected["sensitivity"], abs=1e-12)
    assert row["flagged_fraction"] == pytest.approx(pred.mean(), abs=1e-12)


def test_calibration_bins_cover_all_rows_and_give_the_ece() -> None:
    """Bin counts sum to n, empty bins have None means, score 1.0 lands in the last bin."""
    y = np.array([0, 1, 1, 0, 1, 0])
    scores = np.array([0.0, 1.0, 1.0, 0.05, 0.55, 0.5])
    found = compute_report(y_true=y, scores=scores, n_bins=4, n_bootstrap=0)
    calibration = found["calibration"]
    bins = calibration["bins"]
    assert calibration["n_bins"] == 4
    assert sum(b["count"] for b in bins) == 6
    assert [(b["lower"], b["upper"], b["count"]) for b in bins] == [
        (0.0, 0.25, 2), (0.25, 0.5, 0), (0.5, 0.75, 2), (0.75, 1.0, 2),
    ]  # fmt: skip
    assert bins[1]["mean_predicted"] is None
    assert bins[1]["fraction_positive"] is None
    assert bins[3] == {"lower": 0.75, "upper": 1.0, "count": 2, "mean_predicted": 1.0,
                       "fraction_positive": 1.0}  # fmt: skip
    expected = (2 / 6) * 0.025 + (2 / 6) * abs(0.525 - 0.5)
    assert calibration["ece"] == pytest.approx(expected, abs=1e-12)
    assert found["metrics"]["ece"]["value"] == calibration["ece"]


def test_subgroup_gap_is_value_minus_overall(report: dict[str, Any]) -> None:
    """Each defined subgroup metric's gap is its value minus the overall value."""
    checked = 0
    for group in report["subgroups"]:
        for name, stats in group["metrics"].items():
            overall = report["metrics"][name]["value"]
            if stats["value"] is None or overall is None:
                assert stats["gap"] is None
            else:
                assert stats["gap"] == pytest.approx(stats["value"] - overall, abs=1e-15)
                checked += 1
    assert checked > 0


def test_subgroup_values_equal_the_report_on_the_subset(report: dict[str, Any]) -> None:
    """A subgroup's values equal a report computed on that subgroup's rows alone."""
    y, scores, groups = make_data(400)
    mask = np.array(groups["sex"]) == "F"
    alone = compute_report(y_true=y[mask], scores=scores[mask], n_bootstrap=0)
    female = _subgroup(report, "sex", "F")
    assert female["n"] == int(mask.sum())
    assert female["positives"] == int(y[mask].sum())
    for name in METRIC_NAMES:
        assert female["metrics"][name]["value"] == alone["metrics"][name]["value"]
        assert female["metrics"][name]["ci_low"] is not None


def test_small_groups_are_reported_but_censored(report: dict[str, Any]) -> None:
    """A group under min_group_size keeps n and prevalence, but has no metrics."""
    tiny = _subgroup(report, "site", "tiny")
    assert tiny["n"] < 20
    assert tiny["censored"] is True
    assert tiny["reason"] == "n < 20"
    assert tiny["metrics"] == {}
    assert _subgroup(report, "site", "A")["censored"] is False
    assert [g["group"] for g in report["subgroups"] if g["attribute"] == "site"] == [
        "A", "B", "C", "tiny",
    ]  # fmt: skip


def test_one_class_group_has_undefined_auroc() -> None:
    """A group with only negatives has AUROC, AUPRC, sensitivity None and specificity defined."""
    y = np.array([0] * 30 + [0, 1] * 15)
    scores = np.linspace(0.0, 1.0, 60)
    groups = {"ward": ["north"] * 30 + ["south"] * 30}
    found = compute_report(y_true=y, scores=scores, groups=groups, n_bootstrap=50)
    north = _subgroup(found, "ward", "north")["metrics"]
    for name in ("auroc", "auprc", "sensitivity", "ppv"):
        assert north[name] == {
            "value": None, "ci_low": None, "ci_high": None, "ci_method": None, "gap": None
        }, name  # fmt: skip
    assert north["specificity"]["value"] is not None
    json.dumps(found, allow_nan=False)


def test_report_is_deterministic_and_subgroup_intervals_ignore_other_attributes() -> None:
    """Same seed, same report; a group's interval ignores which other attributes are given."""
    y, scores, groups = make_data(200, seed=9)
    first = compute_report(y_true=y, scores=scores, groups=groups, n_bootstrap=100, seed=1)
    again = compute_report(y_true=y, scores=scores, groups=groups, n_bootstrap=100, seed=1)
    assert first == again
    only_sex = compute_report(
        y_true=y, scores=scores, groups={"sex": groups["sex"]}, n_bootstrap=100, seed=1
    )
    assert _subgroup(only_sex, "sex", "M") == _subgroup(first, "sex", "M")
    assert only_sex["metrics"] == first["metrics"]
    other = compute_report(y_true=y, scores=scores, n_bootstrap=100, seed=2)
    assert other["metrics"]["auroc"]["ci_low"] != first["metrics"]["auroc"]["ci_low"]


def test_intervals_contain_the_estimates(report: dict[str, Any]) -> None:
    """Overall intervals bracket the point estimates, ECE's one-sided bound included."""
    for name, stats in report["metrics"].items():
        assert stats["ci_low"] is not None
        assert stats["ci_low"] <= stats["value"] <= stats["ci_high"], name
    assert report["metrics"]["ece"]["ci_method"] == "upper-bound"
    assert report["metrics"]["ece"]["ci_low"] == 0.0
    assert report["metrics"]["auroc"]["ci_method"] == "bca"


def test_every_interval_contains_its_estimate_on_calibrated_models() -> None:
    """Forty perfectly calibrated models of 80 to 600 patients: every interval, overall and
    per group, contains its estimate. With percentile intervals the ECE of 2 of them did not
    (0.0496 shown with 0.0592 to 0.1783; 0.0183 with 0.0275 to 0.0786)."""
    rng = np.random.default_rng(0)
    for trial in range(40):
        n = int(rng.integers(80, 600))
        scores = rng.beta(2, 3, n)
        y = (rng.random(n) < scores).astype(int)
        groups = {"site": [["a", "b", "c"][i % 3] for i in range(n)]}
        found = compute_report(y_true=y, scores=scores, groups=groups, n_bootstrap=1000, seed=trial)
        blocks = [found["metrics"], *(g["metrics"] for g in found["subgroups"])]
        for block in blocks:
            for name, stats in block.items():
                if stats["ci_low"] is not None:
                    assert stats["ci_low"] <= stats["value"] <= stats["ci_high"], (trial, name)


def test_boolean_labels_and_list_inputs_are_accepted() -> None:
    """Boolean labels and plain lists give the same report as integer arrays."""
    y, scores, _ = make_data(80, seed=3)
    as_int = compute_report(y_true=y, scores=scores, n_bootstrap=20)
    as_bool = compute_report(y_true=y.astype(bool), scores=list(scores), n_bootstrap=20)  # type: ignore[arg-type]
    assert as_int == as_bool


GOOD_Y = np.array([0, 1, 0, 1])
GOOD_S = np.array([0.1, 0.9, 0.4, 0.6])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"y_true": np.array([0, 1, 1])}, "scores"),
        ({"y_true": np.array([], dtype=int), "scores": np.array([])}, "labels"),
        ({"y_true": np.array([0, 1, 2, 1])}, "labels"),
        ({"y_true": np.array([0.0, 1.0, 0.5, 1.0])}, "labels"),
        ({"y_true": np.array(["0", "1", "0", "1"])}, "labels"),
        ({"y_true": np.array([[0, 1], [0, 1]])}, "labels"),
        ({"y_true": np.array([1, 1, 1, 1])}, "labels"),
        ({"scores": np.array([0.1, np.nan, 0.4, 0.6])}, "scores"),
        ({"scores": np.array([0.1, np.inf, 0.4, 0.6])}, "scores"),
        ({"scores": np.array([0.1, 1.2, 0.4, 0.6])}, "scores"),
        ({"scores": np.array([-0.1, 0.9, 0.4, 0.6])}, "scores"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.0}, "threshold"),
        ({"threshold": float("nan")}, "threshold"),
        ({"n_bootstrap": -1}, "n_bootstrap"),
        ({"n_bootstrap": 100_001}, "n_bootstrap"),
        ({"seed": -1}, "seed"),
        ({"n_bins": 0}, "n_bins"),
        ({"min_group_size": 0}, "min_group_size"),
        ({"confidence": 1.0}, "confidence"),
        ({"groups": {"sex": ["F", "M", "F"]}}, "groups.sex"),
        ({"groups": {"sex": ["F", "M", "F", 1]}}, "groups.sex"),
        ({"groups": {"sex": "FMFM"}}, "groups.sex"),
        ({"groups": {"": ["F", "M", "F", "M"]}}, "groups"),
    ],
)
def test_bad_input_raises_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    """Malformed input raises InvalidInputError whose FieldError names the offending field."""
    arguments: dict[str, Any] = {"y_true": GOOD_Y, "scores": GOOD_S, "n_bootstrap": 0}
    arguments.update(overrides)
    with pytest.raises(InvalidInputError) as caught:
        compute_report(**arguments)
    assert [error.field for error in caught.value.errors] == [field]


def test_html_is_standalone_with_plots_and_tables(report: dict[str, Any]) -> None:
    """The page is one HTML5 document with well-formed SVG plots and no script or fetch."""
    page = render_report_html(
        ReportDocument.load(report), title="Sepsis v3", meta={"model": "sepsis", "version": "3"}
    )
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    svgs = re.findall(r"<svg.*?</svg>", page, flags=re.DOTALL)
    assert len(svgs) == 5  # ROC, PR, reliability, two forest plots
    for svg in svgs:
        ET.fromstring(svg)  # noqa: S314 -- our own output, checked to be well-formed XML
    for heading in ("ROC curve", "Precision-recall", "Reliability diagram", "AUROC", "Sensitivity"):
        assert heading in page
    assert "censored (n &lt; 20)" in page
    assert "gap" in page
    lowered = page.lower()
    for forbidden in ("<script", "src=", "href=", "@import", "url("):
        assert forbidden not in lowered


def test_html_escapes_injected_markup() -> None:
    """A <script> in a group label, attribute, title or meta value is rendered as text."""
    y, scores, _ = make_data(120, seed=5)
    groups = {INJECTED: [INJECTED if i % 2 else "ok & fine" for i in range(120)]}
    found = compute_report(y_true=y, scores=scores, groups=groups, n_bootstrap=20)
    page = render_report_html(
        ReportDocument.load(found),
        title=INJECTED,
        meta={INJECTED: INJECTED, "dataset digest": 'sha256:"ab"'},
    )
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "ok &amp; fine" in page
    assert "sha256:&quot;ab&quot;" in page
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.DOTALL):
        ET.fromstring(svg)  # noqa: S314 -- our own output


def test_html_renders_without_subgroups_or_bootstrap() -> None:
    """A report without groups or intervals still renders, marking undefined values."""
    found = compute_report(y_true=GOOD_Y, scores=GOOD_S, n_bootstrap=0)
    page = render_report_html(ReportDocument.load(found), title="t", meta={})
    assert "No subgroup attributes were given." in page
    assert "—" in page
    assert len(re.findall(r"<svg", page)) == 3
