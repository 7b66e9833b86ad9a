"""`medops features bind|materialize|get|skew|unbind` end to end through the CLI over the
embedded app (a deployment bound to a view of the lab results), JSON and readable output,
one-line errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from tests.helpers.cli import DEPLOYMENT, assert_one_line_error, eval_records, log_in, serving
from tests.helpers.cli_runner import Cli

LABS = ["s1", "s2", "s3", "s4", "s5", "s6"]


def test_bind_materialize_get_skew_unbind(cli: Cli, tmp_path: Path) -> None:
    """An engineer binds the deployment to the labs view, materializes it, reads a patient's
    values, checks online against offline and served against trained, then unbinds."""
    serving(cli, tmp_path)
    log_in(cli, "eli")
    now = datetime.now(UTC).replace(tzinfo=None)
    records = eval_records(3)
    pl.DataFrame(
        [
            {"patient_id": f"p{i}", "drawn_at": now - timedelta(hours=1)} | {n: r[n] for n in LABS}
            for i, r in enumerate(records)
        ]
    ).write_parquet(tmp_path / "labs.parquet")
    repo = tmp_path / "features.yaml"
    repo.write_text(
        f"""
entities:
  - {{name: patient, join_keys: [patient_id]}}
feature_views:
  - name: labs
    entities: [patient]
    features: [{", ".join("{name: " + n + "}" for n in LABS)}]
    source: {{path: {tmp_path / "labs.parquet"}}}
    event_time: drawn_at
    ttl: 7d
"""
    )
    cli.ok("features", "apply", str(repo))
    args = [a for n in LABS for a in ("--input", f"{n}=labs:{n}")]
    bound = cli.ok("features", "bind", DEPLOYMENT, *args, "--json").json()
    assert bound["request_fields"] == ["patient_id"]
    shown = cli.ok("features", "bind", DEPLOYMENT, *args).out
    assert "patient_id" in shown
    done = cli.ok("features", "materialize", "--json").json()
    assert [(r["view"], r["entities"]) for r in done["runs"]] == [("labs", 3)]
    assert "labs" in cli.ok("features", "materialize").out
    got = cli.ok("features", "get", "--entity", "patient_id=p1", "--features", "labs", "--json")
    values = {v["feature"]: v["value"] for v in got.json()["values"]}
    assert values == {n: records[1][n] for n in LABS}
    assert "s3" in cli.ok("features", "get", "--entity", "patient_id=p1", "--features", "labs").out
    check = cli.ok("features", "skew", "--view", "labs", "--json").json()
    assert check["consistent"] is True
    assert "consistent" in cli.ok("features", "skew", "--view", "labs").out
    pl.DataFrame(eval_records(50)).write_parquet(tmp_path / "train.parquet")
    served = cli.ok(
        "features", "skew", "--deployment", DEPLOYMENT, "--training-set",
        str(tmp_path / "train.parquet"), "--json",
    ).json()  # fmt: skip
    assert served["deployment"] == DEPLOYMENT
    assert_one_line_error(
        cli("features", "bind", DEPLOYMENT, "--input", "s1=labs:nothing"), "no feature labs:nothing"
    )
    assert_one_line_error(cli("features", "skew"), "--view")
    assert_one_line_error(cli("features", "bind", "nowhere", *args), "no deployment nowhere")
    assert cli.ok("features", "unbind", DEPLOYMENT, "--json").json() == {
        "deployment": DEPLOYMENT,
        "bound": False,
    }
    assert_one_line_error(cli("features", "unbind", DEPLOYMENT), "not bound")
