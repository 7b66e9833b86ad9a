"""Generate ``annex_e.csv``, the action table medops de-identifies with, from the vendored
copy of DICOM PS3.15 Table E.1-1 (``source/confidentiality_profile_attributes.tsv``; where it
comes from and under which licence: ``source/NOTICE.md``).

Run ``python -m medops.datasets.dicom.generate_annex_e`` after replacing the source with a
newer edition; ``--check`` exits non-zero when the committed CSV differs from what the source
makes (the test suite runs that check). Nothing is fetched: the source is in the repository.

Each row of the CSV: the tag (``00100010``; the table's masks ``50xxxxxx``, ``60xx3000``,
``60xx4000``, and ``private`` for "(GGGG,EEEE) where GGGG is odd"), pydicom's keyword and VR
for it (empty for a mask or an attribute pydicom does not know), the standard's name, the
Basic Profile action and each option's action (empty where the standard's cell is empty).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path

from pydicom.datadict import dictionary_VR, keyword_for_tag

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "source" / "confidentiality_profile_attributes.tsv"
TARGET = HERE / "annex_e.csv"

BASIC_CODES = frozenset({"D", "Z", "X", "K", "C", "U", "Z/D", "X/D", "X/Z", "X/Z/D", "X/Z/U*"})
OPTION_CODES = frozenset({"K", "C", "X"})
# The source's option keys -> the CSV's column names.
OPTIONS = {
    "rtnSafePrivOpt": "retain_safe_private",
    "rtnUIDsOpt": "retain_uids",
    "rtnDevIdOpt": "retain_device_identity",
    "rtnInstIdOpt": "retain_institution_identity",
    "rtnPatCharsOpt": "retain_patient_characteristics",
    "rtnLongFullDatesOpt": "retain_long_full_dates",
    "rtnLongModifDatesOpt": "retain_long_modified_dates",
    "cleanDescOpt": "clean_descriptors",
    "cleanStructContOpt": "clean_structured_content",
    "cleanGraphOpt": "clean_graphics",
}
COLUMNS = ["tag", "keyword", "vr", "name", "in_std_comp_iod", "basic", *OPTIONS.values()]
_TAG_RE = re.compile(r"^\(([0-9A-FX]{4}),([0-9A-FX]{4})\)$")
_PRIVATE = "(GGGG,EEEE) WHERE GGGG IS ODD"


class SourceError(ValueError):
    """Raised when a line of the vendored source is not a well-formed table entry."""


def _tag(text: str, line: int) -> str:
    if text == _PRIVATE:
        return "private"
    match = _TAG_RE.match(text)
    if match is None:
        raise SourceError(f"line {line}: {text!r} is not a tag (GGGG,EEEE)")
    return (match.group(1) + match.group(2)).lower()


def _row(fields: list[str], line: int) -> dict[str, str]:
    if len(fields) != 5:
        raise SourceError(f"line {line}: expected 5 tab-separated fields, found {len(fields)}")
    tag_text, name, in_iod, basic, options_text = fields
    if basic not in BASIC_CODES:
        raise SourceError(f"line {line}: unknown Basic Profile action {basic!r}")
    if in_iod not in {"Y", "N"}:
        raise SourceError(f"line {line}: stdCompIOD must be Y or N, found {in_iod!r}")
    tag = _tag(tag_text, line)
    keyword = vr = ""
    if "x" not in tag and tag != "private":
        number = int(tag, 16)
        keyword = keyword_for_tag(number) or ""
        vr = dictionary_VR(number) if keyword else ""
    row = dict.fromkeys(COLUMNS, "")
    row |= {
        "tag": tag,
        "keyword": keyword,
        "vr": vr,
        "name": name,
        "in_std_comp_iod": in_iod,
        "basic": basic,
    }
    for pair in options_text.split():
        key, _, value = pair.partition("=")
        if key not in OPTIONS or value not in OPTION_CODES:
            raise SourceError(f"line {line}: unknown option {pair!r}")
        row[OPTIONS[key]] = value
    return row


def generate(source: str) -> str:
    """The CSV text made from the source text (rows sorted by tag, masks and private last)."""
    rows = [
        _row(text.rstrip("\n").split("\t"), number)
        for number, text in enumerate(source.splitlines(), start=1)
        if text.strip() and not text.startswith("#")
    ]
    tags = [row["tag"] for row in rows]
    duplicates = sorted({tag for tag in tags if tags.count(tag) > 1})
    if duplicates:
        raise SourceError(f"tags listed twice: {', '.join(duplicates)}")
    rows.sort(key=lambda row: ("x" in row["tag"] or row["tag"] == "private", row["tag"]))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) ``annex_e.csv``; 0 when it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = generate(SOURCE.read_text(encoding="utf-8"))
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            sys.stderr.write(f"{TARGET.name} is out of date: run the generator\n")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
