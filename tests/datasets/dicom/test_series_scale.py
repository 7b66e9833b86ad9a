"""A 1,000-slice CT series de-identified the way ``data add --deidentify`` does it: one study
and series UID across all slices, one patient. (Its speed, about 2 s on the 2-core development
machine, is measured by hand and in the demo, not asserted here.)"""

from __future__ import annotations

from medops.datasets.dicom import Deidentifier, DeidOptions
from medops.datasets.dicom.index import series_of
from tests.helpers.dicom import ct_series

SLICES = 1_000


def test_a_thousand_slices_keep_one_study_one_series_one_patient() -> None:
    """1,000 slices come out as one series of one study of one patient, each slice its own
    new SOP Instance UID."""
    slices = list(ct_series(SLICES))
    deid = Deidentifier(b"scale-test-secret-0123456789abcdef", DeidOptions())
    results = [deid.deidentify(data, name=f"{i}.dcm") for i, data in enumerate(slices)]
    rows = series_of((f"{i}.dcm", r.data) for i, r in enumerate(results))
    assert len(rows) == 1
    assert rows[0].slices == SLICES
    assert rows[0].deidentified is True
    assert len({r.patient_ref for r in results}) == 1
    uids = {m.original: m.pseudonym for r in results for m in r.mappings if m.kind == "uid"}
    assert len(uids) == SLICES + 4  # instances + study, series, frame of reference, creator
