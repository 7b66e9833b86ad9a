"""The action table: generated from the vendored Table E.1-1 by the committed generator,
faithful to the standard on known rows, and resolved per option as PS3.15 E.1 says."""

from __future__ import annotations

import re

import pytest
from pydicom.datadict import dictionary_description

from medops.datasets.dicom import generate_annex_e
from medops.datasets.dicom.profile import DeidOptions, mask_rules, rules, rules_by_tag


def test_the_committed_table_is_what_the_generator_makes_from_the_source() -> None:
    """annex_e.csv is up to date with source/confidentiality_profile_attributes.tsv."""
    assert generate_annex_e.main(["--check"]) == 0


def test_every_row_has_a_known_action_and_its_name_matches_pydicom() -> None:
    """All 460 rows parse; each plain tag's name is pydicom's name for that tag (a tag typed
    wrong in the source would name another attribute)."""

    def norm(text: str) -> str:
        return re.sub(r"[^a-z0-9]", "", text.lower().replace("(see note 12)", ""))

    assert len(rules()) == 460
    mismatched = [
        rule.tag
        for number, rule in rules_by_tag().items()
        if norm(dictionary_description(number)) != norm(rule.name)
    ]
    assert mismatched == []
    assert set(mask_rules()) == {"50xxxxxx", "60xx3000", "60xx4000", "private"}
    assert {rule.basic for rule in rules()} == {
        "D", "Z", "X", "U", "Z/D", "X/D", "X/Z", "X/Z/D", "X/Z/U*",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("keyword", "basic", "resolved"),
    [
        ("PatientName", "Z", "Z"),
        ("PatientID", "Z", "Z"),
        ("PatientBirthDate", "Z", "Z"),
        ("OtherPatientIDs", "X", "X"),
        ("StudyInstanceUID", "U", "U"),
        ("SOPInstanceUID", "U", "U"),
        ("InstitutionName", "X/Z/D", "D"),
        ("AcquisitionDate", "X/Z", "Z"),
        ("ContentDate", "Z/D", "D"),
        ("SeriesDescription", "X", "X"),
        ("ReferencedImageSequence", "X/Z/U*", "U*"),
        ("SourceImageSequence", "X/Z/U*", "U*"),
        ("AccessionNumber", "Z", "Z"),
        ("ReferringPhysicianName", "Z", "Z"),
    ],
)
def test_known_rows_have_the_standards_actions(keyword: str, basic: str, resolved: str) -> None:
    """Rows checked by hand against PS3.15 Table E.1-1."""
    rule = next(r for r in rules_by_tag().values() if r.keyword == keyword)
    assert rule.basic == basic
    assert rule.action(DeidOptions()) == resolved


@pytest.mark.parametrize(
    ("keyword", "options", "resolved"),
    [
        ("StudyDate", DeidOptions(retain_longitudinal="full"), "K"),
        ("StudyDate", DeidOptions(retain_longitudinal="modified"), "C"),
        ("StudyTime", DeidOptions(retain_longitudinal="modified"), "C"),
        ("PatientBirthDate", DeidOptions(retain_longitudinal="full"), "Z"),
        ("SeriesDescription", DeidOptions(clean_descriptors=True), "C"),
        ("ProtocolName", DeidOptions(clean_descriptors=True), "C"),
        ("PatientName", DeidOptions(clean_descriptors=True, retain_longitudinal="full"), "Z"),
    ],
)
def test_an_options_column_replaces_the_basic_action(
    keyword: str, options: DeidOptions, resolved: str
) -> None:
    """An option's action, where the table has one, wins over the Basic Profile's."""
    rule = next(r for r in rules_by_tag().values() if r.keyword == keyword)
    assert rule.action(options) == resolved
