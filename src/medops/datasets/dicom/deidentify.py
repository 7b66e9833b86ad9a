"""De-identify one DICOM file: PS3.15 Annex E's Basic Application Level Confidentiality
Profile with the options of ``DeidOptions``, keyed by the project's secret.

What happens to a file, in order:

1. It is parsed with pydicom (a DICOM Part 10 file: preamble, ``DICM``, file meta); anything
   else is refused with ``InvalidInputError`` naming the file.
2. Every attribute, at every depth of every sequence, gets the action of Table E.1-1 under the
   options (``profile.Rule.action``); private attributes (odd groups) are removed unless
   ``keep_private``; curves (50xx) and overlays (60xx) are removed; group lengths are dropped.
3. Attributes the table does not list but that carry the same kinds of identifiers get the
   matching action (a safety net beyond the table, listed in docs/deidentification.md): every
   other person name (PN) is emptied, every other UID that is not a registered DICOM UID or a
   class/transfer-syntax UID is replaced, every other date (DA, DT) is emptied, kept or shifted
   as the dates option says, the file meta's AE titles and private information are removed.
4. Patient ID and Patient's Name become the patient's pseudonym; Patient Identity Removed is
   ``YES``; De-identification Method and its Code Sequence (CID 7050) name the profile and the
   options; Longitudinal Temporal Information Modified says what happened to dates.
5. The file is written again. Pixel Data is never read or decoded: its bytes, and the transfer
   syntax, stay as they were. Burned In Annotation is reported (``burned_in``), never changed:
   text burned into pixels is not removed (see docs/deidentification.md).

Nothing here logs a value of the file.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydicom import dcmread
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence

from medops.datasets.dicom import uids
from medops.datasets.dicom.profile import Action, DeidOptions, Rule, rules_by_tag
from medops.datasets.dicom.values import (
    BYTES_VRS,
    NUMBER_VRS,
    dictionary_vr,
    empty_value,
    identifiers,
    kept_uid,
    map_values,
    mask_rule,
    patient_key,
    shift_da,
    shift_dt,
)
from medops.errors import FieldError, InvalidInputError

METHOD_TEXT = "medops PS3.15 E.1 Basic Profile"
PIXEL_DATA = 0x7FE00010
_UNDEFINED_LENGTH = 0xFFFFFFFF
_MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage
_DIRECTORY_RECORDS = 0x00041220
_PATIENT_ID = 0x00100020
_PATIENT_NAME = 0x00100010
_FILE_META_REMOVED = frozenset({0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102})
_TEXT_VALUE = 0x0040A160  # SR free text: treated as a description (not in Table E.1-1)
_DATE_VRS = frozenset({"DA", "DT"})
_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "CS", "AE", "PN"})
_DUMMY: dict[str, str] = {
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "AS": "000D",
    "IS": "0",
    "DS": "0",
    "UR": "",
}
_DUMMY_TEXT = "ANONYMIZED"
_DIGITS = re.compile(r"\d(?:[-/.:]?\d){5,}")  # six or more digits: IDs, dates, phone numbers
_SCRUBBED = "*"


def is_part10(head: bytes | memoryview) -> bool:
    """Whether a file starting with ``head`` (its first 132 bytes or more) is a DICOM Part 10
    file: the one cheap test a client runs to pick which files of a folder to de-identify."""
    return bytes(head[128:132]) == b"DICM"


class MappingEntry(BaseModel):
    """One original -> pseudonym pair the server seals (``kind``: ``patient`` or ``uid``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["patient", "uid"]
    original: str
    pseudonym: str


class DeidResult(BaseModel):
    """A de-identified file: its bytes, what was replaced by what, and what to look at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: bytes
    mappings: list[MappingEntry]
    # Burned In Annotation: True (YES), False (NO), None (absent: unknown).
    burned_in: bool | None
    patient_ref: str | None  # the patient's pseudonym


class Deidentifier:
    """De-identifies files for one project: same secret and options -> same output."""

    def __init__(self, project_secret: bytes, options: DeidOptions) -> None:
        if len(project_secret) < 16:
            raise InvalidInputError(
                "the project secret is too short (at least 16 bytes)",
                errors=[FieldError("project_secret", "at least 16 bytes")],
            )
        self._secret = project_secret
        self.options = options
        self._uid_cache: dict[str, str] = {}

    def new_uid(self, original: str) -> str:
        """The project's replacement for UID ``original`` (cached: files share studies)."""
        found = self._uid_cache.get(original)
        if found is None:
            found = uids.new_uid(self._secret, original)
            if len(self._uid_cache) < 1_000_000:
                self._uid_cache[original] = found
        return found

    def deidentify(self, data: bytes, *, name: str = "the file") -> DeidResult:
        """The de-identified copy of DICOM file ``data`` (``name`` names it in errors)."""
        reason = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = dcmread(io.BytesIO(data))
                reason = _incomplete(ds)
                if reason is not None:
                    raise _RefusedError(reason)
                run = _Run(self, ds)
                run.clean(ds)
                run.clean_file_meta(ds)
                run.stamp(ds)
                _give_vrs(ds)
                out = io.BytesIO()
                ds.save_as(out)
        except _RefusedError as refused:
            reason = str(refused)
        except InvalidDicomError:
            reason = "not a DICOM Part 10 file (no 'DICM' after the 128-byte preamble)"
        except Exception as error:  # noqa: BLE001 - pydicom raises many kinds on broken input
            # Values are parsed lazily, as the profile reaches them: a broken element fails
            # here, and nothing of the file is returned.
            reason = f"not a readable DICOM file ({type(error).__name__})"
        if reason is not None:
            raise InvalidInputError(f"{name}: {reason}", errors=[FieldError(name, reason)])
        return DeidResult(
            data=out.getvalue(),
            mappings=list(run.mappings.values()),
            burned_in=run.burned_in,
            patient_ref=run.patient_ref,
        )


def _give_vrs(ds: Dataset) -> None:
    """Parse the elements still without a VR when the file is written with explicit VRs (a
    data set encoded implicitly under an explicit transfer syntax, which pydicom reads)."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or syntax.is_implicit_VR:
        return
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.VR is None:
            ds[tag]


class _RefusedError(Exception):
    """A file read without error that is still unusable (empty, truncated)."""


def _incomplete(ds: Dataset) -> str | None:
    """Why a parsed file is not a whole DICOM file, or None. pydicom stops quietly at the end
    of a truncated file; an element shorter than its declared length shows the cut."""
    if len(ds) == 0:
        return "not a DICOM file with a data set (only a file meta header)"
    meta_class = getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
    if meta_class == _MEDIA_DIRECTORY or _DIRECTORY_RECORDS in ds:
        # Its records hold patient data at byte offsets that any change would break.
        return "a DICOMDIR (a media directory, not an instance): leave it out or rebuild it"
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if (
            isinstance(raw, RawDataElement)
            and raw.length != _UNDEFINED_LENGTH
            and raw.value is not None
            and len(raw.value) < raw.length
        ):
            return f"truncated DICOM file ({keyword_for_tag(tag) or tag} is cut short)"
    return None


class _Run:
    """The state of de-identifying one file."""

    def __init__(self, owner: Deidentifier, ds: Dataset) -> None:
        self.owner = owner
        self.options = owner.options
        self.mappings: dict[tuple[str, str], MappingEntry] = {}
        burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
        self.burned_in = True if burned == "YES" else False if burned == "NO" else None
        key = patient_key(ds)
        secret = owner._secret
        self.patient_ref = uids.patient_pseudonym(secret, key) if key else None
        if key and self.patient_ref:
            self._map("patient", key, self.patient_ref)
        self.shift = dt.timedelta(
            days=uids.date_shift_days(secret, key or "", self.options.date_shift_days_max)
        )
        found = identifiers(ds) if self.options.clean_descriptors else []
        # Whole words only: a two-letter name must not eat the letters of other words.
        self.identifiers = (
            re.compile(
                "(?<![A-Za-z0-9])(?:" + "|".join(map(re.escape, found)) + ")(?![A-Za-z0-9])",
                re.IGNORECASE,
            )
            if found
            else None
        )

    # -- the walk ---------------------------------------------------------------------------

    def clean(self, ds: Dataset) -> None:
        """Apply the table to every attribute of ``ds`` and, through sequences, below it."""
        table = rules_by_tag()
        for tag in list(ds.keys()):
            number = int(tag)
            group, element = number >> 16, number & 0xFFFF
            if number == PIXEL_DATA:
                continue
            if group % 2 == 1:
                if not self.options.keep_private:
                    del ds[tag]
                continue
            if element == 0 and group != 0x0002:
                del ds[tag]
                continue
            rule = table.get(number) or mask_rule(group, element)
            if rule is not None:
                if (group & 0xFF00) == 0x6000:
                    self._drop_overlay(ds, group)
                    continue
                self._apply(ds, number, rule.action(self.options), rule)
                continue
            self._safety_net(ds, number)

    def _apply(self, ds: Dataset, number: int, action: Action, rule: Rule | None) -> None:
        if number not in ds:
            return
        if action == "X":
            del ds[number]
            return
        elem = ds[number]
        vr = elem.VR
        if vr == "SQ":
            if action == "Z":
                elem.value = Sequence()
            else:  # D, K, C, U*: keep the items, clean inside
                for item in elem.value or []:
                    self.clean(item)
            return
        if action == "K":
            return
        if action == "Z":
            elem.value = empty_value(vr)
        elif action == "D":
            elem.value = self._dummy(elem)
        elif action == "U" and vr == "UI":
            elem.value = map_values(elem.value, self._uid)
        elif action == "U":
            elem.value = self._dummy(elem)
        elif action == "C":
            self._clean_value(elem, rule)

    def _safety_net(self, ds: Dataset, number: int) -> None:
        raw = ds.get_item(number)
        vr = getattr(raw, "VR", None) or dictionary_vr(number)
        if vr == "SQ":
            for item in ds[number].value or []:
                self.clean(item)
        elif vr == "PN":
            ds[number].value = ""
        elif vr == "UI":
            elem = ds[number]
            if not kept_uid(number, elem.value):
                elem.value = map_values(elem.value, self._uid)
        elif vr in _DATE_VRS:
            self._date(ds, number)
        elif number == _TEXT_VALUE:
            if self.options.clean_descriptors:
                self._clean_value(ds[number], None)
            else:
                del ds[number]

    def _date(self, ds: Dataset, number: int) -> None:
        mode = self.options.retain_longitudinal
        if mode == "off":
            ds[number].value = ""
        elif mode == "modified":
            self._clean_value(ds[number], None)

    def _clean_value(self, elem: DataElement, rule: Rule | None) -> None:
        vr = elem.VR
        is_date_rule = rule is None or bool(rule.modified_dates)
        if vr in _DATE_VRS and self.options.retain_longitudinal == "modified" and is_date_rule:
            shifter = shift_da if vr == "DA" else shift_dt
            elem.value = map_values(elem.value, lambda text: shifter(text, self.shift))
        elif vr in _TEXT_VRS and vr != "PN" and self.options.clean_descriptors:
            elem.value = map_values(elem.value, self._scrub)
        elif vr in {"TM"} or (vr == "SH" and rule is not None and rule.modified_dates):
            return  # times and offsets: a whole-day shift leaves them as they are
        else:
            elem.value = self._dummy(elem)

    def _drop_overlay(self, ds: Dataset, group: int) -> None:
        # Overlay Data is removed (X), and an overlay plane without its data is not valid:
        # the whole repeating group goes.
        tags = list(ds.keys())  # iterating a Dataset yields elements, not tags
        for tag in tags:
            if tag.group == group:
                del ds[tag]

    def clean_file_meta(self, ds: Dataset) -> None:
        """Replace the media storage instance UID, drop AE titles and private information."""
        meta = getattr(ds, "file_meta", None)
        if meta is None:
            return
        for tag in list(meta.keys()):
            if int(tag) in _FILE_META_REMOVED:
                del meta[tag]
        if "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = self._uid(str(meta.MediaStorageSOPInstanceUID))

    def stamp(self, ds: Dataset) -> None:
        """Write the pseudonym and what was done (PS3.15 E.1.1, PS3.3 C.7.1.1)."""
        ds.PatientID = self.patient_ref or ""
        ds.PatientName = self.patient_ref or ""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = METHOD_TEXT
        codes = []
        for value, meaning in self.options.method_codes():
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            codes.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(codes)
        ds.LongitudinalTemporalInformationModified = {
            "off": "REMOVED",
            "full": "UNMODIFIED",
            "modified": "MODIFIED",
        }[self.options.retain_longitudinal]

    # -- values -----------------------------------------------------------------------------

    def _map(self, kind: Literal["patient", "uid"], original: str, pseudonym: str) -> None:
        self.mappings.setdefault(
            (kind, original), MappingEntry(kind=kind, original=original, pseudonym=pseudonym)
        )

    def _uid(self, original: str) -> str:
        text = str(original).strip().rstrip("\x00")
        if not text:
            return ""
        new = self.owner.new_uid(text)
        self._map("uid", text, new)
        return new

    def _dummy(self, elem: DataElement) -> Any:
        vr = elem.VR
        if vr == "UI":
            return map_values(elem.value, self._uid)
        if vr in _DUMMY:
            return _DUMMY[vr]
        if vr in _TEXT_VRS:
            return _DUMMY_TEXT
        if vr in NUMBER_VRS:
            return 0
        if vr in BYTES_VRS:
            return b""
        return empty_value(vr)

    def _scrub(self, text: str) -> str:
        cleaned = str(text)
        if self.identifiers is not None:
            cleaned = self.identifiers.sub(_SCRUBBED, cleaned)
        return _DIGITS.sub(_SCRUBBED, cleaned)
