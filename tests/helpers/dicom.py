"""DICOM files for the de-identification tests: one carrying PHI in every attribute of
PS3.15 Table E.1-1 (top level, inside sequences, two levels deep, in private tags, curves and
overlays), and series of small CT slices made from pydicom's bundled ``CT_small.dcm``.

Every text value of the PHI file holds a unique marker (``ZZPHI`` and a number) and every UID,
date and marker is recorded in ``Crafted.values``, so a test can look for each one in the
de-identified bytes."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from medops.datasets.dicom.profile import rules, rules_by_tag

MARK = "ZZPHI"
ORIGINAL_PATIENT_ID = "ZZPHI-MRN-000001"
ORIGINAL_PATIENT_NAME = "ZZPHIDOE^JANE"
UID_ROOT = "1.2.826.0.1.3680043.10.999."
# A sequence the table does not list, holding table attributes and a nested sequence: the
# de-identifier has to clean inside sequences it has no rule for.
HOLDER = "ProcedureCodeSequence"


def ct_small() -> bytes:
    """The bytes of pydicom's bundled CT_small.dcm."""
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    return Path(path).read_bytes()


@dataclass
class Crafted:
    """A crafted file and every identifying value put in it."""

    data: bytes
    # tag -> the value set at the top level (str, list of str, int, bytes or "SQ")
    values: dict[int, object] = field(default_factory=dict)
    markers: list[str] = field(default_factory=list)  # every text marker, anywhere
    uids: list[str] = field(default_factory=list)  # every instance UID put in, anywhere
    dates: list[str] = field(default_factory=list)  # every date (DA) put in, anywhere


class _Values:
    def __init__(self, crafted: Crafted) -> None:
        self.crafted = crafted
        self.count = 0

    def marker(self) -> str:
        self.count += 1
        text = f"{MARK}{self.count:04d}"
        self.crafted.markers.append(text)
        return text

    def uid(self) -> str:
        self.count += 1
        text = f"{UID_ROOT}{self.count}"
        self.crafted.uids.append(text)
        return text

    def date(self) -> str:
        self.count += 1
        text = (dt.date(1950, 1, 1) + dt.timedelta(days=self.count * 37)).strftime("%Y%m%d")
        self.crafted.dates.append(text)
        return text

    def value(self, vr: str) -> object:  # noqa: PLR0911 - one answer per VR family
        vr = vr.split(" or ", maxsplit=1)[0]
        if vr == "PN":
            return f"{self.marker()}^JANE"
        if vr == "UI":
            return self.uid()
        if vr == "DA":
            return self.date()
        if vr == "DT":
            return self.date() + "101112"
        if vr == "TM":
            return "101112"
        if vr in {"IS", "DS"}:
            return "4242"
        if vr == "AS":
            return "042Y"
        if vr in {"US", "SS", "UL", "SL", "UV", "SV"}:
            return 4242
        if vr in {"FL", "FD"}:
            return 42.5
        if vr == "AT":
            return 0x00100010
        if vr in {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}:
            return (self.marker() + "XX").encode("ascii")[:10]
        return self.marker()  # LO SH ST LT UT UC CS AE UR


def _item(values: _Values, depth: int) -> Dataset:
    item = Dataset()
    item.CodeValue = "71020"  # a code is not PHI: kept
    item.CodingSchemeDesignator = "CPT4"
    item.CodeMeaning = "CT CHEST"
    item.PatientName = values.value("PN")
    item.InstitutionName = values.marker()
    item.StudyDate = values.date()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = values.uid()
    item.add_new(0x00091010, "LO", values.marker())  # private, no creator: still private
    if depth < 2:
        nested = Dataset()
        nested.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        nested.ReferencedSOPInstanceUID = values.uid()
        nested.PersonName = values.value("PN")
        nested.AccessionNumber = values.marker()
        nested.ReferencedImageSequence = Sequence([_item(values, depth + 1)])
        item.ReferencedStudySequence = Sequence([nested])
    return item


