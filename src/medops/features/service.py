"""The feature store's use cases on the server: applying definitions (a new version when one
changes, audited), listing and showing them, the repository as registered (what a training set
is built from), and recording a training set's lineage to the definitions it used.

The point-in-time join itself runs where the source files are (``medops.features.offline``,
called by the CLI); the server never opens a path a request names.
"""

from __future__ import annotations

import builtins
import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.context import Context
from medops.core.canonical import canonical_json
from medops.db.engine import Database
from medops.errors import FieldError, InvalidInputError, NotFoundError
from medops.features.schemas import (
    ApplyOut,
    DefinitionKind,
    DefinitionOut,
    FeatureRef,
    FeatureRepo,
    RegisteredRepo,
    TrainingSetRecordIn,
    TrainingSetRecordOut,
    definition_digest,
)
from medops.features.tables import FeatureDefinition
from medops.registry.pins import resolve_dataset

KINDS: tuple[DefinitionKind, ...] = (
    "entity",
    "feature_view",
    "on_demand_feature",
    "feature_service",
)
LINEAGE_KIND = "feature_definition"
LINEAGE_RELATION = "features"


def _out(row: FeatureDefinition) -> DefinitionOut:
    return DefinitionOut(
        kind=row.kind,
        name=row.name,
        version=row.version,
        digest=row.digest,
        owner=row.owner,
        description=row.description,
        spec=json.loads(row.spec),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _newest(session: Session, kind: str, name: str) -> FeatureDefinition | None:
    return session.scalars(
        select(FeatureDefinition)
        .where(FeatureDefinition.kind == kind, FeatureDefinition.name == name)
        .order_by(FeatureDefinition.version.desc())
        .limit(1)
    ).first()


class FeatureService:
    """Definitions of one installation's feature store."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    # -- definitions ---------------------------------------------------------------------

    def apply(self, ctx: Context, repo: FeatureRepo) -> ApplyOut:
        """Register every definition of ``repo``: a new version for each that is new or
        changed (audited ``features.apply``, one record per version with its digest), nothing
        for those registered as they are. One transaction: all or nothing. A definition
        without an owner keeps its previous owner, or gets the person applying it."""
        actor = require_actor(ctx)
        created: list[DefinitionOut] = []
        unchanged: list[DefinitionOut] = []
        now = self._clock.now()
        with self._db.transaction() as session:
            for kind, given in repo.definitions():
                spec = given
                name = str(getattr(spec, "name", ""))
                newest = _newest(session, kind, name)
                if not getattr(spec, "owner", ""):
                    owner = newest.owner if newest is not None else actor.username
                    spec = spec.model_copy(update={"owner": owner})
                digest = definition_digest(spec)
                if newest is not None and newest.digest == digest:
                    unchanged.append(_out(newest))
                    continue
                row = FeatureDefinition(
                    kind=kind,
                    name=name,
                    version=(newest.version + 1) if newest is not None else 1,
                    digest=digest,
                    spec=canonical_json(spec.model_dump(mode="json")),
                    owner=str(getattr(spec, "owner", "")),
                    description=str(getattr(spec, "description", "")),
                    created_at=now,
                    created_by=actor.username,
                )
                session.add(row)
                self._audit.record(
                    session,
                    ctx,
                    AuditEntry(
                        action="features.apply",
                        resource_type=kind,
                        resource_id=f"{name}@{row.version}",
                        details={
                            "digest": digest,
                            "previous": newest.digest if newest is not None else None,
                            "owner": row.owner,
                        },
                    ),
                )
                session.flush()
                created.append(_out(row))
        return ApplyOut(created=tuple(created), unchanged=tuple(unchanged))

    def list(self, kind: DefinitionKind | None = None) -> list[DefinitionOut]:
        """The newest version of every definition (of one kind), by kind then name."""
        with self._db.session() as session:
            newest = (
                select(
                    FeatureDefinition.kind,
                    FeatureDefinition.name,
                    func.max(FeatureDefinition.version).label("version"),
                )
                .group_by(FeatureDefinition.kind, FeatureDefinition.name)
                .subquery()
            )
            query = select(FeatureDefinition).join(
                newest,
                (FeatureDefinition.kind == newest.c.kind)
                & (FeatureDefinition.name == newest.c.name)
                & (FeatureDefinition.version == newest.c.version),
            )
            if kind is not None:
                query = query.where(FeatureDefinition.kind == kind)
            rows = sorted(session.scalars(query), key=lambda r: (KINDS.index(r.kind), r.name))
            return [_out(r) for r in rows]

    def versions(
        self, name: str, kind: DefinitionKind | None = None
    ) -> builtins.list[DefinitionOut]:
        """Every version of the definition named ``name``, oldest first; ``kind`` is needed
        only when two kinds share the name."""
        with self._db.session() as session:
            query = select(FeatureDefinition).where(FeatureDefinition.name == name)
            if kind is not None:
                query = query.where(FeatureDefinition.kind == kind)
            rows = list(session.scalars(query.order_by(FeatureDefinition.version)))
        kinds = {r.kind for r in rows}
        if not rows:
            raise NotFoundError(
                f"no feature definition {name}", errors=[FieldError("name", "not registered")]
            )
        if len(kinds) > 1:
            reason = f"{name} names a {' and a '.join(sorted(kinds))}: give the kind"
            raise InvalidInputError(reason, errors=[FieldError("kind", reason)])
        return [_out(r) for r in rows]

    def show(
        self, name: str, kind: DefinitionKind | None = None, version: int | None = None
    ) -> DefinitionOut:
        """One version of a definition (default: the newest)."""
        rows = self.versions(name, kind)
        if version is None:
            return rows[-1]
        for row in rows:
            if row.version == version:
                return row
        raise NotFoundError(
            f"{name} has no version {version}", errors=[FieldError("version", "no such version")]
        )

    def registered(self) -> RegisteredRepo:
        """The newest version of every definition as one repository, and which versions those
        are: what ``training-set`` builds from and records as lineage."""
        rows = self.list()
        specs: dict[str, list[dict[str, object]]] = {
            "entities": [],
            "feature_views": [],
            "on_demand_features": [],
            "feature_services": [],
        }
        field = {
            "entity": "entities",
            "feature_view": "feature_views",
            "on_demand_feature": "on_demand_features",
            "feature_service": "feature_services",
        }
        for row in rows:
            specs[field[row.kind]].append(row.spec)
        return RegisteredRepo(
            repo=FeatureRepo.model_validate(specs),
            versions={f"{r.kind}:{r.name}": r.version for r in rows},
        )

    # -- training sets -------------------------------------------------------------------

    def record_training_set(self, ctx: Context, body: TrainingSetRecordIn) -> TrainingSetRecordOut:
        """Record that dataset version ``body.dataset`` is a training set built from
        ``body.features``: a lineage edge from each definition version it read (the views, the
        on-demand features and the entities they join on) to the dataset version. Audited
        ``features.training_set``."""
        # lineage reads this package's table to show the nodes: imported here, not at the top
        from medops.lineage.tables import LineageEdge

        actor = require_actor(ctx)
        refs = [FeatureRef.parse(f) for f in body.features]
        wanted: set[tuple[str, str]] = set()
        with self._db.transaction() as session:
            dv = resolve_dataset(session, body.dataset, field="dataset")
            for ref in refs:
                if ref.on_demand:
                    wanted.add(("on_demand_feature", ref.feature))
                    spec = self._spec(session, "on_demand_feature", ref.feature, body)
                    for target in dict(spec.get("features", {})).values():  # type: ignore[call-overload]
                        wanted.add(("feature_view", FeatureRef.parse(str(target)).view))
                else:
                    wanted.add(("feature_view", ref.view))
            for kind, name in sorted(wanted):
                if kind == "feature_view":
                    spec = self._spec(session, kind, name, body)
                    wanted |= {("entity", str(e)) for e in spec.get("entities", [])}  # type: ignore[attr-defined]
            rows = [self._row(session, kind, name, body) for kind, name in sorted(wanted)]
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="features.training_set",
                    resource_type="dataset_version",
                    resource_id=dv.id,
                    details={
                        "dataset": f"{dv.dataset}@{dv.number}",
                        "features": list(body.features),
                        "definitions": sorted(f"{r.kind}:{r.name}@{r.version}" for r in rows),
                        "entity_rows": body.entity_rows,
                        "rows_with_all_values": body.rows_with_all_values,
                    },
                ),
            )
            edges = 0
            for row in rows:
                exists = session.scalars(
                    select(LineageEdge.id).where(
                        LineageEdge.source_kind == LINEAGE_KIND,
                        LineageEdge.source_id == str(row.id),
                        LineageEdge.target_kind == "dataset_version",
                        LineageEdge.target_id == dv.id,
                        LineageEdge.relation == LINEAGE_RELATION,
                    )
                ).first()
                if exists is None:
                    session.add(
                        LineageEdge(
                            source_kind=LINEAGE_KIND,
                            source_id=str(row.id),
                            target_kind="dataset_version",
                            target_id=dv.id,
                            relation=LINEAGE_RELATION,
                            created_at=self._clock.now(),
                            created_by=actor.username,
                        )
                    )
                    edges += 1
        return TrainingSetRecordOut(
            dataset=f"{dv.dataset}@{dv.number}", dataset_version_id=dv.id, edges=edges
        )

    @staticmethod
    def _row(
        session: Session, kind: str, name: str, body: TrainingSetRecordIn
    ) -> FeatureDefinition:
        version = body.definitions.get(f"{kind}:{name}")
        query = select(FeatureDefinition).where(
            FeatureDefinition.kind == kind, FeatureDefinition.name == name
        )
        if version is not None:
            query = query.where(FeatureDefinition.version == version)
        row = session.scalars(query.order_by(FeatureDefinition.version.desc()).limit(1)).first()
        if row is None:
            what = f"{kind} {name}" + (f" version {version}" if version is not None else "")
            raise InvalidInputError(
                f"no registered {what}", errors=[FieldError("features", f"no {what}")]
            )
        return row

    def _spec(
        self, session: Session, kind: str, name: str, body: TrainingSetRecordIn
    ) -> dict[str, object]:
        spec: dict[str, object] = json.loads(self._row(session, kind, name, body).spec)
        return spec
