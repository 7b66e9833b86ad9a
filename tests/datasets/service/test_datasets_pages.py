"""The dataset console pages on SQLite and PostgreSQL: the list, a dataset and a version with
its DICOM series and holds render for a reader; a role without data:read is refused."""

from __future__ import annotations

import json

import httpx

from medops.core.permissions import Role
from tests.helpers.http import bearer


def _add(http: httpx.Client, head: dict[str, str]) -> None:
    """An empty-file version through the API (no store needed for the bytes)."""
    empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    body = {
        "files": [{"path": "notes/empty.txt", "size": 0, "digest": empty}],
        "dicom_series": [
            {
                "series_uid": "2.25.1",
                "modality": "CT",
                "patient_ref": "P-1",
                "slices": 3,
                "bytes": 99,
                "burned_in": 1,
            }
        ],
    }
    made = http.post("/api/v1/datasets/demo/versions", json=body, headers=head)
    assert made.status_code == 201, made.text


def test_dataset_pages_render(http: httpx.Client, tokens: dict[Role, str]) -> None:
    """A reader sees the dataset, its version and its DICOM series; a clinician gets 403."""
    ds = bearer(tokens[Role.DATA_SCIENTIST])
    _add(http, ds)
    listing = http.get("/datasets", headers=ds)
    assert listing.status_code == 200
    assert "demo" in listing.text
    assert "demo@1" in http.get("/datasets/demo", headers=ds).text
    version = http.get("/datasets/demo/1", headers=ds)
    assert version.status_code == 200
    assert "2.25.1" in version.text
    assert "/lineage?ref=demo%401" in version.text
    assert http.get("/datasets", headers=bearer(tokens[Role.CLINICIAN])).status_code == 403
    assert json.loads(http.get("/api/v1/datasets", headers=ds).text)[0]["latest"] == 1
