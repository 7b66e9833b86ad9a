"""The feature store's definitions over HTTP: apply a repository of definitions (a new
version per changed definition, audited), list them, show one and its versions, the registered
repository as one document, and recording a training set's lineage. Reads need
``features:read``; applying and recording need ``features:write``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.bounds import INT32_MAX
from medops.context import Context
from medops.core.permissions import Permission
from medops.features.schemas import (
    NAME_PATTERN,
    ApplyIn,
    ApplyOut,
    DefinitionKind,
    DefinitionOut,
    RegisteredRepo,
    TrainingSetRecordIn,
    TrainingSetRecordOut,
)

router = APIRouter(tags=["features"])
Reader = Annotated[Context, Depends(require(Permission.FEATURES_READ))]
Writer = Annotated[Context, Depends(require(Permission.FEATURES_WRITE))]
Name = Annotated[str, Path(pattern=NAME_PATTERN)]
Kind = Annotated[DefinitionKind | None, Query(description="needed when two kinds share a name")]
PREFIX = f"{API_PREFIX}/features"


@router.post(f"{PREFIX}/apply", name="features.apply")
def apply(body: ApplyIn, services: ServicesDep, ctx: Writer) -> ApplyOut:
    """Register the definitions: a new version of each new or changed one (audited
    ``features.apply``), nothing for the unchanged."""
    return services.features.apply(ctx, body.repo)


@router.get(f"{PREFIX}/definitions", name="features.list")
def definitions(
    services: ServicesDep,
    _ctx: Reader,
    kind: Annotated[DefinitionKind | None, Query()] = None,
) -> list[DefinitionOut]:
    """The newest version of every definition (of one kind)."""
    return services.features.list(kind)


@router.get(f"{PREFIX}/definitions/{{name}}", name="features.show")
def show(
    name: Name,
    services: ServicesDep,
    _ctx: Reader,
    kind: Kind = None,
    version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
) -> DefinitionOut:
    """One version of a definition (default: the newest)."""
    return services.features.show(name, kind, version)


@router.get(f"{PREFIX}/definitions/{{name}}/versions", name="features.versions")
def versions(
    name: Name, services: ServicesDep, _ctx: Reader, kind: Kind = None
) -> list[DefinitionOut]:
    """Every version of a definition, oldest first."""
    return services.features.versions(name, kind)


@router.get(f"{PREFIX}/repo", name="features.repo")
def repo(services: ServicesDep, _ctx: Reader) -> RegisteredRepo:
    """The newest version of every definition as one repository, with their versions."""
    return services.features.registered()


@router.post(f"{PREFIX}/training-sets", name="features.training_set", status_code=201)
def training_set(
    body: TrainingSetRecordIn, services: ServicesDep, ctx: Writer
) -> TrainingSetRecordOut:
    """Record that a dataset version is a training set built from these features: lineage
    edges from the definition versions to it (audited ``features.training_set``)."""
    return services.features.record_training_set(ctx, body)
