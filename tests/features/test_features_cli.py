"""`medops features apply|list|show|training-set` end to end through the CLI over the embedded
app: definitions versioned, a point-in-time training set written and recorded as a dataset
version whose lineage names the definitions, JSON and readable output, one-line errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from tests.helpers.cli import assert_one_line_error, init_with_people, log_in
from tests.helpers.cli_runner import Cli

T0 = datetime(2026, 5, 1, 8, 0)


def _files(tmp_path: Path) -> Path:
    pl.DataFrame(
        {
            "patient_id": ["a", "a", "a", "b"],
            "charted_at": [T0, T0 + timedelta(hours=2), T0 + timedelta(hours=2), T0],
            "entered_at": [T0, T0 + timedelta(hours=3), T0 + timedelta(hours=2), T0],
            "heart_rate": [80.0, 130.0, 120.0, 70.0],
            "sbp": [120.0, 100.0, 90.0, 110.0],
        }
    ).write_parquet(tmp_path / "vitals.parquet")
    pl.DataFrame(
        {
            "patient_id": ["a", "a", "b", "c"],
            "event_time": [
                T0 + timedelta(hours=1),
                T0 + timedelta(hours=2),
                T0 + timedelta(days=2),
                T0,
            ],
            "age": [70.0, 70.0, 40.0, 30.0],
        }
    ).write_csv(tmp_path / "entities.csv")
    repo = tmp_path / "features.yaml"
    repo.write_text(
        f"""
entities:
  - {{name: patient, join_keys: [patient_id], owner: sepsis-team}}
feature_views:
  - name: vitals
    entities: [patient]
    features:
      - {{name: heart_rate, unit: bpm}}
      - {{name: sbp, unit: mmHg}}
    source: {{path: "{tmp_path / "vitals.parquet"}"}}
    event_time: charted_at
    created_time: entered_at
    ttl: 1d
on_demand_features:
  - name: shock_index
    request: [{{name: age}}]
    features: {{hr: "vitals:heart_rate", sbp: "vitals:sbp"}}
    expression: "round(hr / sbp, 3)"
""",
        encoding="utf-8",
    )
    return repo


def test_apply_show_and_build_a_recorded_training_set(cli: Cli, tmp_path: Path) -> None:
    """Apply registers version 1 (then nothing), list and show read them back, training-set
    writes the point-in-time values (the later correction wins; a row past the TTL and an
    unknown patient keep their place with nulls) and records the dataset version with its
    lineage to the definitions."""
    init_with_people(cli, [("dana", "data_scientist", "Dana Scully")])
    log_in(cli, "dana")
    repo = _files(tmp_path)
    applied = cli.ok("features", "apply", str(repo), "--json").json()
    assert [d["name"] for d in applied["created"]] == ["patient", "vitals", "shock_index"]
    assert "unchanged" in cli.ok("features", "apply", str(repo)).out
    listed = cli.ok("features", "list", "--json").json()
    assert [(d["kind"], d["version"]) for d in listed] == [
        ("entity", 1),
        ("feature_view", 1),
        ("on_demand_feature", 1),
    ]
    shown = cli.ok("features", "show", "vitals").out
    assert "heart_rate" in shown
    assert "mmHg" in shown
    out = tmp_path / "train.parquet"
    made = cli.ok(
        "features", "training-set", "--entities", str(tmp_path / "entities.csv"),
        "--features", "vitals:heart_rate,shock_index", "--out", str(out),
        "--dataset", "sepsis-train", "--json",
    ).json()  # fmt: skip
    assert made["summary"]["rows"] == 4
    assert made["summary"]["rows_with_all_values"] == 2
    assert made["recorded"]["dataset"] == "sepsis-train@1"
    table = pl.read_parquet(out)
    assert table["patient_id"].to_list() == ["a", "a", "b", "c"]
    assert table["heart_rate"].to_list() == [80.0, 130.0, None, None]
    assert table["shock_index"].to_list() == [0.667, 1.3, None, None]
    graph = cli.ok("lineage", "show", "data:sepsis-train@1", "--json").json()
    labels = sorted(n["label"] for n in graph["nodes"] if n["kind"] == "feature_definition")
    assert labels == ["patient v1", "shock_index v1", "vitals v1"]
    assert_one_line_error(
        cli("features", "training-set", "--entities", str(tmp_path / "entities.csv"),
            "--features", "vitals:nope", "--out", str(out)),
        "no feature vitals:nope",
    )  # fmt: skip
    assert_one_line_error(cli("features", "show", "nothing"), "no feature definition nothing")
