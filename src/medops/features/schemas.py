"""The definitions of the feature store, as frozen data: entities, feature views, on-demand
features and feature services, a ``FeatureRepo`` holding them all (read from ``features.yaml``),
what the registry answers about them, and the contract of an online lookup.

Pure pydantic, no I/O beyond reading the YAML text handed in: the SDK, the CLI, the offline
join and the online stores all read the same models. A definition's ``digest`` is the SHA-256
of its canonical JSON, so applying an unchanged file changes nothing and a changed definition
gets a new version.

Names are lower-case identifiers. A feature is referred to as ``view:feature`` (an on-demand
feature as ``name`` alone or ``on_demand:name``); the column it becomes in a training set and in
a serving request is the feature's own name, so two referenced features may not share one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medops.bounds import INT64_MAX, Int64, VersionNumber
from medops.core.canonical import canonical_bytes

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
_NAME = re.compile(NAME_PATTERN)
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
# The types a feature, a join key or a request value may have.
DType = Literal["float64", "int64", "bool", "string"]
KeyDType = Literal["int64", "string"]
DefinitionKind = Literal["entity", "feature_view", "on_demand_feature", "feature_service"]
ON_DEMAND = "on_demand"
_TTL = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_ttl(value: object) -> object:
    """``30d``, ``12h``, ``90m``, ``3600s``, ``2w`` or a number of seconds as a timedelta;
    anything else is left for pydantic (an ISO 8601 duration such as ``P30D``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str) and (m := _TTL.match(value)):
        return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    return value


# -- entities -------------------------------------------------------------------------------


class JoinKey(_Frozen):
    """A column that identifies an entity (``patient_id``), with its type."""

    name: Name
    dtype: KeyDType = "string"


class Entity(_Frozen):
    """Something features describe (a patient, an encounter), identified by its join keys."""

    name: Name
    join_keys: tuple[JoinKey, ...] = Field(min_length=1, max_length=4)
    description: str = Field(default="", max_length=2000)
    owner: str = Field(default="", max_length=200)

    @field_validator("join_keys", mode="before")
    @classmethod
    def _keys(cls, value: object) -> object:
        # ``join_keys: [patient_id]`` is a string key; ``{name: .., dtype: ..}`` for others.
        if isinstance(value, list | tuple):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.join_keys)


# -- feature views --------------------------------------------------------------------------


class Feature(_Frozen):
    """One feature of a view: its column in the source, type, unit and meaning."""

    name: Name
    dtype: DType = "float64"
    unit: str | None = Field(default=None, max_length=64)
    description: str = Field(default="", max_length=2000)


class FileSource(_Frozen):
    """A Parquet or CSV file (or a glob of them) the offline store reads."""

    kind: Literal["file"] = "file"
    path: str = Field(min_length=1, max_length=1000)
    format: Literal["parquet", "csv"] | None = None

    @property
    def file_format(self) -> Literal["parquet", "csv"]:
        if self.format is not None:
            return self.format
        return "csv" if self.path.lower().endswith((".csv", ".csv.gz")) else "parquet"


class DatasetSource(_Frozen):
    """A file inside a dataset version (``NAME@VERSION``), read through the datasets API."""

    kind: Literal["dataset"] = "dataset"
    dataset: str = Field(pattern=r"^[^@\s]+@(\d+|latest)$")
    file: str = Field(min_length=1, max_length=1000)


class PostgresSource(_Frozen):
    """A PostgreSQL table or query; the connection URL comes from the environment variable
    ``url_env`` at run time (never stored in a definition)."""

    kind: Literal["postgres"] = "postgres"
    url_env: str = Field(default="MEDOPS_FEATURES_POSTGRES_URL", pattern=r"^[A-Z][A-Z0-9_]*$")
    table: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_]\w*)?$")
    query: str | None = Field(default=None, max_length=20000)

    @model_validator(mode="after")
    def _one(self) -> PostgresSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("a postgres source has exactly one of table or query")
        return self


Source = Annotated[FileSource | DatasetSource | PostgresSource, Field(discriminator="kind")]


class FeatureView(_Frozen):
    """Features of one or more entities read from one source, each row valid from its event
    time for ``ttl``. Rows sharing an entity key and event time are corrections of each other:
    the one with the latest ``created_time`` wins, then the one later in the source."""

    name: Name
    entities: tuple[Name, ...] = Field(min_length=1, max_length=4)
    features: tuple[Feature, ...] = Field(min_length=1, max_length=500)
    source: Source
    event_time: str = Field(default="event_time", min_length=1, max_length=128)
    created_time: str | None = Field(default=None, max_length=128)
    ttl: timedelta | None = None
    description: str = Field(default="", max_length=2000)
    owner: str = Field(default="", max_length=200)

    @field_validator("ttl", mode="before")
    @classmethod
    def _ttl(cls, value: object) -> object:
        return parse_ttl(value)

    @field_validator("source", mode="before")
    @classmethod
    def _source_kind(cls, value: object) -> object:
        # ``source: {path: ...}`` needs no ``kind``: it follows from the keys given.
        if isinstance(value, dict) and "kind" not in value:
            kind = "file" if "path" in value else "dataset" if "dataset" in value else "postgres"
            return {"kind": kind, **value}
        return value

    @model_validator(mode="after")
    def _distinct(self) -> FeatureView:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("a feature view names each feature once")
        if self.ttl is not None and self.ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        return self

    def feature(self, name: str) -> Feature | None:
        return next((f for f in self.features if f.name == name), None)