def phi_file() -> Crafted:
    """CT_small.dcm with a PHI value in every attribute of Table E.1-1 pydicom can write,
    PHI inside sequences (two levels), private tags and sequences, a curve and an overlay."""
    ds = dcmread(io.BytesIO(ct_small()))
    crafted = Crafted(data=b"")
    values = _Values(crafted)
    for number, rule in sorted(rules_by_tag().items()):
        group = number >> 16
        if group in {0x0000, 0x0002, 0x0004} or not rule.keyword:
            continue  # command, file meta and DICOMDIR groups: not in a stored instance
        vr = str(dictionary_VR(number)).split(" or ")[0]
        if vr == "SQ":
            ds.add_new(number, "SQ", Sequence([_item(values, 1)]))
            crafted.values[number] = "SQ"
            continue
        value = values.value(vr)
        ds.add_new(number, vr, value)
        crafted.values[number] = value
    ds.PatientID = ORIGINAL_PATIENT_ID
    ds.PatientName = ORIGINAL_PATIENT_NAME
    crafted.values[0x00100020] = ORIGINAL_PATIENT_ID
    crafted.values[0x00100010] = ORIGINAL_PATIENT_NAME
    crafted.markers.append(ORIGINAL_PATIENT_ID)
    ds.InstanceCreationDate = values.date()  # not in the table: the safety net's case
    ds.IssuerOfPatientID = values.marker()
    ds.add_new(HOLDER, "SQ", Sequence([_item(values, 0)]))
    # Private: a creator, a value, a private sequence holding a nested PHI item.
    ds.add_new(0x00290010, "LO", "ZZPHI VENDOR")
    ds.add_new(0x00291010, "LO", values.marker())
    ds.add_new(0x00291020, "SQ", Sequence([_item(values, 1)]))
    # A curve (retired group 50xx) and an overlay (60xx) with comments.
    ds.add_new(0x50003000, "OW", (values.marker() + "CU").encode("ascii"))
    ds.add_new(0x60000010, "US", 128)
    ds.add_new(0x60000011, "US", 128)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", bytes(128 * 128 // 8))
    ds.add_new(0x60004000, "LT", values.marker())
    ds.BurnedInAnnotation = "YES"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.SourceApplicationEntityTitle = "ZZPHIAE"
    crafted.markers.append("ZZPHIAE")
    out = io.BytesIO()
    ds.save_as(out)
    crafted.data = out.getvalue()
    return crafted


def table_keywords() -> list[str]:
    """The keyword of every plain-tag attribute of the table (for reports)."""
    return [rule.keyword for rule in rules() if rule.keyword]


def ct_series(count: int, *, study: int = 1, patient: str = "ZZPHI-MRN-000001") -> Iterator[bytes]:
    """``count`` slices of one CT series (CT_small.dcm with new instance UIDs and numbers)."""
    base = dcmread(io.BytesIO(ct_small()))
    base.PatientID = patient
    base.StudyInstanceUID = f"{UID_ROOT}{study}.1"
    base.SeriesInstanceUID = f"{UID_ROOT}{study}.2"
    for number in range(1, count + 1):
        base.SOPInstanceUID = f"{UID_ROOT}{study}.3.{number}"
        base.file_meta.MediaStorageSOPInstanceUID = base.SOPInstanceUID
        base.InstanceNumber = number
        out = io.BytesIO()
        base.save_as(out)
        yield out.getvalue()


def bare_dataset_bytes() -> bytes:
    """A DICOM file with no patient attributes at all (a phantom, say)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.7")
    ds.file_meta.MediaStorageSOPInstanceUID = UID(f"{UID_ROOT}777")
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = f"{UID_ROOT}777"
    ds.Modality = "OT"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def keyword(number: int) -> str:
    """The keyword of a tag, or its hex when pydicom has none."""
    return keyword_for_tag(number) or f"{number:08x}"
