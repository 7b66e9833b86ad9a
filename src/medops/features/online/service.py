"""Use cases of the online side of the feature store: bind a deployment to feature views,
materialize views into the online store (incrementally, audited), read an entity's values.

The online store is one per installation (``MEDOPS_FEATURE_ONLINE_URL``); the materialization
state is kept per (view, store), so pointing an installation at a new store starts every view
from the beginning there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from medops.audit.schemas import AuditEntry
from medops.auth.common import require_actor
from medops.core.canonical import canonical_bytes
from medops.core.signature import ModelSignature
from medops.errors import FieldError, InvalidInputError, NotFoundError
from medops.features.online.base import OnlineStore, entity_key, open_online_store
from medops.features.online.schemas import (
    FeatureBindingOut,
    FeatureBindingSpec,
    MaterializationState,
    MaterializeIn,
    MaterializeOut,
    MaterializeRun,
    OnlineLookupOut,
    OnlineSkewIn,
    OnlineValue,
    ServedSkewIn,
    ServedSkewOut,
    SkewCheckOut,
)
from medops.features.online.tables import FeatureBinding, FeatureMaterialization
from medops.features.schemas import DatasetSource, FeatureRef, FeatureRepo, FeatureView

if TYPE_CHECKING:
    from medops.audit.service import AuditService
    from medops.clock import Clock
    from medops.config import Settings
    from medops.context import Context
    from medops.db.engine import Database
    from medops.features.offline import DatasetFiles
    from medops.registry.tables import ModelVersion
    from medops.serving.features import FeatureServing


def store_fingerprint(url: str, namespace: str) -> str:
    """A stable short name of an online store (its URL without credentials, and namespace)."""
    from sqlalchemy.engine import make_url

    text = url
    if not url.startswith("sqlite:"):
        try:
            text = make_url(url).set(password=None).render_as_string()
        except Exception:  # noqa: BLE001 - a redis:// URL SQLAlchemy cannot parse: as is
            text = url
    return hashlib.sha256(f"{text}\x00{namespace}".encode()).hexdigest()[:16]


def _digest(model: object) -> str:
    from pydantic import BaseModel

    assert isinstance(model, BaseModel)
    return "sha256:" + hashlib.sha256(canonical_bytes(model.model_dump(mode="json"))).hexdigest()


class FeatureOnlineService:
    """Bindings, materialization and lookups over the installation's online store."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        settings: Settings,
        read_dataset: Callable[[Context, DatasetSource], bytes] | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._settings = settings
        # How a view reading a dataset version gets its file (as the caller, audited).
        self._read_dataset = read_dataset
        self.url = settings.resolved_feature_online_url
        self.namespace = settings.feature_online_namespace
        self.fingerprint = store_fingerprint(self.url, self.namespace)
        # serving/ imports features/ at import time; features/ reaches serving/ on use only.
        from medops.serving.features import FeatureServing

        self.serving: FeatureServing = FeatureServing(
            self._open_store, self._load_bindings, settings.feature_binding_refresh_seconds
        )
        self.listeners: list[Callable[[], None]] = [self.serving.invalidate]

    def _datasets(self, ctx: Context) -> DatasetFiles | None:
        """The reader of dataset-version sources for one operation of one caller: its reads
        are audited as theirs, and a file the operation reads twice is fetched once."""
        read = self._read_dataset
        if read is None:
            return None
        fetched: dict[tuple[str, str], bytes] = {}

        def once(source: DatasetSource) -> bytes:
            key = (source.dataset, source.file)
            if key not in fetched:
                fetched[key] = read(ctx, source)
            return fetched[key]

        return once

    def _open_store(self) -> OnlineStore:
        return open_online_store(self.url, namespace=self.namespace)

    @property
    def store(self) -> OnlineStore:
        return self.serving.store

    def close(self) -> None:
        self.serving.close()

    # -- bindings -------------------------------------------------------------------------

    def _load_bindings(self) -> dict[str, tuple[FeatureBindingSpec, int]]:
        with self._db.session() as session:
            rows = session.scalars(select(FeatureBinding)).all()
            return {
                r.deployment: (FeatureBindingSpec.model_validate_json(r.spec), r.revision)
                for r in rows
            }

    @staticmethod
    def _out(row: FeatureBinding) -> FeatureBindingOut:
        from medops.serving.features import BoundFeatures

        spec = FeatureBindingSpec.model_validate_json(row.spec)
        return FeatureBindingOut(
            deployment=row.deployment,
            spec=spec,
            digest=row.digest,
            revision=row.revision,
            request_fields=BoundFeatures(row.deployment, spec, row.revision).request_fields,
            updated_at=row.updated_at,
            updated_by=row.updated_by,
        )

    def bind(self, ctx: Context, deployment: str, spec: FeatureBindingSpec) -> FeatureBindingOut:
        """Serve ``deployment``'s model from feature views (replacing an earlier binding);
        audited ``features.bind``."""
        from medops.serving.deployments import arms_of
        from medops.serving.tables import Deployment

        actor = require_actor(ctx)
        now = self._clock.now()
        digest = _digest(spec)
        with self._db.transaction() as session:
            served = session.scalar(select(Deployment).where(Deployment.name == deployment))
            if served is None:
                raise NotFoundError(f"no deployment {deployment}")
            _check_signatures(spec, arms_of(session, served))
            row = session.get(FeatureBinding, deployment)
            before = None if row is None else row.digest
            if row is None:
                row = FeatureBinding(deployment=deployment, revision=0)
                session.add(row)
            if before != digest:
                row.spec = spec.model_dump_json()
                row.digest = digest
                row.revision += 1
                row.updated_at = now
                row.updated_by = actor.username
                self._audit.record(
                    session,
                    ctx,
                    AuditEntry(
                        action="features.bind",
                        resource_type="deployment",
                        resource_id=deployment,
                        details={
                            "before": before,
                            "after": digest,
                            "revision": row.revision,
                            "policy": spec.policy,
                            "inputs": spec.inputs,
                        },
                    ),
                )
            session.flush()
            out = self._out(row)
        self._changed()
        return out

    def unbind(self, ctx: Context, deployment: str) -> None:
        """Stop serving ``deployment`` from feature views; audited ``features.unbind``."""
        require_actor(ctx)
        with self._db.transaction() as session:
            row = session.get(FeatureBinding, deployment)
            if row is None:
                raise NotFoundError(f"deployment {deployment} is not bound to feature views")
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="features.unbind",
                    resource_type="deployment",
                    resource_id=deployment,
                    details={"before": row.digest},
                ),
            )
            session.delete(row)
        self._changed()

    def binding(self, deployment: str) -> FeatureBindingOut:
        with self._db.session() as session:
            row = session.get(FeatureBinding, deployment)
            if row is None:
                raise NotFoundError(f"deployment {deployment} is not bound to feature views")
            return self._out(row)

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    # -- materialization --------------------------------------------------------------------

    def bound_views(self) -> dict[str, tuple[FeatureRepo, FeatureView]]:
        """Every view a bound deployment reads (the most recently bound definition wins)."""
        from medops.serving.features import BoundFeatures

        views: dict[str, tuple[FeatureRepo, FeatureView, datetime]] = {}
        with self._db.session() as session:
            for row in session.scalars(select(FeatureBinding)).all():
                spec = FeatureBindingSpec.model_validate_json(row.spec)
                for view in BoundFeatures(row.deployment, spec, row.revision).views.values():
                    held = views.get(view.name)
                    if held is None or held[2] < row.updated_at:
                        views[view.name] = (spec.repo, view, row.updated_at)
        return {name: (repo, view) for name, (repo, view, _) in views.items()}

    def materialize(self, ctx: Context, request: MaterializeIn) -> MaterializeOut:
        """Write the newest rows of each view to the online store, from its watermark (from
        the start with ``full``, or when the view's definition changed); each view's run is
        audited ``features.materialize`` with its counts (never a value)."""
        from medops.features.materialize import materialize_view

        require_actor(ctx)
        if request.repo is not None:
            views = {v.name: (request.repo, v) for v in request.repo.feature_views}
        else:
            views = self.bound_views()
        names = list(request.views) or sorted(views)
        unknown = [n for n in names if n not in views]
        if unknown:
            raise InvalidInputError(
                f"no feature view {unknown[0]} to materialize",
                errors=[FieldError("views", f"unknown view {unknown[0]}")],
            )
        runs: list[MaterializeRun] = []
        for name in names:
            repo, view = views[name]
            digest = _digest(view)
            with self._db.session() as session:
                state = session.get(FeatureMaterialization, (name, self.fingerprint))
                before = state.watermark if state is not None else None
                same = state is not None and state.definition_digest == digest
            start = before if same and not request.full else None
            done = materialize_view(
                repo, view, self.store, start, self._clock.now(), datasets=self._datasets(ctx)
            )
            runs.append(
                MaterializeRun(
                    view=name,
                    rows_read=done.rows_read,
                    rows_written=done.rows_written,
                    entities=done.entities,
                    watermark_before=start,
                    watermark_after=done.watermark,
                    seconds=round(done.seconds, 6),
                )
            )
            self._record_run(ctx, name, digest, done, start)
        return MaterializeOut(store=self.fingerprint, runs=tuple(runs))

    def _record_run(
        self, ctx: Context, view: str, digest: str, done: object, start: datetime | None
    ) -> None:
        from medops.features.materialize import Materialized

        assert isinstance(done, Materialized)
        actor = require_actor(ctx)
        now = self._clock.now()
        with self._db.transaction() as session:
            state = session.get(FeatureMaterialization, (view, self.fingerprint))
            if state is None:
                state = FeatureMaterialization(view=view, store=self.fingerprint, runs=0)
                session.add(state)
            state.definition_digest = digest
            state.watermark = done.watermark
            state.runs += 1
            state.rows_read = done.rows_read
            state.rows_written = done.rows_written
            state.seconds = done.seconds
            state.updated_at = now
            state.updated_by = actor.username
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="features.materialize",
                    resource_type="feature_view",
                    resource_id=view,
                    details={
                        "store": self.fingerprint,
                        "definition": digest,
                        "from": start.isoformat() if start else None,
                        "to": done.watermark.isoformat() if done.watermark else None,
                        "rows_read": done.rows_read,
                        "rows_written": done.rows_written,
                    },
                ),
            )

    def states(self) -> list[MaterializationState]:
        """How far each view has been materialized into this installation's store."""
        with self._db.session() as session:
            rows = session.scalars(
                select(FeatureMaterialization)
                .where(FeatureMaterialization.store == self.fingerprint)
                .order_by(FeatureMaterialization.view)
            ).all()
            return [
                MaterializationState(
                    view=r.view,
                    store=r.store,
                    definition_digest=r.definition_digest,
                    watermark=r.watermark,
                    runs=r.runs,
                    rows_read=r.rows_read,
                    rows_written=r.rows_written,
                    seconds=r.seconds,
                    updated_at=r.updated_at,
                )
                for r in rows
            ]

    # -- lookups ----------------------------------------------------------------------------

    def lookup(
        self, ctx: Context, entity: dict[str, str | int], features: list[str]
    ) -> OnlineLookupOut:
        """The stored values of ``features`` (``view:feature``, or ``view`` for all of its
        features) for one entity, from the views bound deployments read; audited
        ``features.read`` (the entity keys are not written into the record)."""
        require_actor(ctx)
        views = self.bound_views()
        now = self._clock.now()
        values: list[OnlineValue] = []
        wanted: dict[str, list[str]] = {}
        for text in features:
            view_name, _, feature = text.partition(":")
            if view_name not in views:
                raise InvalidInputError(
                    f"no served feature view {view_name}",
                    errors=[FieldError("features", f"unknown view {view_name}")],
                )
            view = views[view_name][1]
            if feature and view.feature(feature) is None:
                raise InvalidInputError(
                    f"no feature {text}", errors=[FieldError("features", f"unknown {text}")]
                )
            FeatureRef.parse(text if feature else f"{view_name}:{view.features[0].name}")
            wanted.setdefault(view_name, []).extend(
                [feature] if feature else [f.name for f in view.features]
            )
        for view_name, names in wanted.items():
            repo, view = views[view_name]
            keys = repo.view_keys(view)
            missing = [k.name for k in keys if k.name not in entity]
            if missing:
                raise InvalidInputError(
                    f"view {view_name} needs the entity key {missing[0]}",
                    errors=[FieldError("entity", f"missing key {missing[0]}")],
                )
            row = self.store.read(view_name, [entity_key([entity[k.name] for k in keys])])[0]
            fresh = (
                row is not None
                and row.event <= now
                and (view.ttl is None or now - row.event <= view.ttl)
            )
            values.extend(
                OnlineValue(
                    view=view_name,
                    feature=name,
                    value=None if row is None else row.values.get(name),
                    event_time=None if row is None else row.event,
                    fresh=fresh,
                )
                for name in dict.fromkeys(names)
            )
        with self._db.transaction() as session:
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="features.read",
                    resource_type="feature_view",
                    resource_id=",".join(sorted(wanted)),
                    details={"features": json.dumps(sorted(features))},
                ),
            )
        return OnlineLookupOut(entity=entity, values=tuple(values))

    # -- skew -------------------------------------------------------------------------------

    def online_skew(self, ctx: Context, request: OnlineSkewIn) -> SkewCheckOut:
        """Online values against the offline join at the same time, for sampled entities of
        a served view (``features.skew``); audited ``features.skew-check`` with its verdict."""
        from medops.features.skew import online_offline

        require_actor(ctx)
        views = self.bound_views()
        if request.view not in views:
            raise InvalidInputError(
                f"no served feature view {request.view}",
                errors=[FieldError("view", f"unknown view {request.view}")],
            )
        repo, view = views[request.view]
        result = online_offline(
            repo,
            view,
            self.store,
            self._clock.now(),
            sample=request.sample,
            seed=request.seed,
            datasets=self._datasets(ctx),
        )
        with self._db.transaction() as session:
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="features.skew-check",
                    resource_type="feature_view",
                    resource_id=request.view,
                    details={
                        "sampled": result.sampled,
                        "consistent": result.consistent,
                        "differing": [f.feature for f in result.features if f.equal < f.compared],
                    },
                ),
            )
        return result

    def served_skew(self, request: ServedSkewIn) -> ServedSkewOut:
        """What ``request.deployment`` served (its prediction log, shadow rows left out)
        against the training set's values, per feature, with monitoring's drift tests."""
        from medops.features.skew import served_skew, served_values
        from medops.serving.tables import Deployment, Prediction

        with self._db.session() as session:
            if (
                session.scalar(select(Deployment.id).where(Deployment.name == request.deployment))
                is None
            ):
                raise NotFoundError(f"no deployment {request.deployment}")
            query = (
                select(Prediction.inputs)
                .where(Prediction.deployment == request.deployment, Prediction.shadow.is_(False))
                .order_by(Prediction.occurred_at.desc())
                .limit(request.at_most)
            )
            if request.since is not None:
                query = query.where(Prediction.occurred_at >= request.since)
            rows = list(session.scalars(query))
        # The training set's other columns (label, keys, times) are no model input: only the
        # features the log holds are compared.
        logged: set[str] = set()
        for text in rows[:100]:
            logged.update(json.loads(text))
        training = {k: v for k, v in request.training.items() if k in logged or not rows}
        served = served_values(rows, list(training))
        features = served_skew(training, served)
        return ServedSkewOut(
            deployment=request.deployment,
            served_rows=len(rows),
            features=tuple(features),
            drifted=tuple(f.feature for f in features if f.drifted),
        )


