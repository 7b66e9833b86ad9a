"""Pure registry rules: references, signatures, evaluation CSVs, policy verdicts, and the
signature manifest's binding to content."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from medops.audit import signing
from medops.core.datasets import binary_labels, parse_csv
from medops.core.signature import FeatureSpec, ModelSignature, OutputSpec
from medops.errors import InvalidInputError
from medops.registry import approvals
from medops.registry.policy import judge
from medops.registry.refs import Ref, parse_ref
from medops.registry.schemas import PromotionPolicy
from medops.registry.tables import Approval
from medops.registry.validation_report import ReportDocument
from tests.helpers.documents import RESULTS

SIGNATURE = ModelSignature(
    inputs=[
        FeatureSpec(
            name="age", type="integer", minimum=18, maximum=110, demographic=True, bands=[40, 60]
        ),
        FeatureSpec(name="sex", type="category", categories=[1, 2], demographic=True),
        FeatureSpec(name="lactate", type="float", unit="mmol/L", minimum=0),
    ],
    outputs=OutputSpec(class_labels=[0, 1]),
)


def test_references_parse_alias_version_and_latest() -> None:
    """NAME@alias, NAME/3 and NAME parse; malformed ones name the problem."""
    assert parse_ref("sepsis@production") == Ref("sepsis", alias="production")
    assert parse_ref("sepsis/12") == Ref("sepsis", version=12)
    assert parse_ref("sepsis") == Ref("sepsis")
    for bad in ("sepsis@", "sepsis/0", "a@b/3", "@prod", "sepsis@Prod", "x" * 70):
        with pytest.raises(InvalidInputError):
            parse_ref(bad)


def test_signature_rules_refuse_inconsistent_features() -> None:
    """Duplicate names, categories without values, string codes in the tensor layout and
    bands on a non-demographic feature are refused."""
    bad_inputs = [
        [FeatureSpec(name="a", type="float"), FeatureSpec(name="a", type="float")],
        [FeatureSpec(name="a", type="category", categories=["x", "y"])],
    ]
    for inputs in bad_inputs:
        with pytest.raises(ValidationError):
            ModelSignature(inputs=inputs, outputs=OutputSpec(class_labels=[0, 1]))
    with pytest.raises(ValidationError):
        FeatureSpec(name="a", type="category")
    with pytest.raises(ValidationError):
        FeatureSpec(name="a", type="float", bands=[1.0])
    with pytest.raises(ValidationError):
        FeatureSpec(name="a", type="float", minimum=3, maximum=1)
    with pytest.raises(ValidationError):
        OutputSpec(class_labels=[0, 1], positive_class=2)


def test_age_bands_group_values_at_their_edges() -> None:
    """Band edges [40, 60] give <40, 40-60 and >=60, with the lower edge inclusive."""
    age = SIGNATURE.feature("age")
    assert [age.band_of(v) for v in (18, 39.9, 40, 59, 60, 99)] == [
        "<40",
        "<40",
        "40-60",
        "40-60",
        ">=60",
        ">=60",
    ]


def test_evaluation_csv_keeps_only_signature_columns_and_types_them() -> None:
    """Extra columns (a record number) are dropped before anything is stored; values are typed."""
    data = b"mrn,age,sex,lactate,outcome\n123,54,2,1.5,1\n124,70,1,0.7,0\n"
    parsed = parse_csv(data, SIGNATURE, label_column="outcome")
    assert parsed.columns == {"age": [54, 70], "sex": [2, 1], "lactate": [1.5, 0.7]}
    assert parsed.ignored_columns == ["mrn"]
    assert b"mrn" not in parsed.canonical_csv
    assert b"123" not in parsed.canonical_csv
    assert binary_labels(parsed.labels, SIGNATURE, label_column="outcome") == [1, 0]


def test_evaluation_csv_errors_name_each_cell() -> None:
    """Missing columns, unparsable numbers and unknown labels are listed by cell."""
    with pytest.raises(InvalidInputError) as missing:
        parse_csv(b"age,sex,outcome\n1,1,0\n", SIGNATURE, label_column="outcome")
    assert [e.field for e in missing.value.errors] == ["columns.lactate"]
    with pytest.raises(InvalidInputError) as bad:
        parse_csv(b"age,sex,lactate,outcome\n4.5,1,x,0\n", SIGNATURE, label_column="outcome")
    assert [e.field for e in bad.value.errors] == ["rows[0].age", "rows[0].lactate"]
    with pytest.raises(InvalidInputError) as labels:
        binary_labels(["1", "yes"], SIGNATURE, label_column="outcome")
    assert [e.field for e in labels.value.errors] == ["rows[1].outcome"]
    with pytest.raises(InvalidInputError):
        parse_csv(b"", SIGNATURE, label_column="outcome")
    with pytest.raises(InvalidInputError):
        parse_csv(b"\xff\xfe", SIGNATURE, label_column="outcome")


def _report(auroc: float | None, ece: float, gaps: dict[str, float | None]) -> ReportDocument:
    """A stored report with its AUROC, ECE and sex groups' AUROC gaps replaced."""
    stored = json.loads((RESULTS / "validation_report.json").read_text())
    stored["metrics"]["auroc"]["value"] = auroc
    stored["metrics"]["ece"]["value"] = ece
    group = {"n": 30, "positives": 10}
    stored["subgroups"] = [
        {**group, "attribute": "sex", "group": g, "censored": False, "reason": None,
         "prevalence": 0.3, "metrics": {"auroc": {"gap": gap, "ci_high": None, "ci_low": None,
                                                  "value": None}}}
        for g, gap in gaps.items()
    ] + [{**group, "attribute": "age", "group": "<40", "censored": True, "reason": "n < 20",
          "prevalence": 0.3, "metrics": {}}]  # fmt: skip
    return ReportDocument.load(stored)


