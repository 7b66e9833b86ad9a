"""De-identification by PS3.15 Annex E: the golden test over a file carrying PHI in every
attribute of Table E.1-1, UIDs consistent across files and runs, pixel data unchanged, the
options, burned-in annotation flagged, and non-DICOM input refused."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from medops.datasets.dicom import Deidentifier, DeidMethod, DeidOptions
from medops.datasets.dicom.deidentify import METHOD_TEXT, is_part10
from medops.datasets.dicom.profile import rules_by_tag
from medops.errors import InvalidInputError
from tests.helpers.dicom import (
    HOLDER,
    MARK,
    ORIGINAL_PATIENT_ID,
    Crafted,
    bare_dataset_bytes,
    ct_series,
    ct_small,
    keyword,
    phi_file,
)

SECRET = b"project-secret-for-tests-0123456789"
PATIENT_TAGS = {0x00100010, 0x00100020}


@pytest.fixture(scope="module")
def crafted() -> Crafted:
    return phi_file()


def _read(data: bytes) -> Dataset:
    return dcmread(io.BytesIO(data))


def _empty(value: object) -> bool:
    return value is None or value in ("", b"", []) or len(str(value)) == 0


def test_every_phi_attribute_of_the_table_is_gone_or_replaced(crafted: Crafted) -> None:
    """Each of the table's attributes put in the file gets its Basic Profile action: X gone,
    Z emptied, D a dummy, U the keyed new UID, sequences kept only to be cleaned inside."""
    deid = Deidentifier(SECRET, DeidOptions())
    out = _read(deid.deidentify(crafted.data, name="phi.dcm").data)
    table = rules_by_tag()
    wrong = []
    for number, original in sorted(crafted.values.items()):
        action = table[number].action(DeidOptions())
        present = number in out
        value = out[number].value if present else None
        if number in PATIENT_TAGS:
            ok = str(value).startswith("PT-")
        elif action == "X":
            ok = not present
        elif action == "Z":
            ok = not present or _empty(value)
        elif action == "D":
            ok = not present or original == "SQ" or value != original
        elif action == "U":
            ok = value == deid.new_uid(str(original)) and str(value).startswith("2.25.")
        else:  # U*: the sequence stays, its UIDs replaced (the byte scan below checks them)
            ok = action == "U*" and present
        if not ok:
            wrong.append(f"{keyword(number)} [{table[number].basic} -> {action}]: {value!r}")
    assert wrong == []
    assert len(crafted.values) >= 440  # every table attribute pydicom can write (all but 8)


def test_no_marker_uid_or_date_survives_anywhere_in_the_bytes(crafted: Crafted) -> None:
    """No PHI marker, original instance UID or date is left anywhere in the output: not in
    nested sequences, private tags, curves, overlays or the file meta."""
    data = Deidentifier(SECRET, DeidOptions()).deidentify(crafted.data).data
    assert MARK.encode() not in data
    assert [uid for uid in crafted.uids if uid.encode() in data] == []
    assert [day for day in crafted.dates if day.encode() in data] == []


def test_private_tags_curves_and_overlays_are_removed_at_every_depth(crafted: Crafted) -> None:
    """No odd group remains at any depth, nor any 50xx curve or 60xx overlay group."""
    out = _read(Deidentifier(SECRET, DeidOptions()).deidentify(crafted.data).data)
    groups: set[int] = set()

    def walk(ds: Dataset) -> None:
        for elem in ds:
            groups.add(elem.tag.group)
            if elem.VR == "SQ":
                for item in elem.value:
                    walk(item)

    walk(out)
    assert {g for g in groups if g % 2 == 1} == set()
    assert {g for g in groups if g & 0xFF00 in {0x5000, 0x6000}} == set()
    assert HOLDER in out  # a sequence outside the table stays, cleaned inside


def test_identity_removed_and_the_method_codes_name_the_options(crafted: Crafted) -> None:
    """Patient Identity Removed is YES and the CID 7050 codes list exactly the options used."""
    options = DeidOptions(retain_longitudinal="modified", clean_descriptors=True)
    out = _read(Deidentifier(SECRET, options).deidentify(crafted.data).data)
    assert out.PatientIdentityRemoved == "YES"
    assert out.DeidentificationMethod == METHOD_TEXT
    codes = [
        (i.CodeValue, i.CodingSchemeDesignator) for i in out.DeidentificationMethodCodeSequence
    ]
    assert codes == [("113100", "DCM"), ("113105", "DCM"), ("113107", "DCM")]
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    basic = _read(Deidentifier(SECRET, DeidOptions()).deidentify(crafted.data).data)
    assert [i.CodeValue for i in basic.DeidentificationMethodCodeSequence] == ["113100"]
    assert basic.LongitudinalTemporalInformationModified == "REMOVED"


def test_the_method_record_names_the_profile_options_codes_and_table() -> None:
    """DeidMethod, kept with a version, carries the options, their codes and the table."""
    options = DeidOptions(retain_longitudinal="full")
    method = DeidMethod.of(options)
    assert method.options == options
    assert [c.value for c in method.codes] == ["113100", "113106"]
    assert "Table E.1-1" in method.table
    assert DeidMethod.model_validate_json(method.model_dump_json()) == method


def test_pixel_data_and_transfer_syntax_are_unchanged_byte_for_byte(crafted: Crafted) -> None:
    """Pixel Data's bytes and the transfer syntax are exactly the input's."""
    before = _read(crafted.data)
    after = _read(Deidentifier(SECRET, DeidOptions()).deidentify(crafted.data).data)
    assert after.PixelData == before.PixelData
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID


def test_burned_in_annotation_is_flagged_not_passed_silently(crafted: Crafted) -> None:
    """YES is reported as True and kept in the file; absent is None (unknown); NO is False."""
    deid = Deidentifier(SECRET, DeidOptions())
    result = deid.deidentify(crafted.data)
    assert result.burned_in is True
    assert _read(result.data).BurnedInAnnotation == "YES"
    assert deid.deidentify(ct_small()).burned_in is None
    ds = _read(ct_small())
    ds.BurnedInAnnotation = "NO"
    buffer = io.BytesIO()
    ds.save_as(buffer)
    assert deid.deidentify(buffer.getvalue()).burned_in is False


def test_uids_are_consistent_across_files_runs_and_references() -> None:
    """A series keeps one new study and series UID across its files and across two
    de-identifiers with the same secret; a different secret gives different UIDs."""
    slices = list(ct_series(5))
    first = [_read(Deidentifier(SECRET, DeidOptions()).deidentify(s).data) for s in slices]
    again = [_read(Deidentifier(SECRET, DeidOptions()).deidentify(s).data) for s in slices]
    other = _read(
        Deidentifier(b"another-secret-0123456789", DeidOptions()).deidentify(slices[0]).data
    )
    assert len({d.StudyInstanceUID for d in first}) == 1
    assert len({d.SeriesInstanceUID for d in first}) == 1
    assert len({d.SOPInstanceUID for d in first}) == 5
    assert [d.SOPInstanceUID for d in first] == [d.SOPInstanceUID for d in again]
    assert [d.file_meta.MediaStorageSOPInstanceUID for d in first] == [
        d.SOPInstanceUID for d in first
    ]
    assert other.StudyInstanceUID != first[0].StudyInstanceUID
    assert all(len(d.SOPInstanceUID) <= 64 for d in first)


def test_a_reference_gets_the_same_new_uid_as_the_instance_it_points_to() -> None:
    """A Referenced SOP Instance UID inside a sequence maps to the referenced slice's new UID."""
    slices = list(ct_series(2))
    pointing = _read(slices[1])
    item = Dataset()
    item.ReferencedSOPClassUID = pointing.SOPClassUID
    item.ReferencedSOPInstanceUID = _read(slices[0]).SOPInstanceUID
    pointing.ReferencedImageSequence = [item]
    buffer = io.BytesIO()
    pointing.save_as(buffer)
    deid = Deidentifier(SECRET, DeidOptions())
    target = _read(deid.deidentify(slices[0]).data)
    source = _read(deid.deidentify(buffer.getvalue()).data)
    assert source.ReferencedImageSequence[0].ReferencedSOPInstanceUID == target.SOPInstanceUID


