"""Serving from feature views: a deployment whose model's inputs come from the feature store.

When a deployment is bound (``FeatureBindingSpec``), each record of a prediction request
carries only the entity keys (``patient_id``) and the request-time values; before the records
are validated against the model's signature, :class:`BoundFeatures` looks the stored features
up in the online store (one read per view for all records of the request), applies the
on-demand features with the same evaluator the offline join uses
(``features.ondemand.evaluate_row``), and replaces each record by the model's inputs. The
prediction log then holds the values the model saw (monitoring reads those), and the row's
metadata says which inputs came from which view as of which event time, and which were imputed.

Missing (no row for the entity) and stale (older than the view's TTL at the request's time)
values follow the binding's policy: ``reject`` refuses the request with a 422 naming each
field, ``impute`` puts the declared value in and flags it in the answer and the log.

The lookup runs on the event loop: an embedded SQLite read is ~10 us, a Redis or PostgreSQL
read one round trip on the loopback or LAN (~100-300 us); a thread hand-off would cost as much.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from medops.errors import FieldError
from medops.features.ondemand import evaluate_row
from medops.features.online.base import OnlineStore, StoredRow, entity_key
from medops.features.online.schemas import FeatureBindingSpec
from medops.features.schemas import FeatureRef, FeatureView, JoinKey, OnDemandFeature

if TYPE_CHECKING:
    from medops.serving.predict import Parsed


@dataclass
class FeatureUse:
    """Where one record's inputs came from: the event time per view, the imputed inputs."""

    as_of: dict[str, str | None] = field(default_factory=dict)
    imputed: list[str] = field(default_factory=list)
    sent: dict[str, Any] = field(default_factory=dict)

    def answer(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "imputed": self.imputed}

    def metadata(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "imputed": self.imputed, "sent": self.sent}


def _typed(value: object, dtype: str) -> bool:
    if value is None:
        return True
    if dtype == "string":
        return isinstance(value, str)
    if dtype == "bool":
        return isinstance(value, bool)
    if dtype == "int64":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


