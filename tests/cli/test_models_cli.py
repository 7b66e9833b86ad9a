"""`medops models` end to end through the CLI: register (with packaging and parity), validate,
card, approve, promote, history, show --at, rollback, import-mlflow; errors on one line."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime
from pathlib import Path

import joblib  # type: ignore[import-untyped]
import pytest

from tests.helpers import model_data
from tests.helpers.cli import (
    USER_PW,
    assert_one_line_error,
    log_in,
    setup_people_and_files,
)
from tests.helpers.cli_runner import Cli
from tests.helpers.mlflow import MLFLOW_ENV, MLFLOW_WARNINGS


def test_models_lifecycle_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    """A data scientist registers and validates, a clinician writes the card, a promotion
    without signatures fails on one line, two signatures later it succeeds; history and
    show --at answer; a rollback with nothing before is refused."""
    files = setup_people_and_files(cli, tmp_path)
    log_in(cli, "eli")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(model_data.POLICY))
    cli.ok(
        "models", "create", "risk", "--description", "diabetes progression", "--policy", str(policy)
    )
    assert cli.ok("models", "policy", "risk", "--json").json()["max_subgroup_gap"] == 0.15
    log_in(cli, "dana")
    version = cli.ok(
        "models",
        "register",
        "risk",
        str(files["model"]),
        "--sample",
        str(files["train"]),
        "--demographic",
        "sex",
        "--demographic",
        "age",
        "--bands",
        "age=40,60",
        "--training-data",
        "file:///data/train.csv",
        "--commit",
        "1a2b3c4",
        "--json",
    ).json()
    assert version["version"] == 1
    assert version["parity"]["max_abs_diff"] <= 1e-4
    assert version["code"]["commit"] == "1a2b3c4"
    assert [f["name"] for f in version["signature"]["inputs"] if f["demographic"]] == ["age", "sex"]

    pickled = tmp_path / "sneaky.onnx"
    pickled.write_bytes(pickle.dumps(model_data.pipeline()))
    signature = tmp_path / "signature.json"
    signature.write_text(json.dumps(version["signature"]))
    assert_one_line_error(
        cli("models", "register", "risk", str(pickled), "--signature", str(signature)), "pickle"
    )
    assert_one_line_error(cli("models", "register", "risk", str(pickled)), "--signature")

    report = cli.ok(
        "models",
        "validate",
        "risk/1",
        "--data",
        str(files["eval"]),
        "--label",
        model_data.LABEL,
        "--bootstrap",
        "100",
        "--html",
        str(tmp_path / "report.html"),
        "--json",
    ).json()
    assert report["passed"], report["failures"]
    assert "<svg" in (tmp_path / "report.html").read_text()
    human = cli.ok(
        "models",
        "validate",
        "risk/1",
        "--data",
        str(files["eval"]),
        "--label",
        model_data.LABEL,
        "--bootstrap",
        "50",
    )
    assert "auroc" in human.out

    log_in(cli, "cora")
    written = cli.ok(
        "models",
        "card",
        "risk/1",
        "--set",
        str(files["card"]),
        "--output",
        str(tmp_path / "card.md"),
    )
    assert "(complete)" in written.out
    assert "## Purpose and intended use" in (tmp_path / "card.md").read_text()

    log_in(cli, "eli")
    refused = cli("models", "promote", "risk/1", "--reason", "first release")
    assert_one_line_error(refused, "clinician approval", "ml_engineer approval")
    gates = cli.ok("models", "gates", "risk/1", "--json").json()
    assert gates["passed"] is False

    log_in(cli, "cora")
    assert_one_line_error(cli("models", "approve", "risk", "--password-stdin"), "NAME/VERSION")
    signed = cli.ok(
        "models", "approve", "risk/1", "--password-stdin", "--json", stdin=USER_PW + "\n"
    ).json()
    assert (signed["printed_name"], signed["valid"]) == ("Dr. Cora Lee", True)
    log_in(cli, "mae")
    cli.ok("models", "approve", "risk/1", "--password-stdin", stdin=USER_PW + "\n")
    log_in(cli, "eli")
    moved = cli.ok("models", "promote", "risk/1", "--reason", "first release", "--json").json()
    assert moved["to_version"] == 1
    after = datetime.now(UTC).isoformat()
    history = cli.ok("models", "history", "risk", "--json").json()
    assert [(e["kind"], e["to_version"], e["actor"]) for e in history] == [("promote", 1, "eli")]
    shown = cli.ok("models", "show", "risk@production", "--at", after, "--json").json()
    assert shown["version"] == 1
    assert_one_line_error(
        cli("models", "show", "risk@production", "--at", "2000-01-01T00:00:00Z"),
        "pointed at no version",
    )
    assert_one_line_error(cli("models", "show", "risk/1", "--at", after), "NAME@ALIAS")
    assert_one_line_error(
        cli("models", "rollback", "risk", "--reason", "oops"), "no earlier version"
    )
    listing = cli.ok("models", "list")
    assert "production->1" in listing.out
    assert "risk" in cli.ok("models", "history", "risk").out


@pytest.mark.filterwarnings(*MLFLOW_WARNINGS)
def test_import_from_a_real_mlflow_store(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scikit-learn model logged to a local MLflow store is imported with its run id,
    params and metrics as lineage, and passes the parity check."""
    pytest.importorskip("mlflow", reason="medops[mlflow] is not installed")
    for key, value in MLFLOW_ENV.items():
        monkeypatch.setenv(key, value)
    import mlflow
    import mlflow.sklearn

    files = setup_people_and_files(cli, tmp_path)
    x_train, _, _, _ = model_data.frames()
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking)  # not set_tracking_uri: that is global
    experiment = mlflow.create_experiment("risk", artifact_location=tmp_path.as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("train_auc", 0.83)
        mlflow.sklearn.log_model(
            model_data.pipeline(),
            name="model",
            input_example=x_train.head(20),
            serialization_format="cloudpickle",  # skops is not part of mlflow-skinny
        )
    log_in(cli, "dana")
    cli.ok("models", "create", "risk")
    version = cli.ok(
        "models",
        "import-mlflow",
        f"runs:/{run.info.run_id}/model",
        "--name",
        "risk",
        "--tracking-uri",
        tracking,
        "--sample",
        str(files["train"]),
        "--demographic",
        "sex",
        "--range",
        "age=18,110",
        "--json",
        **MLFLOW_ENV,
    ).json()
    assert version["signature"]["inputs"][0]["maximum"] == 110
    assert version["lineage"]["mlflow"]["run_id"] == run.info.run_id
    assert version["hyperparameters"]["C"] == "1.0"
    assert version["training_metrics"]["train_auc"] == pytest.approx(0.83)
    assert version["parity"]["max_abs_diff"] <= 1e-4


def test_quantize_prints_the_measured_numbers_and_refuses_a_linear_model(
    cli: Cli, tmp_path: Path
) -> None:
    """An MLP quantizes into risk/2: the table gives parent and INT8 latency, size, accuracy
    and AUROC, and `show` names the parent and the quantization; a logistic regression is
    refused on one line naming its ONNX-ML operators."""
    files = setup_people_and_files(cli, tmp_path)
    joblib.dump(model_data.mlp_pipeline(), tmp_path / "mlp.joblib")
    log_in(cli, "dana")
    cli.ok("models", "create", "risk")
    for model_file in (tmp_path / "mlp.joblib", files["model"]):
        cli.ok("models", "register", "risk", str(model_file), "--sample", str(files["train"]))
    data = ("--data", str(files["eval"]), "--label", model_data.LABEL)
    table = cli.ok("models", "quantize", "risk/1", *data, "--description", "INT8 for the edge")
    for fragment in (
        "INT8 quantization of risk/1 (133 rows of eval.csv)",
        "latency (µs/row)",
        "size (bytes)",
        "AUROC",
        "labels agree on",
        "quantized operators: MatMul",
        "registered risk/3 (parent risk/1)",
    ):
        assert fragment in table.out
    version = cli.ok("models", "show", "risk/3", "--json").json()
    q = version["lineage"]["quantization"]
    assert version["parent"] == "risk/1"
    assert version["description"] == "INT8 for the edge"
    assert str(q["parent_size"]) in table.out
    assert version["parity"]["max_abs_diff"] == q["max_probability_diff"] <= 0.02
    assert "INT8 of risk/1" in cli.ok("models", "show", "risk/3").out
    assert_one_line_error(
        cli("models", "quantize", "risk/2", *data, "--json"),
        "nothing to quantize",
        "(LinearClassifier, Scaler)",
    )


def test_tree_models_register_through_the_cli_and_conversion_errors_are_one_line(
    cli: Cli, tmp_path: Path
) -> None:
    """A HistGradientBoostingClassifier and a random forest after a scaler register from
    joblib files with parity within 1e-6; a model skl2onnx cannot convert is refused on one
    line that ends with a whole sentence, even in an 80-column terminal."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]
    from sklearn.semi_supervised import LabelPropagation  # type: ignore[import-untyped]

    files = setup_people_and_files(cli, tmp_path)
    x_train, _, y_train, _ = model_data.frames()
    models = {
        "hgb.joblib": HistGradientBoostingClassifier(max_iter=50, random_state=0),
        "forest.joblib": make_pipeline(
            StandardScaler(), RandomForestClassifier(n_estimators=50, random_state=0)
        ),
        "propagation.joblib": LabelPropagation(),
    }
    for name, model in models.items():
        joblib.dump(model.fit(x_train, y_train), tmp_path / name)
    log_in(cli, "dana")
    cli.ok("models", "create", "risk")
    sample = ("--sample", str(files["train"]), "--tolerance", "1e-6", "--json")
    for number, name in enumerate(("hgb.joblib", "forest.joblib"), start=1):
        version = cli.ok("models", "register", "risk", str(tmp_path / name), *sample).json()
        assert version["version"] == number
        assert version["parity"]["max_abs_diff"] <= 1e-6
    refused = cli("models", "register", "risk", str(tmp_path / "propagation.joblib"), *sample)
    assert_one_line_error(refused, "skl2onnx cannot convert LabelPropagation")
    assert refused.err.strip().endswith(".")
    narrow = cli(
        "models", "register", "risk", str(tmp_path / "propagation.joblib"), *sample, COLUMNS="80"
    )
    assert narrow.err == refused.err