def test_mappings_hold_each_original_and_its_pseudonym(crafted: Crafted) -> None:
    """The patient and every replaced UID are returned original -> pseudonym for sealing."""
    deid = Deidentifier(SECRET, DeidOptions())
    result = deid.deidentify(crafted.data)
    patient = [m for m in result.mappings if m.kind == "patient"]
    assert [(m.original, m.pseudonym) for m in patient] == [
        (ORIGINAL_PATIENT_ID, result.patient_ref)
    ]
    uid_map = {m.original: m.pseudonym for m in result.mappings if m.kind == "uid"}
    # Every UID that was replaced (not removed with its attribute) is in the mappings.
    replaced = [u for u in crafted.uids if deid.new_uid(u).encode() in result.data]
    assert len(replaced) > 50
    assert {u: uid_map.get(u) for u in replaced} == {u: deid.new_uid(u) for u in replaced}
    out = _read(result.data)
    assert out.PatientID == out.PatientName == result.patient_ref


def test_full_dates_keep_every_date(crafted: Crafted) -> None:
    """Retain Longitudinal Temporal Information, full dates: dates and times are kept."""
    before = _read(crafted.data)
    out = _read(
        Deidentifier(SECRET, DeidOptions(retain_longitudinal="full")).deidentify(crafted.data).data
    )
    for name in (
        "StudyDate",
        "SeriesDate",
        "AcquisitionDateTime",
        "StudyTime",
        "InstanceCreationDate",
    ):
        assert out[name].value == before[name].value, name
    assert "PatientBirthDate" not in out or out.PatientBirthDate == ""
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_modified_dates_shift_every_date_of_a_patient_by_the_same_days(crafted: Crafted) -> None:
    """Modified dates: each date moves back by one number of days, fixed per patient and at
    most date_shift_days_max; times stay; another patient gets another shift."""
    options = DeidOptions(retain_longitudinal="modified", date_shift_days_max=90)
    before = _read(crafted.data)
    out = _read(Deidentifier(SECRET, options).deidentify(crafted.data).data)

    def day(text: str) -> dt.date:
        return dt.datetime.strptime(text[:8], "%Y%m%d").date()

    shifts = {
        (day(before[n].value) - day(out[n].value)).days
        for n in ("StudyDate", "SeriesDate", "AcquisitionDateTime", "InstanceCreationDate")
    }
    nested = before[HOLDER][0].StudyDate, out[HOLDER][0].StudyDate
    shifts.add((day(nested[0]) - day(nested[1])).days)
    assert len(shifts) == 1
    assert 1 <= shifts.pop() <= 90
    assert out.StudyTime == before.StudyTime
    assert out.AcquisitionDateTime[8:] == before.AcquisitionDateTime[8:]
    patients = {
        _read(
            Deidentifier(SECRET, options).deidentify(next(ct_series(1, patient=p))).data
        ).StudyDate
        for p in ("A-1", "B-2", "C-3", "D-4")
    }
    assert len(patients) > 1


