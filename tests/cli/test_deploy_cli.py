"""`medops deploy`, `medops predict` and `medops outcomes` end to end through the CLI over the
embedded app: create, status, predictions from JSON text, a JSON file and a CSV file (the
probabilities the API answers), canary, shadow, rollback, outcomes; errors on one line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
import pytest

from medops.client import Client
from medops.config import Settings
from tests.helpers.cli import (
    DEPLOYMENT,
    MODEL,
    approve_version,
    assert_one_line_error,
    eval_records,
    in_production,
    log_in,
    ready_version,
)
from tests.helpers.cli_runner import Cli, clean_env


def _write_csv(path: Path, records: list[dict[str, Any]], refs: list[str]) -> Path:
    """Records as a CSV file: a patient_ref column, then one column per feature."""
    frame = pd.DataFrame(records)
    frame.insert(0, "patient_ref", refs)
    frame.to_csv(path, index=False)
    return path


def _scores(answer: dict[str, Any]) -> list[float]:
    return [p["score"] for p in answer["predictions"]]


def test_deploy_predict_from_json_text_json_file_and_csv_and_upload_outcomes(
    cli: Cli, tmp_path: Path, empty_db_url: str
) -> None:
    """An ML engineer deploys the production alias; a clinician scores records given as JSON
    text, a JSON file and a CSV file and gets the probabilities the API answers, as a table,
    JSON or FHIR; bad records, unknown deployments and bad outcome rows fail on one line;
    outcomes upload from a CSV."""
    in_production(cli, tmp_path)
    created = cli.ok(
        "deploy",
        "create",
        DEPLOYMENT,
        "--model",
        f"{MODEL}@production",
        "--max-p99-ms",
        "800",
        "--reason",
        "serve the risk model",
        "--json",
    ).json()
    assert (created["target"], created["version"], created["cache_size"]) == (
        f"{MODEL}@production",
        1,
        0,
    )
    assert created["limits"] == {"max_error_rate": 0.01, "max_p99_ms": 800.0, "min_requests": 100}
    status = cli.ok("deploy", "status", DEPLOYMENT).out
    for fragment in (f"{MODEL}@production (follows the alias)", f"{MODEL}/1", "p99 <= 800 ms"):
        assert fragment in status
    assert "live figures: none" in status
    assert [d["name"] for d in cli.ok("deploy", "list", "--json").json()] == [DEPLOYMENT]
    assert f"{MODEL}@production" in cli.ok("deploy", "list").out
    history = cli.ok("deploy", "history", DEPLOYMENT, "--json").json()
    assert [(e["kind"], e["actor"], e["reason"]) for e in history] == [
        ("create", "eli", "serve the risk model")
    ]
    assert "serve the risk model" in cli.ok("deploy", "history", DEPLOYMENT).out

    log_in(cli, "cora")
    records = eval_records(6)
    refs = [f"pt-{i}" for i in range(6)]
    one = cli.ok(
        "predict", DEPLOYMENT, "--input", json.dumps(records[0]), "--patient-ref", "pt-0", "--json"
    ).json()
    (prediction,) = one["predictions"]
    assert (prediction["patient_ref"], prediction["version"], prediction["arm"]) == (
        "pt-0",
        1,
        "primary",
    )
    json_file = tmp_path / "records.json"
    json_file.write_text(
        json.dumps([{"features": r, "patient_ref": p} for r, p in zip(records, refs, strict=True)])
    )
    from_json = cli.ok("predict", DEPLOYMENT, "--input", f"@{json_file}", "--json").json()
    csv_file = _write_csv(tmp_path / "records.csv", records, refs)
    from_csv = cli.ok("predict", DEPLOYMENT, "--input", str(csv_file), "--json").json()
    settings = Settings(home=tmp_path / "home", database_url=empty_db_url, mfa_required_roles=())
    with Client(settings=settings) as sdk:  # the saved login: cora's
        api = sdk.predict(
            DEPLOYMENT,
            records=[{"features": r, "patient_ref": p} for r, p in zip(records, refs, strict=True)],
        )
        outcome = sdk.record_outcome(api["predictions"][0]["id"], 1)
    assert (outcome.label, outcome.recorded_by, outcome.created) == (1, "cora", True)
    for answer in (from_json, from_csv):
        assert [p["patient_ref"] for p in answer["predictions"]] == refs
        assert _scores(answer) == pytest.approx(_scores(api), abs=1e-6)
    assert _scores(one) == pytest.approx(_scores(api)[:1], abs=1e-6)
    assert 0 < min(_scores(api)) < max(_scores(api)) < 1
    table = cli.ok("predict", DEPLOYMENT, "--input", str(csv_file)).out
    assert "pt-5" in table
    assert "6 prediction(s)" in table
    fhir = cli.ok(
        "predict", DEPLOYMENT, "--input", json.dumps(records[0]), "--patient-ref", "pt-9", "--fhir"
    ).json()
    assert (fhir["resourceType"], fhir["subject"]["reference"]) == (
        "RiskAssessment",
        "Patient/pt-9",
    )

    too_old = json.dumps(records[0] | {"age": 200})
    assert_one_line_error(cli("predict", DEPLOYMENT, "--input", too_old), "features.age")
    assert_one_line_error(
        cli("predict", "nope", "--input", json.dumps(records[0])), "no deployment named 'nope'"
    )
    assert_one_line_error(
        cli("predict", DEPLOYMENT, "--input", json.dumps(records[0]), "--fhir"), "patient_ref"
    )
    assert_one_line_error(cli("deploy", "status", "nope"), "no deployment named 'nope'")

    ids = [p["id"] for p in from_csv["predictions"]]
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text(
        "prediction_id,label\n" + "".join(f"{i},{n % 2}\n" for n, i in enumerate(ids))
    )
    uploaded = cli.ok("outcomes", "upload", str(outcomes)).out
    assert re.search(r"created\s*│\s*6\s", uploaded), uploaded
    again = cli.ok("outcomes", "upload", str(outcomes), "--json").json()
    assert again == {"rows": 6, "created": 0, "unchanged": 6, "matched": 0}
    bad = tmp_path / "bad-outcomes.csv"
    bad.write_text(f"prediction_id,label\n{ids[0]},maybe\n")
    assert_one_line_error(cli("outcomes", "upload", str(bad)), "rows[0].label")


def test_canary_shadow_and_rollback_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    """A canary must pass the gates and gets a sticky share of patients; changing only one
    limit keeps the others; --off ends it; a shadow version never answers; rollback ends a
    canary, then moves the followed alias back; the history lists every change."""
    files = in_production(cli, tmp_path)
    cli.ok(
        "deploy",
        "create",
        DEPLOYMENT,
        "--model",
        f"{MODEL}@production",
        "--max-error-rate",
        "0.05",
    )
    candidate = ready_version(cli, files, 2.0)
    approve_version(cli, candidate)
    unapproved = ready_version(cli, files, 10.0)
    log_in(cli, "eli")
    refused = cli(
        "deploy",
        "canary",
        DEPLOYMENT,
        "--version",
        str(unapproved),
        "--percent",
        "30",
        "--reason",
        "try it",
    )
    assert_one_line_error(refused, f"{MODEL}/{unapproved} cannot serve in place of")
    started = cli.ok(
        "deploy",
        "canary",
        DEPLOYMENT,
        "--version",
        str(candidate),
        "--percent",
        "50",
        "--max-p99-ms",
        "900",
        "--reason",
        "half the patients",
        "--json",
    ).json()
    assert (started["canary_version"], started["canary_percent"]) == (candidate, 50)
    assert started["limits"] == {"max_error_rate": 0.05, "max_p99_ms": 900.0, "min_requests": 100}
    assert f"{MODEL}/{candidate} at 50%" in cli.ok("deploy", "status", DEPLOYMENT).out

    log_in(cli, "cora")
    patients = [f"p-{i}" for i in range(40)]
    csv_file = _write_csv(tmp_path / "patients.csv", eval_records(1) * 40, patients)
    first = cli.ok("predict", DEPLOYMENT, "--input", str(csv_file), "--json").json()
    second = cli.ok("predict", DEPLOYMENT, "--input", str(csv_file), "--json").json()
    arms = [(p["arm"], p["version"]) for p in first["predictions"]]
    assert arms == [(p["arm"], p["version"]) for p in second["predictions"]]
    assert set(arms) == {("primary", 1), ("canary", candidate)}

    log_in(cli, "eli")
    ended = cli.ok("deploy", "canary", DEPLOYMENT, "--off", "--reason", "enough", "--json").json()
    assert (ended["canary_version"], ended["canary_percent"]) == (None, 0)
    shadowed = cli.ok(
        "deploy",
        "shadow",
        DEPLOYMENT,
        "--version",
        str(unapproved),
        "--reason",
        "compare quietly",
        "--json",
    ).json()
    assert shadowed["shadow_version"] == unapproved
    assert f"{MODEL}/{unapproved}" in cli.ok("deploy", "status", DEPLOYMENT).out
    log_in(cli, "cora")
    quiet = cli.ok("predict", DEPLOYMENT, "--input", str(csv_file), "--json").json()
    assert {(p["arm"], p["version"]) for p in quiet["predictions"]} == {("primary", 1)}
    log_in(cli, "eli")
    stopped = cli.ok("deploy", "shadow", DEPLOYMENT, "--off", "--reason", "seen enough", "--json")
    assert stopped.json()["shadow_version"] is None

    cli.ok(
        "deploy",
        "canary",
        DEPLOYMENT,
        "--version",
        str(candidate),
        "--percent",
        "20",
        "--reason",
        "once more",
    )
    rolled = cli.ok("deploy", "rollback", DEPLOYMENT, "--reason", "errors seen", "--json").json()
    assert (rolled["canary_version"], rolled["version"]) == (None, 1)
    cli.ok("models", "promote", f"{MODEL}/{candidate}", "--reason", "second release")
    assert cli.ok("deploy", "status", DEPLOYMENT, "--json").json()["version"] == candidate
    back = cli.ok("deploy", "rollback", DEPLOYMENT, "--reason", "back to version 1")
    assert f"serves {MODEL}/1" in back.out
    history = cli.ok("deploy", "history", DEPLOYMENT, "--json").json()
    assert [e["kind"] for e in history] == [
        "create",
        "canary",
        "canary",
        "shadow",
        "shadow",
        "canary",
        "rollback",
        "alias-rollback",
    ]
    assert (history[-1]["before"]["version"], history[-1]["after"]["version"]) == (candidate, 1)
    table = cli.ok("deploy", "history", DEPLOYMENT).out
    assert f"canary_version: - -> {candidate}" in table
    assert "limits.max_p99_ms: 500.0 -> 900.0" in table


def test_bad_input_fails_on_one_line_before_anything_is_sent(tmp_path: Path) -> None:
    """Invalid JSON, a missing or unreadable file, a ragged or empty CSV, a JSON value that is
    no record, and contradictory canary or shadow options each give one error line and exit
    1 without contacting the server (the installation here does not even exist)."""
    cli = Cli(clean_env(MEDOPS_HOME=str(tmp_path / "home")))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("age,bmi\n40,22.5\n41\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("age,bmi\n")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    cases = [
        ('{"age": 40,', "--input is not valid JSON"),
        (f"@{tmp_path / 'missing.json'}", "cannot read --input"),
        ("age=40", "cannot read --input age=40"),
        (str(ragged), "line 3: fewer cells than the header names"),
        (str(empty), "has a header but no rows"),
        (str(binary), "is not UTF-8 text"),
        ("[1, 2]", "record 0 is not a JSON object"),
        ('{"features": {"age": 40}, "dose": 1}', "unknown field 'dose'"),
    ]
    for value, fragment in cases:
        result = cli("predict", DEPLOYMENT, "--input", value)
        assert_one_line_error(result, fragment)
        assert result.code == 1
    for args, fragment in (
        (("canary", DEPLOYMENT, "--off", "--version", "2"), "--off ends the canary"),
        (("canary", DEPLOYMENT), "give --percent"),
        (("canary", DEPLOYMENT, "--percent", "10"), "needs --version"),
        (("shadow", DEPLOYMENT), "give either --version N or --off"),
        (("shadow", DEPLOYMENT, "--off", "--version", "2"), "give either --version N or --off"),
    ):
        assert_one_line_error(cli("deploy", *args, "--reason", "because"), fragment)
    assert_one_line_error(
        cli("outcomes", "upload", str(tmp_path / "none.csv")), "cannot read", "none.csv"
    )
    assert_one_line_error(cli("deploy", "canary", DEPLOYMENT, "--percent", "101"), "--percent")
    process = cli.subprocess("predict", DEPLOYMENT, "--input", "{not json")
    assert_one_line_error(process, "--input is not valid JSON")
