"""Reading the input of a bulk prediction (medops/bulk_predict.py) one record at a time.

A CSV file is read a line at a time (each line decoded on its own, so a byte that is not
UTF-8 spoils its own row only), and each row becomes a predict
record: ``patient_ref`` apart, the other cells as features (empty cells null, numbers as
numbers, the rest as text). A row with more or fewer cells than the header, a line that is
not UTF-8 or not readable CSV, cannot be sent: it comes without a record, saying why, and
reading goes on. Rows are numbered from 1, the header not counted; ``line`` is the line the
row starts on.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from medops.errors import FieldError, InvalidInputError, clip

if TYPE_CHECKING:
    from medops.serving.schemas import PredictLimits

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def cell(text: str) -> Any:
    """A CSV cell as JSON: empty is null, a number is a number, anything else a string."""
    value = text.strip()
    if not value:
        return None
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


def record_of(header: list[str], cells: list[str]) -> dict[str, Any]:
    """A predict record from one CSV row: ``patient_ref`` apart, the rest as features."""
    row = dict(zip(header, cells, strict=True))
    ref = (row.pop("patient_ref", None) or "").strip()
    record: dict[str, Any] = {"features": {k: cell(v) for k, v in row.items()}}
    if ref:
        record["patient_ref"] = ref
    return record


def _bad(message: str, where: str = "input") -> InvalidInputError:
    return InvalidInputError(message, errors=[FieldError(where, message)])


@dataclass(frozen=True)
class InputRow:
    """One record of the input: its number, the line it starts on (CSV), and the record;
    or, for a row the file gets wrong, why it cannot be sent."""

    row: int
    line: int | None
    record: dict[str, Any] | None
    problem: str | None = None


class _Lines:
    """The file's lines as text for the csv reader, decoded one at a time (a UTF-8 byte
    order mark dropped). A line that is not UTF-8 is handed on as an empty line and noted in
    ``undecodable``, so its row fails alone and reading goes on."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._first = True
        self.undecodable = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        data = next(self._raw)
        try:
            line = data.decode("utf-8")
        except UnicodeDecodeError:
            self.undecodable = True
            line = "\n"
        if self._first:
            line, self._first = line.removeprefix("\ufeff"), False
        return line


class CsvInput:
    """The rows of a CSV file, read one at a time; ``position`` says how many bytes of the
    file are read so far (for a progress display)."""

    def __init__(self, path: Path, where: str) -> None:
        self.where = where
        try:
            self._raw = path.open("rb")
        except OSError as exc:
            raise _bad(f"cannot read {where}: {exc.strerror}") from None
        self.size = os.fstat(self._raw.fileno()).st_size
        self._lines = _Lines(self._raw)
        self._reader = csv.reader(self._lines)
        try:
            self.header = [name.strip() for name in next(self._reader, [])]
        except csv.Error as exc:
            self.close()
            raise _bad(f"{where} line 1: {exc}") from None
        if self._lines.undecodable:
            self.close()
            raise _bad(f"{where} is not UTF-8 text")
        if not any(self.header):
            self.close()
            raise _bad(f"{where} has no header row of feature names")
        duplicates = sorted({n for n in self.header if self.header.count(n) > 1})
        if duplicates:
            self.close()
            raise _bad(f"{where}: column {clip(duplicates[0])!r} appears more than once")

    def position(self) -> int:
        return self._raw.tell() if not self._raw.closed else self.size

    def close(self) -> None:
        self._raw.close()

    def __iter__(self) -> Iterator[InputRow]:
        """Each data row (blank lines skipped); a row that is not UTF-8 or not readable CSV,
        or has more or fewer cells than the header, comes without a record and says why."""
        number = 0
        width = len(self.header)
        while True:
            line = self._reader.line_num + 1
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                yield InputRow(number, line, None, f"not readable CSV: {exc}")
                continue
            if self._lines.undecodable:
                self._lines.undecodable = False
                number += 1
                yield InputRow(number, line, None, "not UTF-8 text")
                continue
            if not cells:
                continue
            number += 1
            if len(cells) != width:
                more = "more" if len(cells) > width else "fewer"
                yield InputRow(number, line, None, f"{more} cells than the header names")
            else:
                yield InputRow(number, line, record_of(self.header, cells))

    def check_columns(self, limits: PredictLimits) -> None:
        """Refuse, before anything is sent, a header that lacks a feature the deployment
        needs or names one it does not know (every record would be refused)."""
        given = set(self.header) - {"patient_ref"}
        missing = [f for f in limits.features if f not in given]
        unknown = sorted(given - set(limits.features))
        if missing:
            shown = ", ".join(clip(f) for f in missing[:10])
            raise _bad(
                f"{self.where} lacks the feature column(s) {shown} that deployment "
                f"{limits.deployment} needs (columns: {', '.join(limits.features)}, and "
                "optionally patient_ref)"
            )
        if unknown:
            raise _bad(
                f"{self.where}: column {clip(unknown[0])!r} is not a feature of deployment "
                f"{limits.deployment} (columns: {', '.join(limits.features)}, and "
                "optionally patient_ref)"
            )


def json_rows(records: list[dict[str, Any]]) -> Iterator[InputRow]:
    """Records of a JSON input as rows (numbered from 1, no line)."""
    for number, record in enumerate(records, start=1):
        yield InputRow(number, None, record)
