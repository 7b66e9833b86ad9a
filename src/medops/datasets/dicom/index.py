"""The DICOM index of a dataset version: one row per series, read from headers only.

Each file is parsed up to (not including) its Pixel Data, so indexing 100,000 slices reads
their headers and not their images. Files that are not DICOM are skipped (a dataset may hold
CSVs and notes beside its images). The patient reference is a pseudonym, never a patient
identifier: the Patient ID of a de-identified file (Patient Identity Removed = YES) is already
one; for a file that is not de-identified it is the project's keyed pseudonym when the
project secret is given, else nothing.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydicom import dcmread
from pydicom.dataset import Dataset

from medops.datasets.dicom import uids
from medops.datasets.dicom.values import patient_key


class SeriesInfo(BaseModel):
    """One series of a version (the fields of ``data_dicom_series``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    series_uid: str = Field(max_length=64)
    study_uid: str | None = Field(default=None, max_length=64)
    patient_ref: str | None = Field(default=None, max_length=128)
    modality: str | None = Field(default=None, max_length=16)
    manufacturer: str | None = Field(default=None, max_length=128)
    model_name: str | None = Field(default=None, max_length=128)
    body_part: str | None = Field(default=None, max_length=64)
    slices: int = Field(ge=0)
    bytes: int = Field(ge=0)
    burned_in: int = Field(ge=0)  # slices whose Burned In Annotation is YES
    deidentified: bool  # every slice has Patient Identity Removed = YES


def series_of(
    files: Iterable[tuple[str, bytes | Path]], *, project_secret: bytes | None = None
) -> list[SeriesInfo]:
    """The series of ``files`` (path in the dataset, and its bytes or where to read them),
    sorted by series UID; non-DICOM files and files without a Series Instance UID are
    skipped."""
    found: dict[str, dict[str, object]] = {}
    for _path, content in files:
        header, size = _header(content)
        if header is None:
            continue
        series_uid = _text(header, "SeriesInstanceUID", 64)
        if not series_uid:
            continue
        burned = _text(header, "BurnedInAnnotation", 16).upper() == "YES"
        deidentified = _text(header, "PatientIdentityRemoved", 16).upper() == "YES"
        row = found.get(series_uid)
        if row is None:
            found[series_uid] = {
                "series_uid": series_uid,
                "study_uid": _text(header, "StudyInstanceUID", 64) or None,
                "patient_ref": _patient_ref(header, deidentified, project_secret),
                "modality": _text(header, "Modality", 16) or None,
                "manufacturer": _text(header, "Manufacturer", 128) or None,
                "model_name": _text(header, "ManufacturerModelName", 128) or None,
                "body_part": _text(header, "BodyPartExamined", 64) or None,
                "slices": 1,
                "bytes": size,
                "burned_in": int(burned),
                "deidentified": deidentified,
            }
            continue
        row["slices"] = int(str(row["slices"])) + 1
        row["bytes"] = int(str(row["bytes"])) + size
        row["burned_in"] = int(str(row["burned_in"])) + int(burned)
        row["deidentified"] = bool(row["deidentified"]) and deidentified
    return [SeriesInfo.model_validate(found[uid]) for uid in sorted(found)]


def _header(content: bytes | Path) -> tuple[Dataset | None, int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(content, Path):
                size = content.stat().st_size
                with content.open("rb") as handle:
                    return dcmread(handle, stop_before_pixels=True), size
            return dcmread(io.BytesIO(content), stop_before_pixels=True), len(content)
    except Exception:  # noqa: BLE001 - not DICOM (or broken): not part of the index
        size = content.stat().st_size if isinstance(content, Path) else len(content)
        return None, size


def _text(header: Dataset, keyword: str, limit: int) -> str:
    try:
        value = header.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed value is as good as none for an index
        return ""
    return "" if value is None else str(value).strip()[:limit]


def _patient_ref(header: Dataset, deidentified: bool, secret: bytes | None) -> str | None:
    patient_id = _text(header, "PatientID", 64)
    if deidentified:
        return patient_id or None
    if secret is None:
        return None
    key = patient_key(header)
    return uids.patient_pseudonym(secret, key) if key else None