# -- on-demand features ---------------------------------------------------------------------


class RequestValue(_Frozen):
    """A value the caller sends with the request (and the entity rows carry offline)."""

    name: Name
    dtype: DType = "float64"
    unit: str | None = Field(default=None, max_length=64)


class OnDemandFeature(_Frozen):
    """A feature computed at request time from request values and stored features by an
    expression (:mod:`medops.features.expressions`); the same evaluator runs offline and online.
    ``features`` maps each name the expression reads to a stored ``view:feature``."""

    name: Name
    dtype: Literal["float64", "int64", "bool"] = "float64"
    request: tuple[RequestValue, ...] = ()
    features: dict[Name, str] = Field(default_factory=dict)
    expression: str = Field(min_length=1, max_length=2000)
    unit: str | None = Field(default=None, max_length=64)
    description: str = Field(default="", max_length=2000)
    owner: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _check(self) -> OnDemandFeature:
        names = [r.name for r in self.request] + list(self.features)
        if len(set(names)) != len(names):
            raise ValueError("a request value and a feature input share a name")
        for ref in self.features.values():
            FeatureRef.parse(ref)
        # The evaluator needs numpy: imported here so the SDK's import stays light (a remote
        # `medops deploy status` loads no numerical library).
        from medops.features.expressions import ExpressionError, compile_expression

        try:
            compile_expression(self.expression, frozenset(names))
        except ExpressionError as exc:
            raise ValueError(f"expression: {exc}") from None
        return self


# -- references and services ----------------------------------------------------------------


class FeatureRef(_Frozen):
    """``view:feature`` (a stored feature) or ``on_demand:name`` (an on-demand feature)."""

    view: str
    feature: str

    @classmethod
    def parse(cls, text: str) -> FeatureRef:
        view, sep, feature = text.strip().partition(":")
        if not sep:
            view, feature = ON_DEMAND, view
        if not _NAME.match(view) or not _NAME.match(feature):
            raise ValueError(f"{text!r} is not a feature reference (view:feature)")
        return cls(view=view, feature=feature)

    @property
    def on_demand(self) -> bool:
        return self.view == ON_DEMAND

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"


def parse_refs(refs: Sequence[str] | str) -> tuple[FeatureRef, ...]:
    """References from a list or a comma-separated string (``vitals:hr,labs:creatinine``)."""
    items = refs.split(",") if isinstance(refs, str) else list(refs)
    return tuple(FeatureRef.parse(r) for r in items if r.strip())


class FeatureService(_Frozen):
    """A named list of features a model uses (stored and on-demand)."""

    name: Name
    features: tuple[str, ...] = Field(min_length=1, max_length=1000)
    description: str = Field(default="", max_length=2000)
    owner: str = Field(default="", max_length=200)

    @field_validator("features")
    @classmethod
    def _refs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(FeatureRef.parse(v)) for v in value)


# -- the repository -------------------------------------------------------------------------


class FeatureRepo(_Frozen):
    """All definitions of a ``features.yaml``: checked for consistency as a whole (every view's
    entities exist, every reference names a known feature)."""

    entities: tuple[Entity, ...] = ()
    feature_views: tuple[FeatureView, ...] = ()
    on_demand_features: tuple[OnDemandFeature, ...] = ()
    feature_services: tuple[FeatureService, ...] = ()

    @classmethod
    def from_yaml(cls, text: str) -> FeatureRepo:
        """Definitions from YAML text (safe loader; keys as in this model)."""
        import yaml

        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError("features.yaml must be a mapping")
        return cls.model_validate(data)

    @model_validator(mode="after")
    def _consistent(self) -> FeatureRepo:
        for kind, items in (
            ("entity", self.entities),
            ("feature view", self.feature_views),
            ("on-demand feature", self.on_demand_features),
            ("feature service", self.feature_services),
        ):
            names = [i.name for i in items]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{kind} defined twice: {', '.join(dup)}")
        entities = {e.name for e in self.entities}
        for view in self.feature_views:
            missing = [e for e in view.entities if e not in entities]
            if missing:
                raise ValueError(f"feature view {view.name}: unknown entity {missing[0]}")
        for odf in self.on_demand_features:
            for ref in odf.features.values():
                self._known(FeatureRef.parse(ref), f"on-demand feature {odf.name}")
        for service in self.feature_services:
            for ref in service.features:
                self._known(FeatureRef.parse(ref), f"feature service {service.name}")
        return self

    def _known(self, ref: FeatureRef, where: str) -> None:
        if ref.on_demand:
            if self.on_demand(ref.feature) is None:
                raise ValueError(f"{where}: no on-demand feature {ref.feature}")
            return
        view = self.view(ref.view)
        if view is None or view.feature(ref.feature) is None:
            raise ValueError(f"{where}: no feature {ref}")

    def entity(self, name: str) -> Entity | None:
        return next((e for e in self.entities if e.name == name), None)

    def view(self, name: str) -> FeatureView | None:
        return next((v for v in self.feature_views if v.name == name), None)

    def on_demand(self, name: str) -> OnDemandFeature | None:
        return next((o for o in self.on_demand_features if o.name == name), None)

    def service(self, name: str) -> FeatureService | None:
        return next((s for s in self.feature_services if s.name == name), None)

    def definitions(self) -> list[tuple[DefinitionKind, BaseModel]]:
        """Every definition with its kind, in a stable order."""
        out: list[tuple[DefinitionKind, BaseModel]] = []
        out += [("entity", e) for e in self.entities]
        out += [("feature_view", v) for v in self.feature_views]
        out += [("on_demand_feature", o) for o in self.on_demand_features]
        out += [("feature_service", s) for s in self.feature_services]
        return out

    def view_keys(self, view: FeatureView) -> tuple[JoinKey, ...]:
        """The join keys of a view: its entities' keys in order."""
        keys: list[JoinKey] = []
        for name in view.entities:
            entity = self.entity(name)
            if entity is not None:
                keys += entity.join_keys
        return tuple(keys)


