"""Lineage's use cases: record an edge, show the graph around a dataset version, a model
version or a deployment, the impact of a dataset version, the edges the registry's pins make,
the OpenLineage events of what happened, and sending them.

Reads are not audited (lineage holds no patient data; the routes need ``lineage:read``);
recording an edge by hand is, with what it links.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as SQLAlchemyIntegrityError
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService, exempt_from_audit_guard
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.config import Settings
from medops.context import Context
from medops.datasets.schemas import DatasetRef
from medops.datasets.tables import DatasetVersion
from medops.db.engine import Database
from medops.errors import FieldError, NotFoundError
from medops.lineage import openlineage as ol
from medops.lineage import outbox
from medops.lineage.graph import DEP, DV, MV, Step, Walker, edge_out, key, split, walk
from medops.lineage.impact import impact_model
from medops.lineage.schemas import (
    EdgeIn,
    ImpactReport,
    LineageEdgeOut,
    LineageGraph,
    NodeRef,
    SendSummary,
)
from medops.lineage.tables import LineageEdge, LineageEvent
from medops.registry.pins import Pin, Registered, find_dataset
from medops.registry.refs import parse_ref
from medops.registry.store import resolve
from medops.registry.tables import ModelVersion
from medops.serving.tables import Deployment

# How far before the newest dataset event a sweep looks again for versions without events.
SWEEP_MARGIN = timedelta(minutes=10)


def _missing(what: str, field: str = "ref") -> NotFoundError:
    return NotFoundError(f"no {what}", errors=[FieldError(field, f"no {what}")])


class LineageService:
    """The lineage graph over the tables of datasets, registry, serving and monitoring."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService, settings: Settings):
        self._db = db
        self._clock = clock
        self._audit = audit
        self._settings = settings

    # -- recording --------------------------------------------------------------------------

    def record(self, ctx: Context, edge: EdgeIn) -> LineageEdgeOut:
        """Record that a dataset version was used to make another dataset version or a model
        version (idempotent: the same edge twice is one edge); audited ``lineage.record``."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            walker = Walker(session)
            if walker.dataset_version(edge.source_id) is None:
                raise _missing(f"dataset version {edge.source_id}", "source_id")
            exists = (
                walker.dataset_version(edge.target_id)
                if edge.target_kind == DV
                else walker.model_version(edge.target_id)
            )
            if exists is None:
                raise _missing(f"{edge.target_kind} {edge.target_id}", "target_id")
            if not self._exists(session, edge):
                self._audit.record(
                    session,
                    ctx,
                    AuditEntry(
                        action="lineage.record",
                        resource_type=edge.target_kind,
                        resource_id=edge.target_id,
                        details={"after": edge.model_dump()},
                    ),
                )
                self.record_in(session, edge, actor.username)
        return LineageEdgeOut(
            source=key(DV, edge.source_id),
            target=key(edge.target_kind, edge.target_id),
            relation=edge.relation,
        )

    @staticmethod
    def _exists(session: Session, edge: EdgeIn) -> bool:
        return (
            session.scalars(
                select(LineageEdge.id).where(
                    LineageEdge.source_kind == edge.source_kind,
                    LineageEdge.source_id == edge.source_id,
                    LineageEdge.target_kind == edge.target_kind,
                    LineageEdge.target_id == edge.target_id,
                    LineageEdge.relation == edge.relation,
                )
            ).first()
            is not None
        )

    def record_in(self, session: Session, edge: EdgeIn, actor: str) -> bool:
        """Add ``edge`` in the caller's transaction; False when it was already there."""
        if self._exists(session, edge):
            return False
        session.add(
            LineageEdge(**edge.model_dump(), created_at=self._clock.now(), created_by=actor)
        )
        try:
            with session.begin_nested():
                session.flush()
        except SQLAlchemyIntegrityError:  # recorded concurrently: the same edge
            return False
        return True

    def on_registered(self, session: Session, registered: Registered, pins: list[Pin]) -> None:
        """The registry's pin hook: an edge per pinned dataset version, and the
        ``medops.models.register`` run events, in the registration's transaction."""
        for p in pins:
            self.record_in(
                session,
                EdgeIn(
                    target_kind="model_version",
                    source_id=p.version_id,
                    target_id=registered.version_id,
                    relation=p.role,
                ),
                registered.actor,
            )
        self.emit_model_registered(session, registered.version_id)

    def dependants(self, version_id: str) -> list[str]:
        """The model versions (``NAME/V``) that pinned dataset version ``version_id``: the
        retention rule's question (DatasetService refuses to delete while any remain)."""
        with self._db.session() as session:
            walker = Walker(session)
            found = []
            for target in session.scalars(
                select(LineageEdge.target_id).where(
                    LineageEdge.source_kind == DV,
                    LineageEdge.source_id == version_id,
                    LineageEdge.target_kind == MV,
                )
            ):
                model = walker.model_version(target)
                if model is not None:
                    found.append(f"{model[1]}/{model[0].version}")
            return sorted(set(found))

    # -- OpenLineage ------------------------------------------------------------------------

    def _ns(self, kind: str) -> str:
        base = self._settings.public_url or self._settings.url or "localhost"
        return ol.namespace(base, kind)

    def _dataset_node(self, dv: DatasetVersion) -> ol.Node:
        return ol.Node(
            self._ns("datasets"),
            f"{dv.dataset}@{dv.number}",
            dv.root,
            _columns(dv.contents),
        )

    def _model_node(self, session: Session, version_id: str) -> ol.Node | None:
        found = Walker(session).model_version(version_id)
        if found is None:
            return None
        row, name = found
        signature = json.loads(row.signature)
        fields = [(f["name"], f["type"]) for f in signature.get("inputs", [])]
        return ol.Node(
            self._ns("models"), f"{name}/{row.version}", "sha256:" + row.artifact_digest, fields
        )

    def emit_dataset_added(self, session: Session, version_id: str) -> None:
        """Run events for a dataset version just committed (in the caller's transaction):
        ``medops.data.add``, or ``medops.data.<derivation>`` with the parent as input."""
        dv = session.get(DatasetVersion, version_id)
        if dv is None:
            return
        inputs: list[ol.Node] = []
        job = "medops.data.add"
        if dv.derived_from:
            parent = session.get(DatasetVersion, dv.derived_from)
            if parent is not None:
                inputs.append(self._dataset_node(parent))
            job = f"medops.data.{dv.derivation or 'derive'}"
        self._emit(session, job, (dv.id,), dv.created_at, inputs, [self._dataset_node(dv)])

    def emit_model_registered(self, session: Session, version_id: str) -> None:
        """``medops.models.register``: inputs the pinned dataset versions, output the model
        version (its features as the schema facet, its artifact digest as the version)."""
        output = self._model_node(session, version_id)
        if output is None:
            return
        inputs = []
        for source in session.scalars(
            select(LineageEdge.source_id)
            .where(LineageEdge.target_kind == MV, LineageEdge.target_id == version_id)
            .order_by(LineageEdge.id)
        ):
            dv = session.get(DatasetVersion, source)
            if dv is not None:
                inputs.append(self._dataset_node(dv))
        row = session.get(ModelVersion, version_id)
        assert row is not None
        self._emit(session, "medops.models.register", (version_id,), row.created_at, inputs,
                   [output])  # fmt: skip

    def emit_deployment_changed(self, session: Session, name: str) -> None:
        """``medops.deploy``: inputs the model versions the deployment routes to now, output
        the deployment (its revision as the version)."""
        dep = session.scalars(select(Deployment).where(Deployment.name == name)).first()
        if dep is None:
            return
        walker = Walker(session)
        inputs = []
        for step in walker.upstream(key(DEP, name)):
            kind, ident = split(step.source)
            if kind != MV:  # an alias: the version it points at now
                ident = next((split(s.source)[1] for s in walker.upstream(step.source)), "")
            node = self._model_node(session, ident) if ident else None
            if node is not None:
                inputs.append(node)
        output = ol.Node(self._ns("deployments"), name, f"revision {dep.revision}")
        self._emit(session, "medops.deploy", (name, str(dep.revision)), dep.updated_at, inputs,
                   [output])  # fmt: skip

    def _emit(
        self,
        session: Session,
        job: str,
        identity: Sequence[str],
        when: datetime,
        inputs: Sequence[ol.Node],
        outputs: Sequence[ol.Node],
    ) -> None:
        events = ol.run_events(
            job=job,
            job_namespace=self._ns("jobs"),
            identity=identity,
            started=when,
            finished=when,
            inputs=inputs,
            outputs=outputs,
        )
        outbox.enqueue(session, events, self._clock.now())

    def sweep_deployments(self) -> int:
        """Emit ``medops.deploy`` for each deployment whose current revision has no event
        yet (serving records its changes in its own tables; this pass turns them into events
        without serving knowing of lineage). Returns how many deployments got events."""
        emitted = 0
        with self._db.transaction() as session:
            exempt_from_audit_guard(session)  # events of changes audited where they were made
            for name, revision in session.execute(
                select(Deployment.name, Deployment.revision).order_by(Deployment.name)
            ):
                rid = ol.run_id("medops.deploy", name, str(revision))
                seen = session.scalars(
                    select(LineageEvent.id)
                    .where(LineageEvent.event.contains(f'"runId":"{rid}"'))
                    .limit(1)
                ).first()
                if seen is None:
                    self.emit_deployment_changed(session, name)
                    emitted += 1
        return emitted

    def sweep_datasets(self) -> int:
        """Emit the add (or derivation) events of dataset versions that have none yet: the
        versions committed since the newest dataset event (less a margin for commits that
        finished out of order), each checked by its run id. Returns how many got events."""
        emitted = 0
        with self._db.transaction() as session:
            exempt_from_audit_guard(session)  # events of changes audited where they were made
            last = session.scalars(
                select(LineageEvent.event)
                .where(LineageEvent.event.contains('"name":"medops.data.'))
                .order_by(LineageEvent.id.desc())
                .limit(1)
            ).first()
            query = select(DatasetVersion).order_by(DatasetVersion.created_at, DatasetVersion.id)
            if last is not None:
                since = datetime.fromisoformat(json.loads(last)["eventTime"]) - SWEEP_MARGIN
                query = query.where(DatasetVersion.created_at >= since)
            for dv in session.scalars(query):
                job = (
                    f"medops.data.{dv.derivation or 'derive'}"
                    if dv.derived_from
                    else ("medops.data.add")
                )
                rid = ol.run_id(job, dv.id)
                seen = session.scalars(
                    select(LineageEvent.id)
                    .where(LineageEvent.event.contains(f'"runId":"{rid}"'))
                    .limit(1)
                ).first()
                if seen is None:
                    self.emit_dataset_added(session, dv.id)
                    emitted += 1
        return emitted

    def send(self, *, limit: int = 10_000) -> SendSummary:
        """Send the waiting events to MEDOPS_OPENLINEAGE_URL (none set: nothing is sent),
        after adding the events of dataset versions and deployments that have none yet."""
        if self._settings.openlineage_url:
            self.sweep_datasets()
            self.sweep_deployments()
        return outbox.send(self._db, self._clock, self._settings.openlineage_url, limit=limit)

    # -- reading ----------------------------------------------------------------------------

    def _resolve(self, session: Session, ref: NodeRef) -> str:
        if ref.kind == "dataset":
            wanted = DatasetRef.parse(ref.ref, field="ref")
            dv = find_dataset(session, wanted, field="ref", include_deleted=True)
            if dv is None:
                raise _missing(f"dataset version {ref.ref}")
            return key(DV, dv.id)
        if ref.kind == "model":
            _, row = resolve(session, parse_ref(ref.ref))
            return key(MV, row.id)
        if session.scalars(select(Deployment.id).where(Deployment.name == ref.ref)).first():
            return key(DEP, ref.ref)
        raise _missing(f"deployment {ref.ref}")

    def show(self, text: str) -> LineageGraph:
        """The graph around ``text`` (a dataset version, model version or deployment):
        everything upstream and downstream of it."""
        ref = NodeRef.parse(text)
        with self._db.session() as session:
            walker = Walker(session)
            root = self._resolve(session, ref)
            up = walk(root, walker.upstream)
            down = walk(root, walker.downstream)
            up_keys = _order(root, up, upstream=True)
            down_keys = _order(root, down, upstream=False)
            keys = list(dict.fromkeys([root, *up_keys, *down_keys]))
            return LineageGraph(
                root=root,
                nodes=[walker.node(k) for k in keys],
                edges=[edge_out(s) for s in dict.fromkeys([*up, *down])],
                upstream=up_keys,
                downstream=down_keys,
            )

    def impact(self, text: str) -> ImpactReport:
        """Everything downstream of a dataset version: derived versions, model versions
        made with them, and where those serve now or served before."""
        wanted = DatasetRef.parse(text, field="dataset")
        with self._db.session() as session:
            dv = find_dataset(session, wanted, field="dataset", include_deleted=True)
            if dv is None:
                raise _missing(f"dataset version {text}", "dataset")
            walker = Walker(session)
            root = key(DV, dv.id)
            steps = walk(root, walker.downstream)
            parents: dict[str, Step] = {}
            for step in steps:
                if step.target != root:
                    parents.setdefault(step.target, step)
            order = _order(root, steps, upstream=False)
            derived = [walker.node(k).label for k in order if split(k)[0] == DV]
            models = [
                impact_model(session, walker, k, root, parents) for k in order if split(k)[0] == MV
            ]
            names = sorted({s.deployment for m in models for s in m.serving})
            return ImpactReport(
                dataset=f"{dv.dataset}@{dv.number}",
                dataset_version_id=dv.id,
                root=dv.root,
                derived=derived,
                models=models,
                deployments=names,
                serving_now=any(s.serving_now for m in models for s in m.serving),
                predictions=sum(s.predictions for m in models for s in m.serving),
                windows=sum(s.windows for m in models for s in m.serving),
            )


def _order(root: str, steps: Sequence[Step], *, upstream: bool) -> list[str]:
    """The nodes ``steps`` reach from ``root``, nearest first, ``root`` left out."""
    seen: dict[str, None] = {}
    for step in steps:
        far = step.source if upstream else step.target
        if far != root:
            seen.setdefault(far, None)
    return list(seen)


def _columns(contents: str) -> list[tuple[str, str]]:
    """Column names and types from a version's ``contents`` (tabular schemas, when it has
    any; the shape is the dataset service's ``TableProfile``: ``name`` and ``type`` per
    column), as ``file:column``."""
    try:
        data: Any = json.loads(contents or "{}")
    except ValueError:
        return []
    tables = data.get("tables") if isinstance(data, dict) else None
    found: list[tuple[str, str]] = []
    for table in tables if isinstance(tables, list) else []:
        if not isinstance(table, dict):
            continue
        prefix = str(table.get("name", ""))
        for column in table.get("columns") or []:
            if isinstance(column, dict) and "name" in column:
                label = f"{prefix}:{column['name']}" if prefix else str(column["name"])
                found.append((label, str(column.get("type", "unknown"))))
    return found[:1000]