class BoundFeatures:
    """One deployment's binding, compiled for the request path."""

    def __init__(self, deployment: str, spec: FeatureBindingSpec, revision: int) -> None:
        self.deployment = deployment
        self.spec = spec
        self.revision = revision
        repo = spec.repo
        self.stored: dict[str, tuple[FeatureView, str]] = {}
        self.on_demand: dict[str, OnDemandFeature] = {}
        views: dict[str, FeatureView] = {}
        for model_input, text in spec.inputs.items():
            ref = FeatureRef.parse(text)
            if ref.on_demand:
                odf = repo.on_demand(ref.feature)
                assert odf is not None  # checked by the spec
                self.on_demand[model_input] = odf
                for source in odf.features.values():
                    view = repo.view(FeatureRef.parse(source).view)
                    assert view is not None
                    views[view.name] = view
            else:
                view = repo.view(ref.view)
                assert view is not None
                views[view.name] = view
                self.stored[model_input] = (view, ref.feature)
        self.views = views
        self.keys: dict[str, tuple[JoinKey, ...]] = {v: repo.view_keys(views[v]) for v in views}
        key_fields: dict[str, str] = {}
        for keys in self.keys.values():
            key_fields.update((k.name, k.dtype) for k in keys)
        self.key_fields = key_fields
        request: dict[str, str] = {}
        for odf in self.on_demand.values():
            request.update((r.name, r.dtype) for r in odf.request)
        self.request_values = request

    @property
    def request_fields(self) -> tuple[str, ...]:
        """The fields a request's record carries (besides model inputs sent as they are)."""
        return tuple(dict.fromkeys([*self.key_fields, *self.request_values]))

    def resolve(
        self, store: OnlineStore, parsed: Parsed, now: datetime
    ) -> tuple[list[FeatureUse], list[FieldError]]:
        """Replace each record of ``parsed`` by the model's inputs; the problems found (with
        the reject policy, a missing or stale value is one)."""
        errors: list[FieldError] = []
        n = len(parsed.records)
        keys: dict[str, list[str | None]] = {}
        for view, join_keys in self.keys.items():
            column: list[str | None] = []
            for i, record in enumerate(parsed.records):
                values: list[object] | None = []
                for k in join_keys:
                    value = record.get(k.name)
                    if value is None or not _typed(value, k.dtype):
                        errors.append(
                            FieldError(
                                f"{parsed.field(i)}.{k.name}",
                                f"the entity key {k.name} ({k.dtype}) is required",
                            )
                        )
                        values = None
                        break
                    assert values is not None
                    values.append(value)
                column.append(None if values is None else entity_key(values))
            keys[view] = column
        for i, record in enumerate(parsed.records):
            for name, dtype in self.request_values.items():
                if not _typed(record.get(name), dtype):
                    errors.append(FieldError(f"{parsed.field(i)}.{name}", f"expected {dtype}"))
        if errors:
            return [], list(dict.fromkeys(errors))
        rows: dict[str, list[StoredRow | None]] = {}
        for view, column in keys.items():
            wanted = list(dict.fromkeys(k for k in column if k is not None))
            found = dict(zip(wanted, store.read(view, wanted), strict=True))
            rows[view] = [found.get(k) if k is not None else None for k in column]
        uses: list[FeatureUse] = []
        for i in range(n):
            use, record = self._one(parsed, i, rows, now, errors)
            uses.append(use)
            parsed.records[i] = record
        return uses, errors

    def _fresh(self, view: FeatureView, row: StoredRow | None, now: datetime) -> bool:
        if row is None or row.event > now:
            return False
        return view.ttl is None or now - row.event <= view.ttl

    def _one(
        self,
        parsed: Parsed,
        i: int,
        rows: dict[str, list[StoredRow | None]],
        now: datetime,
        errors: list[FieldError],
    ) -> tuple[FeatureUse, dict[str, Any]]:
        sent = parsed.records[i]
        use = FeatureUse(sent=dict(sent))
        consumed = set(self.key_fields) | set(self.request_values)
        record = {k: v for k, v in sent.items() if k not in consumed}
        where = parsed.field(i)
        for view_name, view_rows in rows.items():
            row = view_rows[i]
            use.as_of[view_name] = row.event.isoformat() if row is not None else None

        def stored(view: FeatureView, feature: str) -> tuple[Any, str | None]:
            row = rows[view.name][i]
            if row is None:
                return None, f"no value in feature view {view.name} for this entity"
            if not self._fresh(view, row, now):
                return None, f"stale: the latest row of {view.name} is outside its TTL"
            value = row.values.get(feature)
            if value is None:
                return None, f"{view.name}:{feature} is null for this entity"
            return value, None

        for model_input, (view, feature) in self.stored.items():
            value, problem = stored(view, feature)
            record[model_input] = self._policy(model_input, value, problem, where, use, errors)
        for model_input, odf in self.on_demand.items():
            env: dict[str, Any] = {r.name: sent.get(r.name) for r in odf.request}
            problem = None
            for alias, source in odf.features.items():
                ref = FeatureRef.parse(source)
                view = self.views[ref.view]
                env[alias], missing = stored(view, ref.feature)
                problem = problem or missing
            value = None if problem else evaluate_row(odf, self.spec.repo, env)
            if value is None and problem is None:
                problem = f"the on-demand feature {odf.name} has no value for these inputs"
            record[model_input] = self._policy(model_input, value, problem, where, use, errors)
        return use, record

    def _policy(
        self,
        model_input: str,
        value: Any,
        problem: str | None,
        where: str,
        use: FeatureUse,
        errors: list[FieldError],
    ) -> Any:
        if problem is None:
            return value
        if self.spec.policy == "impute":
            use.imputed.append(model_input)
            return self.spec.impute[model_input]
        errors.append(FieldError(f"{where}.{model_input}", problem))
        return None


class FeatureServing:
    """The bindings of this process's deployments and the online store they read; bindings are
    re-read every ``refresh_s`` (another replica's change) or at once after ``invalidate``."""

    def __init__(
        self,
        store: Callable[[], OnlineStore],
        load: Callable[[], dict[str, tuple[FeatureBindingSpec, int]]],
        refresh_s: float,
    ) -> None:
        self._open_store = store
        self._store: OnlineStore | None = None
        self._load = load
        self._refresh_s = refresh_s
        self._bindings: dict[str, BoundFeatures] = {}
        self._loaded_at = -1e18
        self._lock = threading.Lock()

    @property
    def store(self) -> OnlineStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._open_store()
        return self._store

    def invalidate(self) -> None:
        self._loaded_at = -1e18

    def binding(self, deployment: str) -> BoundFeatures | None:
        if time.monotonic() - self._loaded_at > self._refresh_s:
            with self._lock:
                loaded = self._load()
                self._bindings = {
                    name: self._bindings[name]
                    if name in self._bindings and self._bindings[name].revision == revision
                    else BoundFeatures(name, spec, revision)
                    for name, (spec, revision) in loaded.items()
                }
                self._loaded_at = time.monotonic()
        return self._bindings.get(deployment)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def record_metadata(base: str | None, use: FeatureUse) -> str:
    """The prediction row's metadata: the request's, with the feature store's provenance."""
    data: dict[str, Any] = json.loads(base) if base else {}
    data["feature_store"] = use.metadata()
    return json.dumps(data, sort_keys=True)
