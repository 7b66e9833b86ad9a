"""The per-series DICOM index: grouped by series, counted, read from headers only, never a
patient identifier."""

from __future__ import annotations

from pathlib import Path

from medops.datasets.dicom import Deidentifier, DeidOptions
from medops.datasets.dicom.index import series_of
from medops.datasets.dicom.uids import patient_pseudonym
from tests.helpers.dicom import ORIGINAL_PATIENT_ID, ct_series, phi_file

SECRET = b"index-test-secret-0123456789abcd"


def test_slices_are_grouped_by_series_and_counted() -> None:
    """Two series of 3 and 2 slices give two rows with their slice and byte counts."""
    one, two = list(ct_series(3, study=1)), list(ct_series(2, study=2))
    files = [(f"a/{i}.dcm", d) for i, d in enumerate(one)] + [
        (f"b/{i}.dcm", d) for i, d in enumerate(two)
    ]
    rows = series_of(files)
    assert sorted(r.slices for r in rows) == [2, 3]
    assert sum(r.bytes for r in rows) == sum(len(d) for _, d in files)
    assert {r.modality for r in rows} == {"CT"}
    assert {r.manufacturer for r in rows} == {"GE MEDICAL SYSTEMS"}
    assert all(r.deidentified is False and r.burned_in == 0 for r in rows)


def test_a_raw_series_shows_no_patient_identifier() -> None:
    """Without the project secret a raw series has no patient reference; with it, the
    pseudonym the de-identifier would give, never the Patient ID."""
    files = [("0.dcm", next(ct_series(1)))]
    assert series_of(files)[0].patient_ref is None
    keyed = series_of(files, project_secret=SECRET)[0].patient_ref
    assert keyed == patient_pseudonym(SECRET, ORIGINAL_PATIENT_ID)
    assert ORIGINAL_PATIENT_ID not in repr(series_of(files, project_secret=SECRET))


def test_a_de_identified_series_is_indexed_under_its_pseudonym_and_flags() -> None:
    """After de-identification the row says deidentified, counts burned-in slices and
    carries the same pseudonym as the de-identifier's patient reference."""
    deid = Deidentifier(SECRET, DeidOptions())
    result = deid.deidentify(phi_file().data)
    row = series_of([("x.dcm", result.data)], project_secret=SECRET)[0]
    assert row.deidentified is True
    assert row.burned_in == 1
    assert row.patient_ref == result.patient_ref
    assert row.series_uid.startswith("2.25.")


def test_headers_only_non_dicom_skipped_and_paths_read(tmp_path: Path) -> None:
    """A slice cut inside its pixel data is still indexed (pixels are never read), a CSV is
    skipped, and files given as paths are read from disk."""
    slices = list(ct_series(2))
    cut = slices[0][: len(slices[0]) - 1000]
    path = tmp_path / "1.dcm"
    path.write_bytes(slices[1])
    rows = series_of([("0.dcm", cut), ("1.dcm", path), ("notes.csv", b"a,b\n1,2\n")])
    assert len(rows) == 1
    assert rows[0].slices == 2
    assert rows[0].bytes == len(cut) + len(slices[1])