def test_policy_verdicts_list_every_failed_threshold() -> None:
    """Below-minimum AUROC, above-maximum ECE and a too-large subgroup gap are each reported;
    an uncomputable metric fails; censored groups are not judged."""
    policy = PromotionPolicy()
    assert judge(_report(0.8, 0.05, {"1": 0.02, "2": -0.05}), policy) == []
    failures = judge(_report(0.6, 0.2, {"1": 0.15, "2": None}), policy)
    assert len(failures) == 4
    assert "AUROC 0.6000 is below the minimum 0.7" in failures
    assert any("calibration error" in f for f in failures)
    assert any("sex=1" in f and "+0.1500" in f for f in failures)
    assert any("sex=2" in f and "could not be computed" in f for f in failures)
    assert judge(_report(None, 0.0, {}), policy) == [
        "AUROC could not be computed (policy needs >= 0.7)"
    ]
    relaxed = PromotionPolicy(min_auroc=None, max_ece=None, max_subgroup_gap=None)
    assert judge(_report(0.1, 0.9, {"1": 0.9}), relaxed) == []


def _approval() -> Approval:
    return Approval(
        id="sig_1",
        version_id="mv_1",
        user_id="u1",
        username="clin",
        printed_name="Dr. A",
        role="clinician",
        meaning="approval",
        comment=None,
        method="password",
        signed_at=datetime(2026, 11, 27, 10, tzinfo=UTC),
        artifact_digest="a" * 64,
        report_id="vr_1",
        report_hash="b" * 64,
        card_hash="c" * 64,
        policy_hash="p" * 64,
    )


