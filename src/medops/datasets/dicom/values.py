"""The values de-identification reads and writes: who the patient is, which strings of a file
identify people, which UIDs stay, dummies and empties by VR, and dates shifted by whole days.
Pure functions over pydicom data sets; ``deidentify`` applies them."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from medops.datasets.dicom.profile import Rule, mask_rules

NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT"})
BYTES_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
_CLASS_UID_SUFFIXES = ("ClassUID", "ClassesInStudy", "TransferSyntaxUID", "TransferSyntaxUIDInFile")
_KEPT_UIDS = frozenset(
    {"CodingSchemeUID", "ContextGroupExtensionCreatorUID", "PrivateInformationCreatorUID"}
)


def patient_key(ds: Dataset) -> str:
    """What identifies the patient in this file: the Patient ID, else name and birth date."""
    patient_id = str(ds.get("PatientID", "") or "").strip()
    if patient_id:
        return patient_id
    name = str(ds.get("PatientName", "") or "").strip()
    birth = str(ds.get("PatientBirthDate", "") or "").strip()
    return f"{name}|{birth}" if name else ""


def identifiers(ds: Dataset) -> list[str]:
    """The identifying strings this file holds, longest first (scrubbed from descriptions)."""
    found: set[str] = set()
    for keyword in (
        "PatientName",
        "PatientID",
        "OtherPatientIDs",
        "OtherPatientNames",
        "PatientBirthName",
        "PatientMotherBirthName",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "AccessionNumber",
        "StudyID",
        "MedicalRecordLocator",
        "InstitutionName",
        "InstitutionAddress",
        "StationName",
        "ReferringPhysicianName",
        "PerformingPhysicianName",
        "OperatorsName",
        "NameOfPhysiciansReadingStudy",
        "PhysiciansOfRecord",
        "RequestingPhysician",
    ):
        value = ds.get(keyword)
        for text in value if isinstance(value, MultiValue | list) else [value]:
            if text is None:
                continue
            whole = str(text).strip()
            found.add(whole)
            found.update(re.split(r"[\^= ,]+", whole))
    return sorted((t for t in found if len(t) >= 2), key=len, reverse=True)


def mask_rule(group: int, element: int) -> Rule | None:
    masks = mask_rules()
    if (group & 0xFF00) == 0x5000 and group % 2 == 0:
        return masks.get("50xxxxxx")
    if (group & 0xFF00) == 0x6000 and group % 2 == 0 and element in {0x3000, 0x4000}:
        return masks.get(f"60xx{element:04x}")
    if (group & 0xFF00) == 0x6000 and group % 2 == 0:
        return masks.get("60xx3000")  # the rest of an overlay goes with its data
    return None


def dictionary_vr(number: int) -> str:
    try:
        return str(dictionary_VR(number))
    except KeyError:
        return "UN"


def kept_uid(number: int, value: object) -> bool:
    keyword = keyword_for_tag(number) or ""
    if keyword in _KEPT_UIDS or keyword.endswith(_CLASS_UID_SUFFIXES):
        return True
    values = value if isinstance(value, MultiValue | list) else [value]
    return all(str(v) in UID_dictionary for v in values if v)


def empty_value(vr: str) -> Any:
    if vr in BYTES_VRS:
        return b""
    if vr in NUMBER_VRS:
        return None
    return ""


def map_values(value: Any, function: Callable[[str], str]) -> Any:
    if value is None:
        return value
    if isinstance(value, MultiValue | list | tuple):
        return [function(str(v)) for v in value]
    return function(str(value))


def shift_da(text: str, shift: dt.timedelta) -> str:
    text = text.strip()
    if "-" in text:  # a range
        return "-".join(shift_da(part, shift) if part else "" for part in text.split("-"))
    try:
        return (dt.datetime.strptime(text, "%Y%m%d").date() - shift).strftime("%Y%m%d")
    except ValueError:
        return ""  # not a date: nothing to keep


def shift_dt(text: str, shift: dt.timedelta) -> str:
    text = text.strip()
    digits = len(text) - len(text.lstrip("0123456789"))
    if digits < 4:
        return ""
    precision = min(digits, 8)
    padded = text[:precision] + "0101"[max(0, precision - 4) :]
    try:
        day = dt.datetime.strptime(padded[:8], "%Y%m%d").date() - shift
    except ValueError:
        return ""
    return day.strftime("%Y%m%d")[:precision] + text[precision:]
