"""The contributions monitoring compares (``attribution.py``): of the version's reference rows
and of a window's rows, from the version's explainer.

Per version, once per service: the explainer (``medops.core.explain``) of its ONNX artifact
against the background serving uses (a fixed-seed sample of the latest validation data,
``serving/explain.py``), and the contributions of the reference rows (a fixed-seed sample of
the same data). A window's rows are explained on a fixed-seed sample of at most
``WINDOW_ROWS`` rows (exact methods) or ``APPROX_ROWS`` (an approximate method, which costs
tens of milliseconds a row). A version that cannot be explained gets no attribution part;
its windows are monitored as before.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from medops.core import datasets
from medops.core.signature import ModelSignature
from medops.db.engine import Database
from medops.logs import get_logger
from medops.monitoring.attribution import WINDOW_ROWS
from medops.monitoring.evaluate import ExplainedWindow
from medops.registry.explained import (
    APPROX_ROWS,
    BACKGROUND_ROWS,
    REPORT_ROWS,
    as_arrays,
    sample_rows,
)
from medops.registry.tables import ModelVersion, RegisteredModel, ValidationReport
from medops.storage.base import DIGEST_PREFIX, BlobStore

if TYPE_CHECKING:
    from medops.core.explain import Explainer

log = get_logger("medops.monitoring")


@dataclass(frozen=True)
class _Reference:
    explainer: Explainer
    features: tuple[str, ...]
    values: np.ndarray[Any, Any]
    method: str
    scale: str
    exact: bool


class WindowExplainer:
    """Explains windows of model versions; keeps each version's explainer and reference."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs
        self._versions: dict[tuple[str, int], _Reference | None] = {}
        self._lock = threading.Lock()

    def explain(
        self,
        model_name: str,
        version: int,
        features: Mapping[str, Sequence[Any] | np.ndarray[Any, Any]],
        rows: int,
    ) -> ExplainedWindow | None:
        """The reference's and the window's contributions, or None (not explainable)."""
        reference = self._reference(model_name, version)
        if reference is None or rows == 0:
            return None
        limit = WINDOW_ROWS if reference.exact else APPROX_ROWS
        picked = sample_rows(features, limit)
        try:
            window = reference.explainer.explain(as_arrays(features, picked))
        except Exception as exc:  # noqa: BLE001 - the window is monitored without it
            log.warning("window explanation failed", model=model_name, error=type(exc).__name__)
            return None
        return ExplainedWindow(
            features=reference.features,
            reference=reference.values,
            window=np.asarray(window.values, dtype=np.float64),
            method=reference.method,
            scale=reference.scale,
        )

    def _reference(self, model_name: str, version: int) -> _Reference | None:
        key = (model_name, version)
        with self._lock:
            if key not in self._versions:
                try:
                    self._versions[key] = self._build(model_name, version)
                except Exception as exc:  # noqa: BLE001 - no attribution part for it
                    log.info(
                        "version not explained in monitoring",
                        model=model_name,
                        version=version,
                        error=type(exc).__name__,
                    )
                    self._versions[key] = None
            return self._versions[key]

    def _build(self, model_name: str, number: int) -> _Reference | None:
        from medops.core.explain import explainer_for

        with self._db.session() as session:
            found = session.execute(
                select(ModelVersion, ValidationReport)
                .join(RegisteredModel, ModelVersion.model_id == RegisteredModel.id)
                .join(ValidationReport, ValidationReport.version_id == ModelVersion.id)
                .where(RegisteredModel.name == model_name, ModelVersion.version == number)
                .order_by(ValidationReport.number.desc())
            ).first()
            if found is None:
                return None
            version, report = found
            signature = ModelSignature.model_validate_json(version.signature)
            artifact, dataset = version.artifact_digest, report.dataset_digest
            label_column = report.label_column
        parsed = datasets.parse_csv(
            self._blobs.get(DIGEST_PREFIX + dataset), signature, label_column=label_column
        )
        explainer = explainer_for(
            self._blobs.get(DIGEST_PREFIX + artifact),
            signature,
            background=as_arrays(parsed.columns, sample_rows(parsed.columns, BACKGROUND_ROWS)),
            class_index=signature.outputs.positive_index,
        )
        limit = REPORT_ROWS if explainer.exact else APPROX_ROWS
        values = explainer.explain(as_arrays(parsed.columns, sample_rows(parsed.columns, limit)))
        return _Reference(
            explainer=explainer,
            features=tuple(values.features),
            values=np.asarray(values.values, dtype=np.float64),
            method=values.method,
            scale=values.scale,
            exact=bool(values.exact),
        )
