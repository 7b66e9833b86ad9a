"""Import a model logged with MLflow: the native model, a sample, and the run as lineage.

``import_mlflow`` downloads the MLflow model (``runs:/<run_id>/<path>``,
``models:/<name>/<version>`` or ``models:/<model_id>``), loads the native model with its
flavor's loader (scikit-learn, LightGBM, XGBoost, PyTorch; an ``onnx`` flavor's file is used
as is), takes the sample from ``sample`` or the logged input example, and packages it with
``package_model``. The run's params become the hyperparameters, its metrics the training
metrics, and its ids, tags and times the lineage. mlflow (``medops[mlflow]``) is imported only
here. Loading a pickled flavor (scikit-learn's pickle/cloudpickle formats) runs code from the
artifact: that happens on the user's machine, on their own tracking server's artifact; the
medops server only ever receives the ONNX.
"""

from __future__ import annotations

import dataclasses
import importlib
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from medops.core.signature import ModelSignature
from medops.errors import FieldError, PackagingError
from medops.packaging.onnx_graph import one_line
from medops.packaging.package import Package, package_model

# Flavors in order of preference, with the mlflow module that loads each.
_NATIVE_FLAVORS = ("sklearn", "lightgbm", "xgboost", "pytorch")
_KEPT_MLFLOW_TAGS = {
    "mlflow.runName",
    "mlflow.user",
    "mlflow.source.name",
    "mlflow.source.type",
    "mlflow.source.git.commit",
    "mlflow.source.git.repoURL",
}


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        msg = "mlflow is not installed: install medops[mlflow]"
        raise PackagingError(msg, errors=[FieldError("model_uri", msg)]) from None
    return mlflow


def import_mlflow(
    model_uri: str,
    *,
    tracking_uri: str | None = None,
    sample: Any = None,
    signature: ModelSignature | None = None,
    tolerance: float = 1e-4,
    parity_rows: int = 200,
    class_labels: Sequence[Any] | None = None,
    demographic: Sequence[str] = (),
    bands: Mapping[str, Sequence[float]] | None = None,
    ranges: Mapping[str, Sequence[float]] | None = None,
) -> Package:
    """Package the MLflow model at ``model_uri`` with its run's params, metrics and ids.

    Without ``sample`` the logged input example is the sample. ``ranges`` declares allowed
    (minimum, maximum) per feature, as for ``package_model``."""
    mlflow = _mlflow()
    # MLflow resolves ``runs:/`` URIs of logged models (MLflow 3) through the global tracking
    # URI, whatever ``tracking_uri`` says; set it for the import and put the old one back.
    # The raw setting (None when unset), not get_tracking_uri()'s resolved default: putting
    # that back would pin it for the rest of the process.
    state = importlib.import_module("mlflow.tracking._tracking_service.utils")
    previous = getattr(state, "_tracking_uri", None)
    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    try:
        return _import(
            mlflow,
            model_uri,
            tracking_uri=tracking_uri,
            sample=sample,
            signature=signature,
            tolerance=tolerance,
            parity_rows=parity_rows,
            class_labels=class_labels,
            demographic=demographic,
            bands=bands,
            ranges=ranges,
        )
    finally:
        if tracking_uri is not None:
            mlflow.set_tracking_uri(previous)


def _import(
    mlflow: Any,
    model_uri: str,
    *,
    tracking_uri: str | None,
    sample: Any,
    signature: ModelSignature | None,
    tolerance: float,
    parity_rows: int,
    class_labels: Sequence[Any] | None,
    demographic: Sequence[str],
    bands: Mapping[str, Sequence[float]] | None,
    ranges: Mapping[str, Sequence[float]] | None,
) -> Package:
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="medops-mlflow-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri,
                dst_path=tmp,
                tracking_uri=tracking_uri,
                registry_uri=tracking_uri,
            )
            meta = Model.load(local)
        except (MlflowException, OSError) as exc:
            msg = f"cannot read the MLflow model {model_uri}: {one_line(exc)}"
            raise PackagingError(msg, errors=[FieldError("model_uri", msg)]) from exc
        native = _load_native(mlflow, local, meta.flavors)
        if sample is None:
            sample = meta.load_input_example(local)
        if sample is None:
            msg = "the MLflow model has no input example: pass a sample"
            raise PackagingError(msg, errors=[FieldError("sample", msg)])
        lineage, params, metrics = _lineage(mlflow, meta, model_uri, tracking_uri)
        package = package_model(
            native,
            sample=sample,
            signature=signature,
            tolerance=tolerance,
            parity_rows=parity_rows,
            class_labels=class_labels,
            demographic=demographic,
            bands=bands,
            training_metrics=metrics,
            lineage=lineage,
            ranges=ranges,
        )
    if params is None:
        return package
    return dataclasses.replace(package, hyperparameters=params)


def _load_native(mlflow: Any, local: str, flavors: Mapping[str, Any]) -> Any:
    for flavor in _NATIVE_FLAVORS:
        if flavor in flavors:
            try:
                loader = getattr(mlflow, flavor)  # mlflow imports flavor modules lazily
            except AttributeError:
                import importlib

                loader = importlib.import_module(f"mlflow.{flavor}")
            try:
                return loader.load_model(local)
            except Exception as exc:  # loaders raise whatever their framework raises
                msg = f"cannot load the MLflow {flavor} model: {one_line(exc)}"
                raise PackagingError(msg, errors=[FieldError("model_uri", msg)]) from exc
    if "onnx" in flavors:
        return (Path(local) / str(flavors["onnx"]["data"])).read_bytes()
    msg = (
        f"MLflow flavors {sorted(flavors)} are not supported; log the model with the "
        f"{', '.join(_NATIVE_FLAVORS)} or onnx flavor"
    )
    raise PackagingError(msg, errors=[FieldError("model_uri", msg)])


def redact(uri: str) -> str:
    """A URI without the user and password it may carry."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _iso(millis: int | None) -> str | None:
    if millis is None:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat(timespec="seconds")


def _lineage(
    mlflow: Any, meta: Any, model_uri: str, tracking_uri: str | None
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, float]]:
    """(lineage, run params or None without a run, run metrics)."""
    info: dict[str, Any] = {
        "tracking_uri": redact(tracking_uri or mlflow.get_tracking_uri()),
        "model_uri": model_uri,
        "model_id": getattr(meta, "model_id", None),
        "run_id": meta.run_id,
        "flavors": sorted(meta.flavors),
        "mlflow_version": meta.mlflow_version,
    }
    if model_uri.startswith("models:/") and model_uri.count("/") >= 2:
        name, _, version = model_uri.removeprefix("models:/").partition("/")
        info["registered_model"] = {"name": name, "version": version}
    if not meta.run_id:
        return {"mlflow": info}, None, {}
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=tracking_uri).get_run(meta.run_id)
    params = {str(k): str(v) for k, v in run.data.params.items()}
    metrics = {str(k): float(v) for k, v in run.data.metrics.items()}
    info |= {
        "experiment_id": run.info.experiment_id,
        "run_name": run.info.run_name,
        "artifact_uri": run.info.artifact_uri,
        "user": run.info.user_id,
        "status": run.info.status,
        "start_time": _iso(run.info.start_time),
        "end_time": _iso(run.info.end_time),
        "params": params,
        "metrics": metrics,
        "tags": {
            k: v
            for k, v in sorted(run.data.tags.items())
            if not k.startswith("mlflow.") or k in _KEPT_MLFLOW_TAGS
        },
    }
    return {"mlflow": info}, params, metrics
