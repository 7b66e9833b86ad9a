"""What a deployment declares to serve from feature views, and the online side's answers
(materialization runs, lookups, skew checks), as typed pydantic models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medops.bounds import INT32_MAX, Int64
from medops.features.schemas import FeatureRef, FeatureRepo, Value

Policy = Literal["reject", "impute"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureBindingSpec(_Frozen):
    """How a deployment's model gets its inputs: ``inputs`` maps a model input to a stored
    feature (``view:feature``) or an on-demand feature (``on_demand:name``); every other model
    input is a request value the caller sends. ``repo`` pins the definitions used (views,
    their entities, on-demand features), so a later change of a definition never changes what
    a deployment serves until it is bound again. A missing value (no row for the entity) or a
    stale one (older than the view's TTL) is refused with a 422 (``reject``) or replaced by
    ``impute[input]`` and flagged in the answer and the prediction log (``impute``)."""

    repo: FeatureRepo
    inputs: dict[str, str] = Field(min_length=1, max_length=1000)
    policy: Policy = "reject"
    impute: dict[str, Value] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> FeatureBindingSpec:
        for model_input, text in self.inputs.items():
            ref = FeatureRef.parse(text)
            if ref.on_demand:
                if self.repo.on_demand(ref.feature) is None:
                    raise ValueError(f"inputs.{model_input}: no on-demand feature {ref.feature}")
            else:
                view = self.repo.view(ref.view)
                if view is None or view.feature(ref.feature) is None:
                    raise ValueError(f"inputs.{model_input}: no feature {ref}")
        unknown = sorted(set(self.impute) - set(self.inputs))
        if unknown:
            raise ValueError(f"impute.{unknown[0]}: not an input served from the feature store")
        if self.policy == "impute":
            lacking = sorted(set(self.inputs) - set(self.impute))
            if lacking:
                raise ValueError(f"impute.{lacking[0]}: the impute policy needs a value for it")
        return self


class FeatureBindingIn(_Frozen):
    """The body of ``PUT /v1/deployments/{name}/features``."""

    spec: FeatureBindingSpec


class FeatureBindingOut(_Frozen):
    deployment: str
    spec: FeatureBindingSpec
    digest: str
    revision: int
    request_fields: tuple[str, ...]  # what a prediction request's record carries now
    updated_at: datetime
    updated_by: str


class MaterializeIn(_Frozen):
    """Which views to materialize (none: every view a deployment serves from); ``full``
    re-reads each source from the start instead of after the watermark."""

    views: tuple[str, ...] = ()
    full: bool = False
    repo: FeatureRepo | None = None  # definitions to use (else the bound deployments')


class MaterializeRun(_Frozen):
    """What one view's materialization did."""

    view: str
    rows_read: int
    rows_written: int
    entities: int
    watermark_before: datetime | None
    watermark_after: datetime | None
    seconds: float


class MaterializeOut(_Frozen):
    store: str
    runs: tuple[MaterializeRun, ...]


class MaterializationState(_Frozen):
    view: str
    store: str
    definition_digest: str
    watermark: datetime | None
    runs: int
    rows_read: int
    rows_written: int
    seconds: float
    updated_at: datetime


class OnlineLookupIn(_Frozen):
    """The body of ``POST /v1/features/online``: an entity's keys (in the body, never in a
    URL, since they are patient identifiers) and the features to read (``view:feature`` or a
    whole ``view``)."""

    entity: dict[str, str | Int64] = Field(min_length=1, max_length=8)
    features: tuple[str, ...] = Field(min_length=1, max_length=1000)


class OnlineValue(_Frozen):
    view: str
    feature: str
    value: Value
    event_time: datetime | None
    fresh: bool


class OnlineLookupOut(_Frozen):
    """``medops features get``: the stored values of an entity, with their event times."""

    entity: dict[str, str | int]
    values: tuple[OnlineValue, ...]


class OnlineSkewIn(_Frozen):
    """The body of ``POST /v1/features/skew/online``: the view, how many entities to sample."""

    view: str
    sample: int = Field(default=200, ge=1, le=100_000)
    seed: int = Field(default=0, ge=0, le=INT32_MAX)


class ServedSkewIn(_Frozen):
    """The body of ``POST /v1/features/skew/served``: the training set's values per model input
    (a sample, read on the caller's side), compared with what the deployment served since
    ``since`` (default: everything logged)."""

    deployment: str = Field(min_length=1, max_length=64)
    training: dict[str, list[float | None]] = Field(min_length=1, max_length=1000)
    since: datetime | None = None
    at_most: int = Field(default=100_000, ge=1, le=1_000_000)


class ServedFeatureSkew(_Frozen):
    """One input: the drift tests (monitoring's) of served values against the training set."""

    feature: str
    training_rows: int
    served_rows: int
    drifted: bool
    tests: tuple[dict[str, object], ...]


class ServedSkewOut(_Frozen):
    deployment: str
    served_rows: int
    features: tuple[ServedFeatureSkew, ...]
    drifted: tuple[str, ...]


class SkewFeature(_Frozen):
    """One feature's online-vs-offline comparison over the sampled entities."""

    feature: str
    compared: int
    equal: int
    online_only: int  # the online store had a value the offline join did not give
    offline_only: int
    max_abs_difference: float | None


class SkewCheckOut(_Frozen):
    """For sampled entities, the online values against what the offline store gives at the
    same time (the point-in-time join at each row's read time)."""

    view: str
    sampled: int
    at: datetime
    features: tuple[SkewFeature, ...]
    consistent: bool