# Which stored types can feed which signature types (a category takes text or whole numbers).
_FEEDS: dict[str, frozenset[str]] = {
    "float": frozenset({"float64", "int64"}),
    "integer": frozenset({"int64"}),
    "boolean": frozenset({"bool"}),
    "category": frozenset({"string", "int64"}),
}


def _check_signatures(spec: FeatureBindingSpec, arms: Mapping[str, ModelVersion | None]) -> None:
    """Refuse a binding that would make every request fail: an input that is not in the
    signature of a version the deployment serves (target, canary or shadow), or a stored or
    on-demand feature whose type cannot be that input's (a 422 naming each)."""
    errors: list[FieldError] = []
    for version in {id(v): v for v in arms.values() if v is not None}.values():
        signature = ModelSignature.model_validate_json(version.signature)
        inputs = {f.name: f for f in signature.inputs}
        label = f"version {version.version}"
        for model_input, text in spec.inputs.items():
            field = f"spec.inputs.{model_input}"
            if model_input not in inputs:
                errors.append(FieldError(field, f"not an input of {label}'s signature"))
                continue
            dtype = _dtype_of(spec, FeatureRef.parse(text))
            wanted = inputs[model_input].type
            if dtype is not None and dtype not in _FEEDS[wanted]:
                reason = f"{text} is {dtype}; {label} takes a {wanted} here"
                errors.append(FieldError(field, reason))
    if errors:
        raise InvalidInputError(
            "the binding does not fit the deployment's model: " + errors[0].reason,
            errors=list({(e.field, e.reason): e for e in errors}.values()),
        )


def _dtype_of(spec: FeatureBindingSpec, ref: FeatureRef) -> str | None:
    if ref.on_demand:
        found = spec.repo.on_demand(ref.feature)
        return None if found is None else found.dtype
    view = spec.repo.view(ref.view)
    feature = None if view is None else view.feature(ref.feature)
    return None if feature is None else feature.dtype
