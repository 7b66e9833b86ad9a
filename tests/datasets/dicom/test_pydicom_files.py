"""De-identification over the DICOM files pydicom ships in its package (no download): each
Part 10 file comes out readable, de-identified, free of private attributes, with the same
pixel bytes; each file that is not a whole Part 10 file is refused with a clear error."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from medops.datasets.dicom import Deidentifier, DeidOptions
from medops.datasets.dicom.profile import rules_by_tag
from medops.errors import InvalidInputError

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
SECRET = b"pydicom-test-files-secret-0123456"
# Files pydicom ships that are not whole DICOM Part 10 files, and what medops says of them.
REFUSED = {
    "ExplVR_BigEndNoMeta.dcm": "not a DICOM Part 10 file",
    "ExplVR_LitEndNoMeta.dcm": "not a DICOM Part 10 file",
    "no_meta.dcm": "not a DICOM Part 10 file",
    "rtstruct.dcm": "not a DICOM Part 10 file",
    "MR_truncated.dcm": "truncated DICOM file",
    "rtplan_truncated.dcm": "truncated DICOM file",
}
FILES = sorted(p.name for p in TEST_FILES.glob("*.dcm"))


def _read(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some files carry invalid values on purpose
        ds = pydicom.dcmread(io.BytesIO(data))
        for elem in ds.iterall():  # parse every value now, under the filter
            _ = elem.value
        return ds


def test_the_package_ships_the_files_this_test_expects() -> None:
    """pydicom's bundled files are there (40+), including every file expected to be refused."""
    assert len(FILES) >= 40
    assert set(REFUSED) <= set(FILES)


@pytest.mark.parametrize("name", [n for n in FILES if n not in REFUSED])
def test_a_bundled_file_is_de_identified_with_its_pixels_unchanged(name: str) -> None:
    """The output parses, says YES to Patient Identity Removed, holds no private attribute
    at any depth, no removed (X) attribute of the table at the top level, new UIDs for the
    replaced ones, and exactly the input's Pixel Data bytes."""
    raw = (TEST_FILES / name).read_bytes()
    deid = Deidentifier(SECRET, DeidOptions())
    result = deid.deidentify(raw, name=name)
    before, after = _read(raw), _read(result.data)
    assert after.PatientIdentityRemoved == "YES"
    assert [e.tag for e in after.iterall() if e.tag.is_private] == []
    assert after.get("PixelData") == before.get("PixelData")
    options = DeidOptions()
    for number, rule in rules_by_tag().items():
        if number not in before or number >> 16 == 0x0002:
            continue
        action = rule.action(options)
        if action == "X":
            assert number not in after, rule.keyword
        elif action == "U" and before[number].value:
            assert after[number].value != before[number].value, rule.keyword
    original_id = str(before.get("PatientID", "") or "")
    if original_id:
        assert after.PatientID == result.patient_ref != original_id


def test_a_dicomdir_is_refused_not_broken() -> None:
    """A DICOMDIR (patient records at byte offsets) is refused, not rewritten with its
    offsets wrong."""
    data = (TEST_FILES / "dicomdirtests" / "DICOMDIR").read_bytes()
    with pytest.raises(InvalidInputError, match=r"^DICOMDIR: a DICOMDIR"):
        Deidentifier(SECRET, DeidOptions()).deidentify(data, name="DICOMDIR")


@pytest.mark.parametrize(("name", "why"), sorted(REFUSED.items()))
def test_a_bundled_file_that_is_not_whole_part_10_is_refused(name: str, why: str) -> None:
    """Files without the Part 10 header, or cut short, raise InvalidInputError naming them."""
    with pytest.raises(InvalidInputError, match=f"^{name}: {why}"):
        Deidentifier(SECRET, DeidOptions()).deidentify((TEST_FILES / name).read_bytes(), name=name)
