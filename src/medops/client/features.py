"""Feature store methods of the SDK client: apply definitions, list and show them, the
registered repository, and recording a training set's lineage."""

from __future__ import annotations

from typing import Any

from medops.client.shapes import Shape
from medops.client.transport import Transport
from medops.features.schemas import (
    ApplyIn,
    ApplyOut,
    DefinitionKind,
    DefinitionOut,
    FeatureRepo,
    RegisteredRepo,
    TrainingSetRecordIn,
    TrainingSetRecordOut,
)

_APPLY = Shape(ApplyOut)
_DEF = Shape(DefinitionOut)
_DEFS = Shape(list[DefinitionOut])
_REPO = Shape(RegisteredRepo)
_RECORD = Shape(TrainingSetRecordOut)


def _kind(kind: DefinitionKind | None) -> dict[str, Any]:
    return {"kind": kind} if kind else {}


class FeatureCalls(Transport):
    """Feature store methods of the SDK client."""

    def apply_features(self, repo: FeatureRepo) -> ApplyOut:
        """Register the definitions of ``repo`` (a new version of each changed one)."""
        body = ApplyIn(repo=repo).model_dump(mode="json")
        return self._call("POST", "/api/v1/features/apply", _APPLY, json=body)

    def feature_definitions(self, kind: DefinitionKind | None = None) -> list[DefinitionOut]:
        """The newest version of every definition (of one kind)."""
        return self._call("GET", "/api/v1/features/definitions", _DEFS, params=_kind(kind))

    def feature_definition(
        self, name: str, kind: DefinitionKind | None = None, version: int | None = None
    ) -> DefinitionOut:
        """One version of a definition (default: the newest)."""
        params = _kind(kind) | ({"version": version} if version is not None else {})
        return self._call("GET", f"/api/v1/features/definitions/{name}", _DEF, params=params)

    def feature_versions(
        self, name: str, kind: DefinitionKind | None = None
    ) -> list[DefinitionOut]:
        """Every version of a definition, oldest first."""
        path = f"/api/v1/features/definitions/{name}/versions"
        return self._call("GET", path, _DEFS, params=_kind(kind))

    def feature_repo(self) -> RegisteredRepo:
        """The registered definitions as one repository, with their versions."""
        return self._call("GET", "/api/v1/features/repo", _REPO)

    def record_training_set(self, record: TrainingSetRecordIn) -> TrainingSetRecordOut:
        """Record a dataset version as a training set built from these features."""
        body = record.model_dump(mode="json")
        return self._call("POST", "/api/v1/features/training-sets", _RECORD, json=body)