def test_clean_descriptors_keeps_descriptions_without_identifiers() -> None:
    """Clean Descriptors keeps a description but scrubs the patient's name, ID and long
    digit runs from it; without the option the description is removed."""
    ds = _read(ct_small())
    ds.PatientName = "Curie^Li"
    ds.PatientID = "MRN778899"
    ds.SeriesDescription = "CHEST CT curie MRN778899 seen 2024-01-02 CLINICAL"
    ds.StudyDescription = "CT ABDOMEN"
    buffer = io.BytesIO()
    ds.save_as(buffer)
    options = DeidOptions(clean_descriptors=True)
    out = _read(Deidentifier(SECRET, options).deidentify(buffer.getvalue()).data)
    assert out.StudyDescription == "CT ABDOMEN"
    assert "curie" not in out.SeriesDescription.lower()
    assert "778899" not in out.SeriesDescription
    assert "2024" not in out.SeriesDescription
    assert out.SeriesDescription.startswith("CHEST CT")
    assert out.SeriesDescription.endswith("CLINICAL")  # "Li" is scrubbed as a word only
    basic = _read(Deidentifier(SECRET, DeidOptions()).deidentify(buffer.getvalue()).data)
    assert "SeriesDescription" not in basic
    assert "StudyDescription" not in basic


def test_keep_private_keeps_private_attributes_only_when_asked(crafted: Crafted) -> None:
    """keep_private (never the default) keeps private attributes and says so (113111)."""
    assert DeidOptions().keep_private is False
    out = _read(Deidentifier(SECRET, DeidOptions(keep_private=True)).deidentify(crafted.data).data)
    assert 0x00291010 in out
    assert "113111" in [i.CodeValue for i in out.DeidentificationMethodCodeSequence]


def test_a_file_without_patient_attributes_has_no_patient_reference() -> None:
    """A phantom with no Patient ID or name gets no pseudonym and no patient mapping."""
    result = Deidentifier(SECRET, DeidOptions()).deidentify(bare_dataset_bytes())
    assert result.patient_ref is None
    assert [m for m in result.mappings if m.kind == "patient"] == []
    assert _read(result.data).PatientIdentityRemoved == "YES"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"patient_id,age\nMRN1,42\n", "not a DICOM Part 10 file"),
        (b"", "not a DICOM Part 10 file"),
        (b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff", "only a file meta header"),
        (ct_small()[:10_000], "truncated DICOM file (PixelData is cut short)"),
        (ct_small()[:1_000], "truncated DICOM file"),
    ],
)
def test_non_dicom_input_is_refused_with_an_error_naming_the_file(data: bytes, why: str) -> None:
    """Text, empty and broken input raise InvalidInputError naming the file, nothing else."""
    with pytest.raises(InvalidInputError) as caught:
        Deidentifier(SECRET, DeidOptions()).deidentify(data, name="scans/notes.csv")
    assert str(caught.value).startswith("scans/notes.csv: ")
    assert why in str(caught.value)
    assert caught.value.errors[0].field == "scans/notes.csv"


def test_is_part10_tells_dicom_files_from_others_by_their_header() -> None:
    """The preamble and DICM mark a Part 10 file; a CSV or a short file is not one."""
    assert is_part10(ct_small()[:132]) is True
    assert is_part10(memoryview(ct_small())) is True
    assert is_part10(b"patient_id,age\n" * 20) is False
    assert is_part10(b"") is False


def test_a_short_project_secret_is_refused() -> None:
    """The keyed replacements need a real secret: under 16 bytes is refused."""
    with pytest.raises(InvalidInputError):
        Deidentifier(b"short", DeidOptions())


def test_date_shift_bound_is_validated() -> None:
    """date_shift_days_max must be at least one day."""
    with pytest.raises(ValueError, match="date_shift_days_max"):
        DeidOptions(date_shift_days_max=0)