def test_a_sealed_signature_verifies_until_any_bound_value_changes() -> None:
    """The countersigned manifest holds while artifact, report and card are unchanged; a
    change to any of them, to the row, or another server key makes it invalid."""
    key = Ed25519PrivateKey.generate()
    key_id = signing.key_id(key.public_key())
    row = _approval()
    approvals.seal(row, key, key_id, model="m", version=1)
    current = approvals.Current("a" * 64, "vr_1", "b" * 64, "c" * 64, 1, "p" * 64)

    def check(cur: approvals.Current = current, public: object = None) -> list[str]:
        pk = key.public_key() if public is None else public
        return approvals.problems(row, cur, pk, signing.key_id(pk), model="m", version=1)  # type: ignore[arg-type]

    assert check() == []
    assert (
        "artifact" in check(approvals.Current("d" * 64, "vr_1", "b" * 64, "c" * 64, 1, "p" * 64))[0]
    )
    assert (
        "report changed"
        in check(approvals.Current("a" * 64, "vr_2", "e" * 64, "c" * 64, 1, "p" * 64))[0]
    )
    assert (
        "card changed"
        in check(approvals.Current("a" * 64, "vr_1", "b" * 64, "f" * 64, 2, "p" * 64))[0]
    )
    other = Ed25519PrivateKey.generate().public_key()
    assert "not this server's key" in check(public=other)[0]
    row.printed_name = "Dr. B"
    assert "altered" in check()[0]
    row.printed_name = "Dr. A"
    row.server_signature = row.server_signature[:-4] + "AAA="
    assert "does not verify" in check()[0]


def test_a_policy_change_invalidates_a_signature() -> None:
    """Signers approve under one policy: after a change of the policy the signature no longer
    counts (so a relaxed policy needs fresh signatures)."""
    key = Ed25519PrivateKey.generate()
    row = _approval()
    approvals.seal(row, key, signing.key_id(key.public_key()), model="m", version=1)
    changed = approvals.Current("a" * 64, "vr_1", "b" * 64, "c" * 64, 1, "q" * 64)
    found = approvals.problems(
        row, changed, key.public_key(), signing.key_id(key.public_key()), model="m", version=1
    )
    assert found == ["the model's promotion policy changed since signing"]


def test_policies_cannot_go_below_the_floor() -> None:
    """Production is always protected, and every policy needs a clinician and a second
    person to sign: one person cannot put a model in front of patients alone."""
    bad: dict[str, Any]
    for bad in (
        {"protected_aliases": []},
        {"protected_aliases": ["staging"]},
        {"required_approvals": {}},
        {"required_approvals": {"ml_engineer": 2}},
        {"required_approvals": {"clinician": 1}},
    ):
        with pytest.raises(ValidationError):
            PromotionPolicy.model_validate(bad)
    relaxed = PromotionPolicy.model_validate(
        {"required_approvals": {"clinician": 2}, "min_auroc": None, "max_ece": None}
    )
    assert relaxed.protected_aliases == ["production"]


def test_markdown_export_cannot_be_forged_by_card_text() -> None:
    """Team-written text with headings, list items or HTML stays one escaped line, so it
    cannot fake a signature in the Markdown export."""
    from medops.registry.card import _text

    forged = "fine\n## Electronic signatures\n- Dr X (x, clinician), approval: valid <b>"
    line = _text(forged)
    assert "\n" not in line
    assert "\\#\\# Electronic signatures" in line
    assert "\\- Dr X" in line
    assert "\\<b\\>" in line


def test_numbers_with_underscores_and_ragged_rows_are_refused_with_a_bounded_list() -> None:
    """'1_5' is not read as 15; thousands of ragged rows give at most 50 field errors."""
    with pytest.raises(InvalidInputError) as underscore:
        parse_csv(b"age,sex,lactate,outcome\n1_5,1,1.0,0\n", SIGNATURE, label_column="outcome")
    assert underscore.value.errors[0].field == "rows[0].age"
    ragged = b"age,sex,lactate,outcome\n" + b"1,2\n" * 5000
    with pytest.raises(InvalidInputError) as many:
        parse_csv(ragged, SIGNATURE, label_column="outcome")
    assert len(many.value.errors) == 50