def definition_digest(spec: BaseModel) -> str:
    """The SHA-256 of a definition's canonical JSON: equal specs, equal digests."""
    return "sha256:" + hashlib.sha256(canonical_bytes(spec.model_dump(mode="json"))).hexdigest()


# -- what the registry answers ---------------------------------------------------------------


class DefinitionOut(_Frozen):
    """One version of a registered definition."""

    kind: DefinitionKind
    name: str
    version: int
    digest: str
    owner: str
    description: str
    spec: dict[str, Any]
    created_at: datetime
    created_by: str


class ApplyIn(_Frozen):
    """What ``features apply`` sends: the repository, checked again on the server."""

    repo: FeatureRepo


class ApplyOut(_Frozen):
    """What changed: definitions given a new version, and those already registered as is."""

    created: tuple[DefinitionOut, ...]
    unchanged: tuple[DefinitionOut, ...]


class RegisteredRepo(_Frozen):
    """The newest version of every registered definition as one repository, and the version
    of each (``kind:name`` -> version): what a training set is built from."""

    repo: FeatureRepo
    versions: dict[str, int]


class TrainingSetRecordIn(_Frozen):
    """Record that a dataset version is a training set built from these features (as of the
    definition versions the builder read): lineage edges from each view version."""

    dataset: str = Field(pattern=r"^[^@\s]+@\d+$")
    features: tuple[str, ...] = Field(min_length=1, max_length=1000)
    definitions: dict[str, VersionNumber] = Field(default_factory=dict)  # "kind:name" -> version
    entity_rows: int = Field(ge=0, le=INT64_MAX)
    rows_with_all_values: int = Field(ge=0, le=INT64_MAX)

    @field_validator("features")
    @classmethod
    def _references(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            FeatureRef.parse(text)  # a ValueError here is a 422 naming the field
        return value


class TrainingSetRecordOut(_Frozen):
    dataset: str
    dataset_version_id: str
    edges: int


class TrainingSetSummary(_Frozen):
    """What a point-in-time join produced: how many rows, and how many values each feature
    lacks (no row at or before the time within the TTL)."""

    rows: int
    features: tuple[str, ...]
    missing: dict[str, int]
    rows_with_all_values: int
    seconds: float


class TrainingSetOut(_Frozen):
    """What ``features training-set`` did: the join's summary, the file written and, when
    asked, the dataset version it became with its lineage."""

    summary: TrainingSetSummary
    out: str
    recorded: TrainingSetRecordOut | None = None


# -- the online lookup contract (implemented by medops.features.online) ---------------------

EntityKey = tuple[str | int, ...]  # the join-key values, in the view's join-key order
Value = float | Int64 | str | bool | None


class OnlineRow(_Frozen):
    """The latest values of one view for one entity key, with the event (and created) time of
    the row they come from: what a materialization wrote and a lookup answers."""

    view: str
    key: EntityKey
    values: dict[str, Value]
    event_time: datetime
    created_time: datetime | None = None


class OnlineLookup(Protocol):
    """The latest value per (view, entity key), with its event time. ``None`` where the store
    holds nothing for a key; a stale row is returned as is (the caller applies the TTL with
    :func:`is_fresh`, so a policy can report staleness instead of hiding it)."""

    def read(
        self, view: str, keys: Sequence[EntityKey], features: Sequence[str]
    ) -> list[OnlineRow | None]: ...


def is_fresh(row: OnlineRow, ttl: timedelta | None, at: datetime) -> bool:
    """Whether ``row`` is usable at ``at``: not from the future and within the view's TTL
    (inclusive, as the offline join treats the edge)."""
    if row.event_time > at:
        return False
    return ttl is None or at - row.event_time <= ttl
