"""Walking the lineage graph over the tables that hold each fact once.

Nodes are ``kind:id``: ``dataset_version:<id>``, ``model_version:<id>``,
``alias:<model>@<alias>`` and ``deployment:<name>``. The edges come from four places:
``lineage_edges`` (a dataset version used to make a dataset or model version),
``dataset_versions.derived_from`` (a derived version names its parent), ``model_versions.
parent_id`` (a quantized version) and serving's own tables (aliases, deployments with their
canary and shadow). Nothing is copied: a deployment moved to another version shows at once.

One ``Walker`` answers for one session; it caches the rows it reads, so a wide graph costs
one query per node and direction, not per edge.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from medops.datasets.tables import DatasetVersion
from medops.features.tables import FeatureDefinition
from medops.lineage.schemas import LineageEdgeOut, LineageNode
from medops.lineage.tables import LineageEdge
from medops.registry.tables import ModelAlias, ModelVersion, RegisteredModel
from medops.serving.tables import Deployment

DV, MV, ALIAS, DEP = "dataset_version", "model_version", "alias", "deployment"
FEATURE = "feature_definition"  # a version of a feature store definition (features/tables.py)


def key(kind: str, ident: str) -> str:
    """The node key of ``kind`` and ``ident``."""
    return f"{kind}:{ident}"


def split(node: str) -> tuple[str, str]:
    """``(kind, ident)`` of a node key."""
    kind, _, ident = node.partition(":")
    return kind, ident


@dataclass(frozen=True)
class Step:
    """One edge met while walking: ``source`` -> ``target`` as ``relation``."""

    source: str
    target: str
    relation: str


@dataclass
class Walker:
    """Reads nodes and their neighbours from one session."""

    session: Session
    _dv: dict[str, DatasetVersion | None] = field(default_factory=dict)
    _mv: dict[str, tuple[ModelVersion, str] | None] = field(default_factory=dict)
    _dep: dict[str, Deployment | None] = field(default_factory=dict)

    # -- rows -------------------------------------------------------------------------------

    def dataset_version(self, ident: str) -> DatasetVersion | None:
        if ident not in self._dv:
            self._dv[ident] = self.session.get(DatasetVersion, ident)
        return self._dv[ident]

    def model_version(self, ident: str) -> tuple[ModelVersion, str] | None:
        """The version row and its model's name."""
        if ident not in self._mv:
            row = self.session.get(ModelVersion, ident)
            model = self.session.get(RegisteredModel, row.model_id) if row else None
            self._mv[ident] = (row, model.name) if row and model else None
        return self._mv[ident]

    def deployment(self, name: str) -> Deployment | None:
        if name not in self._dep:
            self._dep[name] = self.session.scalars(
                select(Deployment).where(Deployment.name == name)
            ).first()
        return self._dep[name]

    def version_number(self, model_id: str, number: int) -> str | None:
        """The id of ``model_id``'s version ``number``."""
        return self.session.scalars(
            select(ModelVersion.id).where(
                ModelVersion.model_id == model_id, ModelVersion.version == number
            )
        ).first()

    def alias_version(self, model_id: str, alias: str) -> str | None:
        """The version id an alias points at now (None: the alias is not set)."""
        row = self.session.get(ModelAlias, (model_id, alias))
        return row.version_id if row else None

    # -- nodes ------------------------------------------------------------------------------

    def node(self, node: str) -> LineageNode:
        """How ``node`` is shown."""
        kind, ident = split(node)
        if kind == DV:
            dv = self.dataset_version(ident)
            if dv is None:
                return LineageNode(key=node, kind="dataset_version", label=ident, deleted=True)
            return LineageNode(
                key=node,
                kind="dataset_version",
                label=f"{dv.dataset}@{dv.number}",
                deleted=dv.deleted_at is not None,
                detail=f"{dv.file_count} files, {dv.total_bytes} bytes"
                + (f", {dv.derivation}" if dv.derivation else ""),
                href=f"/datasets/{dv.dataset}/{dv.number}",
            )
        if kind == MV:
            found = self.model_version(ident)
            if found is None:
                return LineageNode(key=node, kind="model_version", label=ident, deleted=True)
            row, name = found
            return LineageNode(
                key=node,
                kind="model_version",
                label=f"{name}/{row.version}",
                detail=row.framework,
                href=f"/models/{name}/versions/{row.version}",
            )
        if kind == ALIAS:
            model_id, _, alias = ident.partition("@")
            model = self.session.get(RegisteredModel, model_id)
            name = model.name if model else model_id
            return LineageNode(
                key=node, kind="alias", label=f"{name}@{alias}", href=f"/models/{name}"
            )
        return self._other_node(node, kind, ident)

    def _other_node(self, node: str, kind: str, ident: str) -> LineageNode:
        """A feature definition's version, else a deployment."""
        if kind == FEATURE:
            return self._feature_node(node, ident)
        dep = self.deployment(ident)
        return LineageNode(
            key=node,
            kind="deployment",
            label=ident,
            deleted=dep is None,
            detail=_routing(dep) if dep else None,
            href=f"/deployments/{ident}",
        )

    def _feature_node(self, node: str, ident: str) -> LineageNode:
        found = self.session.get(FeatureDefinition, int(ident)) if ident.isdigit() else None
        if found is None:
            return LineageNode(key=node, kind=FEATURE, label=ident, deleted=True)
        return LineageNode(
            key=node,
            kind=FEATURE,
            label=f"{found.name} v{found.version}",
            detail=found.kind.replace("_", " "),
        )

    # -- neighbours -------------------------------------------------------------------------

    def upstream(self, node: str) -> list[Step]:
        """The edges into ``node``."""
        kind, ident = split(node)
        steps = [
            Step(key(e.source_kind, e.source_id), node, e.relation)
            for e in self.session.scalars(
                select(LineageEdge)
                .where(LineageEdge.target_kind == kind, LineageEdge.target_id == ident)
                .order_by(LineageEdge.id)
            )
        ]
        if kind == DV:
            dv = self.dataset_version(ident)
            if dv is not None and dv.derived_from:
                steps.append(Step(key(DV, dv.derived_from), node, dv.derivation or "derived"))
        elif kind == MV:
            found = self.model_version(ident)
            if found is not None and found[0].parent_id:
                steps.append(Step(key(MV, found[0].parent_id), node, "quantized"))
        elif kind == ALIAS:
            model_id, _, alias = ident.partition("@")
            target = self.alias_version(model_id, alias)
            if target:
                steps.append(Step(key(MV, target), node, "alias"))
        elif kind == DEP:
            steps.extend(self._serving_sources(ident))
        return _unique(steps)

    def downstream(self, node: str) -> list[Step]:
        """The edges out of ``node``."""
        kind, ident = split(node)
        steps = [
            Step(node, key(e.target_kind, e.target_id), e.relation)
            for e in self.session.scalars(
                select(LineageEdge)
                .where(LineageEdge.source_kind == kind, LineageEdge.source_id == ident)
                .order_by(LineageEdge.id)
            )
        ]
        if kind == DV:
            for child in self.session.scalars(
                select(DatasetVersion)
                .where(DatasetVersion.derived_from == ident)
                .order_by(DatasetVersion.dataset, DatasetVersion.number)
            ):
                self._dv[child.id] = child
                steps.append(Step(node, key(DV, child.id), child.derivation or "derived"))
        elif kind == MV:
            steps.extend(self._model_downstream(node, ident))
        elif kind == ALIAS:
            model_id, _, alias = ident.partition("@")
            for dep in self.session.scalars(
                select(Deployment)
                .where(Deployment.model_id == model_id, Deployment.alias == alias)
                .order_by(Deployment.name)
            ):
                self._dep[dep.name] = dep
                steps.append(Step(node, key(DEP, dep.name), "serves"))
        return _unique(steps)

    def _model_downstream(self, node: str, ident: str) -> list[Step]:
        found = self.model_version(ident)
        if found is None:
            return []
        row, _ = found
        steps = [
            Step(node, key(MV, child), "quantized")
            for child in self.session.scalars(
                select(ModelVersion.id).where(ModelVersion.parent_id == ident)
            )
        ]
        for alias in self.session.scalars(
            select(ModelAlias.alias)
            .where(ModelAlias.version_id == ident)
            .order_by(ModelAlias.alias)
        ):
            steps.append(Step(node, key(ALIAS, f"{row.model_id}@{alias}"), "alias"))
        for dep in self.session.scalars(
            select(Deployment).where(Deployment.model_id == row.model_id).order_by(Deployment.name)
        ):
            self._dep[dep.name] = dep
            if dep.alias is None and dep.version == row.version:
                steps.append(Step(node, key(DEP, dep.name), "serves"))
            if dep.canary_version == row.version:
                steps.append(Step(node, key(DEP, dep.name), "canary"))
            if dep.shadow_version == row.version:
                steps.append(Step(node, key(DEP, dep.name), "shadow"))
        return steps

    def _serving_sources(self, name: str) -> list[Step]:
        dep = self.deployment(name)
        if dep is None:
            return []
        node = key(DEP, name)
        steps = []
        if dep.alias is not None:
            steps.append(Step(key(ALIAS, f"{dep.model_id}@{dep.alias}"), node, "serves"))
        elif dep.version is not None:
            pinned = self.version_number(dep.model_id, dep.version)
            if pinned:
                steps.append(Step(key(MV, pinned), node, "serves"))
        for number, relation in ((dep.canary_version, "canary"), (dep.shadow_version, "shadow")):
            if number is not None:
                other = self.version_number(dep.model_id, number)
                if other:
                    steps.append(Step(key(MV, other), node, relation))
        return steps


def _routing(dep: Deployment) -> str:
    primary = f"@{dep.alias}" if dep.alias else f"v{dep.version}"
    parts = [f"{dep.model_name}{primary}"]
    if dep.canary_version is not None:
        parts.append(f"canary v{dep.canary_version} {dep.canary_percent}%")
    if dep.shadow_version is not None:
        parts.append(f"shadow v{dep.shadow_version}")
    return ", ".join(parts)


def _unique(steps: Iterable[Step]) -> list[Step]:
    return list(dict.fromkeys(steps))


def walk(start: str, neighbours: Callable[[str], list[Step]], *, limit: int = 2000) -> list[Step]:
    """Every edge reachable from ``start`` through ``neighbours`` (breadth first; a node is
    expanded once, so cycles end; at most ``limit`` nodes)."""
    seen = {start}
    queue = deque([start])
    found: list[Step] = []
    while queue and len(seen) <= limit:
        node = queue.popleft()
        for step in neighbours(node):
            found.append(step)
            nxt = step.source if step.target == node else step.target
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return _unique(found)


def edge_out(step: Step) -> LineageEdgeOut:
    """The API shape of an edge."""
    return LineageEdgeOut(source=step.source, target=step.target, relation=step.relation)
