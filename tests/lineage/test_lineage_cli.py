"""`medops models register --training-data NAME@VERSION`, `medops lineage show|impact|send`
end to end through the CLI over the embedded app: JSON and readable output, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from medops.db.engine import Database
from tests.helpers import model_data
from tests.helpers.cli import DEPLOYMENT, MODEL, assert_one_line_error, log_in, serving
from tests.helpers.cli_runner import Cli, Result
from tests.helpers.lineage_data import add_version
from tests.helpers.openlineage_spec import validate


def _register(cli: Cli, tmp_path: Path, *pins: str) -> Result:
    model_file = tmp_path / "model-0.5.joblib"
    import joblib  # type: ignore[import-untyped]

    joblib.dump(model_data.pipeline(0.5), model_file)
    return cli(
        "models", "register", MODEL, str(model_file), "--sample", str(tmp_path / "train.csv"),
        "--demographic", "sex", *pins, "--json",
    )  # fmt: skip


def test_register_pinned_then_show_impact_and_send(cli: Cli, tmp_path: Path) -> None:
    """A version registered on vitals@1 (training) and vitals-holdout@1 (validation) shows
    both upstream; impact of vitals@1 names it; send writes valid events to the file; an
    unknown version or reference, and a validation re-run the server cannot read (no dataset
    service wired) or given no data, fail on one line."""
    serving(cli, tmp_path)
    db = Database(cli.env["MEDOPS_DATABASE_URL"])
    try:
        add_version(db, "vitals")
        add_version(db, "vitals-holdout")
    finally:
        db.dispose()
    log_in(cli, "dana")
    refused = _register(cli, tmp_path, "--training-data", "vitals@9")
    assert_one_line_error(refused, "training_data.dataset", "no dataset version vitals@9")
    made = _register(cli, tmp_path, "--training-data", "vitals@1", "--validation-data",
                     "vitals-holdout@latest")  # fmt: skip
    assert made.code == 0, made.err
    version = made.json()
    assert version["lineage"]["datasets"]["validation"]["dataset"] == "vitals-holdout@1"
    shown = cli.ok("models", "show", f"{MODEL}/{version['version']}").out
    assert "training vitals@1" in shown

    graph = cli.ok("lineage", "show", f"model:{MODEL}/2", "--json").json()
    labels = {n["key"]: n["label"] for n in graph["nodes"]}
    assert {labels[k] for k in graph["upstream"]} == {"vitals@1", "vitals-holdout@1"}
    human = cli.ok("lineage", "show", "data:vitals@1").out
    assert "vitals@1" in human
    assert f"{MODEL}/2" in human
    assert "training" in human

    impact = cli.ok("lineage", "impact", "vitals@1", "--json").json()
    assert [m["ref"] for m in impact["models"]] == [f"{MODEL}/2"]
    assert impact["serving_now"] is False
    assert "Impact of vitals@1" in cli.ok("lineage", "impact", "vitals@1").out

    log_in(cli, "eli")
    target = tmp_path / "openlineage.jsonl"
    sent = cli.ok("lineage", "send", "--json", MEDOPS_OPENLINEAGE_URL=target.as_uri()).json()
    # The embedded app's own loop may have sent them as it started: either way all went.
    assert sent["pending"] == 0, sent
    events = [json.loads(line) for line in target.read_text().splitlines()]
    jobs = sorted(e["job"]["name"] for e in events if e["eventType"] == "COMPLETE")
    assert jobs == ["medops.data.add", "medops.data.add", "medops.deploy",
                    "medops.models.register", "medops.models.register"]  # fmt: skip
    for event in events:
        validate(event)

    validate_from = ("models", "validate", f"{MODEL}/2", "--label", model_data.LABEL)
    assert_one_line_error(cli(*validate_from), "--data FILE.csv", "--dataset NAME@VERSION")
    # The rows of vitals@1 were made without its bytes: the read names the version and what
    # to type, not where the store keeps its files.
    unread = cli(*validate_from, "--dataset", "vitals@1", "--path", "eval.csv")
    assert unread.code != 0
    assert unread.out == ""
    last = unread.err.strip().splitlines()[-1]
    assert last.startswith("error: vitals@1: its manifest is not in this installation's store")
    assert "medops data pull vitals@1" in last
    assert_one_line_error(cli("lineage", "show", "nothing"), "ref")
    assert_one_line_error(cli("lineage", "impact", "vitals@7"), "vitals@7")
    assert_one_line_error(cli("lineage", "show", f"deployment:{DEPLOYMENT}x"), "deployment")
