"""The shapes of lineage: node references (``data:NAME@V``, ``model:NAME/V``,
``deployment:NAME``), the graph around a node, and the impact of a dataset version.

Pure pydantic, no I/O: the SDK and the CLI parse references without importing SQLAlchemy.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from medops.errors import FieldError, InvalidInputError

NodeKind = Literal[
    "dataset_version", "model_version", "alias", "deployment", "feature_definition"
]  # fmt: skip
# What a dataset version was used for, or how one was made from another.
Relation = Literal[
    "derived", "deidentify", "split", "training", "validation", "reference", "quantized",
    "alias", "serves", "canary", "shadow", "features",
]  # fmt: skip
EDGE_RELATIONS = ("derived", "deidentify", "split", "training", "validation", "reference")
Arm = Literal["primary", "canary", "shadow"]

_DATA_VERSION = re.compile(r"^(\d+|latest|sha256:[0-9a-f]{8,64})$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeRef(_Frozen):
    """A node to start from: its kind and its reference as a person types it."""

    kind: Literal["dataset", "model", "deployment"]
    ref: str

    @classmethod
    def parse(cls, text: str, *, field: str = "ref") -> NodeRef:
        """``data:NAME@V`` / ``NAME@V`` (V a number, ``latest`` or a root prefix) for a
        dataset version; ``model:NAME/V``, ``model:NAME@ALIAS`` or ``NAME/V`` for a model
        version; ``deployment:NAME`` for a deployment."""
        raw = text.strip()
        prefix, sep, rest = raw.partition(":")
        if sep and prefix in {"data", "dataset", "model", "deployment"}:
            kind = {"data": "dataset", "dataset": "dataset"}.get(prefix, prefix)
            if not rest:
                reason = f"nothing after {prefix}:"
                raise InvalidInputError(reason, errors=[FieldError(field, reason)])
            return cls(kind=kind, ref=rest)
        if "/" in raw:
            return cls(kind="model", ref=raw)
        _name, at, version = raw.partition("@")
        if at and _DATA_VERSION.match(version):
            return cls(kind="dataset", ref=raw)
        if at:
            return cls(kind="model", ref=raw)
        reason = (
            f"{raw!r} is not a lineage reference: use data:NAME@VERSION, model:NAME/VERSION "
            "(or NAME@ALIAS) or deployment:NAME"
        )
        raise InvalidInputError(reason, errors=[FieldError(field, reason)])

    def __str__(self) -> str:
        return f"{'data' if self.kind == 'dataset' else self.kind}:{self.ref}"


class EdgeIn(_Frozen):
    """A recorded edge: ``source`` dataset version was used to make ``target``."""

    source_kind: Literal["dataset_version"] = "dataset_version"
    source_id: str = Field(min_length=1, max_length=64)
    target_kind: Literal["dataset_version", "model_version"]
    target_id: str = Field(min_length=1, max_length=64)
    relation: Literal["derived", "deidentify", "split", "training", "validation", "reference"]


class LineageNode(_Frozen):
    """One node of the graph: ``key`` is ``kind:id``; ``label`` how people name it."""

    key: str
    kind: NodeKind
    label: str  # NAME@N, NAME/V, NAME@alias, deployment NAME
    deleted: bool = False
    detail: str | None = None  # what to know at a glance (files, status, routing)
    href: str | None = None  # the console page of the node


class LineageEdgeOut(_Frozen):
    """``source`` -> ``target`` as ``relation``."""

    source: str
    target: str
    relation: str


class LineageGraph(_Frozen):
    """The graph around one node: everything upstream (what it was made from) and
    downstream (what was made from it and where it serves)."""

    root: str  # the key of the node asked about
    nodes: list[LineageNode]
    edges: list[LineageEdgeOut]
    upstream: list[str]  # keys
    downstream: list[str]  # keys


class ImpactServing(_Frozen):
    """A deployment serving an affected model version, and how."""

    deployment: str
    model: str
    version: int
    arm: Arm
    via_alias: str | None  # the alias the deployment follows, if it does
    serving_now: bool
    canary_percent: int | None
    predictions: int  # logged for this deployment and version (shadow ones included)
    last_prediction_at: datetime | None
    windows: int  # monitoring windows computed for this deployment and version
    drifted_windows: int
    last_window_verdict: str | None


class ImpactModel(_Frozen):
    """An affected model version, with the path from the dataset version to it."""

    model: str
    version: int
    ref: str  # NAME/V
    relation: str  # how the nearest dataset version was used: training, validation, ...
    path: list[str]  # labels from the dataset version to this model version
    aliases: list[str]
    serving: list[ImpactServing]


class ImpactReport(_Frozen):
    """What a dataset version reaches downstream: derived dataset versions, every model
    version trained, validated or referenced on it (or on what was derived from it), the
    aliases and deployments serving those, predictions and monitoring windows."""

    dataset: str  # NAME@N
    dataset_version_id: str
    root: str
    derived: list[str]  # NAME@N of derived dataset versions, nearest first
    models: list[ImpactModel]
    deployments: list[str]  # names of the deployments serving any affected version
    serving_now: bool  # is any affected version serving patients now
    predictions: int
    windows: int


class SendSummary(_Frozen):
    """One pass of the OpenLineage outbox."""

    sent: int
    failed: int
    pending: int
    target: str | None  # where they went (None: no MEDOPS_OPENLINEAGE_URL)
