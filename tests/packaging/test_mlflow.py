"""Importing a model logged with MLflow: the run becomes lineage, parity still holds.

The tracking store is SQLite in a temporary folder (MLflow 3.17 refuses its file store unless
MLFLOW_ALLOW_FILE_STORE=true). The environment switches off what would reach outside the test:
telemetry, ``uv export`` of this project, and ``pip install --dry-run`` of the requirements.
The scikit-learn model is logged as cloudpickle because MLflow's default for scikit-learn,
skops, is not installed with mlflow-skinny.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

from medops.errors import PackagingError
from medops.packaging.mlflow import import_mlflow, redact
from tests.helpers.mlflow import MLFLOW_ENV, MLFLOW_WARNINGS

pytestmark = [pytest.mark.filterwarnings(w) for w in MLFLOW_WARNINGS]


@dataclass(frozen=True)
class Logged:
    tracking_uri: str
    run_id: str
    bare_run_id: str  # a model logged without an input example
    model: Any


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    """A scikit-learn pipeline logged (and registered as 'risk') in a SQLite store."""
    root = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in MLFLOW_ENV.items():
            patch.setenv(key, value)
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        mlflow = pytest.importorskip("mlflow")
        mlflow_sklearn = pytest.importorskip("mlflow.sklearn")

        x, y = load_breast_cancer(return_X_y=True, as_frame=True)
        x.columns = [c.replace(" ", "_") for c in x.columns]
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
        model.fit(x, y)
        experiment = mlflow.create_experiment("risk", artifact_location=Path(root).as_uri())
        runs = []
        for example in (x.iloc[:20], None):
            with mlflow.start_run(experiment_id=experiment) as run:
                mlflow.log_params({"C": 0.5, "max_iter": 2000})
                mlflow.log_metric("auroc", 0.97)
                mlflow.set_tag("team", "clinical-ai")
                mlflow_sklearn.log_model(
                    model,
                    name="model",
                    input_example=example,
                    registered_model_name="risk" if example is not None else None,
                    serialization_format="cloudpickle",
                    pip_requirements=["scikit-learn"],
                )
            runs.append(run.info.run_id)
        yield Logged(tracking_uri, runs[0], runs[1], model)


@pytest.mark.parametrize("uri", ["runs", "models"])
def test_import_brings_run_lineage_and_passes_parity(logged: Logged, uri: str) -> None:
    """runs:/<id>/model and models:/risk/1 both give the run id, params, metrics and tags in
    the lineage, params as hyperparameters, and a passing parity check."""
    model_uri = f"runs:/{logged.run_id}/model" if uri == "runs" else "models:/risk/1"
    package = import_mlflow(model_uri, tracking_uri=logged.tracking_uri)
    lineage = package.lineage["mlflow"]
    assert lineage["run_id"] == logged.run_id
    assert lineage["model_uri"] == model_uri
    assert lineage["params"] == {"C": "0.5", "max_iter": "2000"}
    assert lineage["metrics"] == {"auroc": 0.97}
    assert lineage["tags"]["team"] == "clinical-ai"
    assert lineage["experiment_id"]
    assert package.hyperparameters == {"C": "0.5", "max_iter": "2000"}
    assert package.training_metrics == {"auroc": 0.97}
    assert package.framework.startswith("scikit-learn ")
    assert package.parity is not None
    assert len(package.parity.native_probabilities) == 20  # the logged input example
    assert package.parity.max_abs_diff < 1e-5
    if uri == "models":
        assert lineage["registered_model"] == {"name": "risk", "version": "1"}


def test_a_model_without_input_example_needs_a_sample(logged: Logged) -> None:
    """Without a logged input example the import asks for a sample, and works with one."""
    model_uri = f"runs:/{logged.bare_run_id}/model"
    with pytest.raises(PackagingError, match="no input example"):
        import_mlflow(model_uri, tracking_uri=logged.tracking_uri)
    x, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [c.replace(" ", "_") for c in x.columns]
    package = import_mlflow(model_uri, tracking_uri=logged.tracking_uri, sample=x)
    assert package.parity is not None
    assert len(package.parity.native_probabilities) == 200


def test_an_unknown_model_uri_raises_packaging_error(logged: Logged) -> None:
    """A URI that resolves to nothing raises PackagingError naming it."""
    with pytest.raises(PackagingError, match="models:/nope/1"):
        import_mlflow("models:/nope/1", tracking_uri=logged.tracking_uri)


def test_missing_mlflow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without mlflow installed the import says to install medops[mlflow]."""
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(PackagingError, match=r"install medops\[mlflow\]"):
        import_mlflow("runs:/abc/model")


def test_tracking_uri_credentials_are_redacted() -> None:
    """A user and password in the tracking URI never reach the lineage."""
    assert redact("https://alice:s3cret@mlflow.example.org:5000/") == (
        "https://mlflow.example.org:5000/"
    )
    assert redact("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
