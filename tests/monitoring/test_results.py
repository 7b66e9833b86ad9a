"""The typed monitoring window: stored windows (written before the models existed: day, count,
unlabelled with CBPE, insufficient data, learned thresholds) load with no unknown key and
serialise back to the same JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medops.monitoring.profile import ReferenceProfile
from medops.monitoring.results import WindowDocument, WindowResult, as_float
from tests.helpers.documents import load, stored, unknown_keys

WINDOWS = stored("window_")


def test_there_are_stored_windows() -> None:
    """The round trip below runs on real documents, not on none."""
    assert len(WINDOWS) >= 5


@pytest.mark.parametrize("path", WINDOWS, ids=lambda p: p.stem)
def test_a_stored_window_round_trips_to_the_same_json(path: Path) -> None:
    """Same keys (absent stays absent, null stays null), same values, same stored text."""
    document = load(path)
    window = WindowResult.load(document)
    dumped = window.dump()
    assert json.dumps(dumped, sort_keys=True) == json.dumps(document, sort_keys=True)
    assert list(unknown_keys(window)) == []


def test_a_stored_window_with_its_summary_round_trips() -> None:
    """The API's window document (summary and result) loads and dumps unchanged."""
    result = load(WINDOWS[0])
    document = {
        "alerts": result["alerts"], "deployment": "sepsis", "drifted": False,
        "end": "2026-01-02T00:00:00+00:00", "labelled": result["labelled"], "model": "m",
        "result": result, "rows": result["rows"], "sequence": 20454,
        "start": "2026-01-01T00:00:00+00:00", "status": result["status"],
        "verdict": result["verdict"], "version": 1, "window": "day",
    }  # fmt: skip
    loaded = WindowDocument.load(document)
    assert json.dumps(loaded.dump(), sort_keys=True) == json.dumps(document, sort_keys=True)
    assert loaded.result.rows == result["rows"]


def test_non_finite_statistics_stay_strings_and_read_as_numbers() -> None:
    """drift.py stores infinity as "inf": kept as stored, read as a float."""
    assert as_float("inf") == float("inf")
    assert as_float(0.5) == 0.5
    assert as_float(None) is None


def test_the_stored_profile_round_trips_through_its_typed_form() -> None:
    """The reference profile (a frozen dataclass, numpy inside) reads the stored JSON and
    writes it back unchanged, as the service stores it (sorted keys)."""
    (path,) = stored("profile")
    document = load(path)
    profile = ReferenceProfile.from_dict(document)
    assert json.dumps(profile.to_dict(), sort_keys=True) == json.dumps(document, sort_keys=True)
