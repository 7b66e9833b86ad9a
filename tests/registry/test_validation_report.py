"""The typed validation report: stored reports (written before the model existed) load and
serialise back to the same canonical JSON, so the same hash; a fresh report does too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medops.core.canonical import canonical_json, sha256_json
from medops.registry.report import compute_report
from medops.registry.validation_report import ReportDocument
from tests.helpers.documents import load, stored, unknown_keys

REPORTS = stored("validation_report")


def test_there_are_stored_reports() -> None:
    """The round trip below runs on real documents, not on none."""
    assert len(REPORTS) >= 2


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.stem)
def test_a_stored_report_round_trips_to_the_same_text_and_hash(path: Path) -> None:
    """Same keys, same values, same types (an int stays an int), so the same report hash."""
    document = load(path)
    report = ReportDocument.load(document)
    assert canonical_json(report.dump()) == canonical_json(document)
    assert sha256_json(report.dump()) == sha256_json(document)
    assert list(unknown_keys(report)) == []


def test_a_fresh_report_round_trips_and_reads_by_attribute() -> None:
    """What compute_report returns now loads the same way, and reads through attributes."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    scores = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0.0, 1.0)
    document = compute_report(
        y_true=y, scores=scores, groups={"sex": list(rng.choice(["F", "M"], 200))}, n_bootstrap=50
    )
    report = ReportDocument.load(document)
    assert canonical_json(report.dump()) == canonical_json(document)
    assert report.schema_ == "medops.validation-report/1"
    assert report.n == 200
    assert report.value("auroc") == document["metrics"]["auroc"]["value"]
    assert [g.group for g in report.subgroups] == ["F", "M"]


def test_a_report_is_frozen() -> None:
    """A loaded report cannot be changed in place (its hash is stored)."""
    report = ReportDocument.load(load(REPORTS[0]))
    with pytest.raises(ValueError, match="frozen"):
        report.n = 1
