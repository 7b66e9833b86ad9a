"""The prediction path: parse, validate, route, batch, score, log durably, answer.

A request holds one record (``{"features": {...}, "patient_ref": "..."}``) or several
(``{"records": [{"features": {...}, "patient_ref": "..."}, ...]}``), with optional
``metadata``. Every bad field is listed (``records[3].features.age: above the maximum 120``)
and nothing of a refused request is scored or logged. Each record is routed on its own: to the
canary when its patient reference hashes into the canary's share (sticky per patient; records
without a reference are drawn at random), else to the primary version. Results come from the
deployment's cache when it has one and holds the record for that artifact, else from the
version's micro-batcher. The prediction rows and their audit records are committed by group
commit before the answer is returned: no durable log, no answer (503). Shadow scoring runs
after, off the request's path; its rows are logged with ``shadow`` set and never returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from medops.audit.bindings import explanation_digest, prediction_digest
from medops.audit.schemas import AuditEntry
from medops.audit.writer import Rows
from medops.errors import (
    AuditUnavailableError,
    FieldError,
    InvalidInputError,
    MalformedRequestError,
    MedopsError,
    ServiceUnavailableError,
    clip,
)
from medops.logs import get_logger
from medops.serving.explain import explanation_of, explanation_row
from medops.serving.features import record_metadata
from medops.serving.fhir import bundle, require_subjects, risk_assessment
from medops.serving.schemas import PATIENT_REF_MAX
from medops.serving.tables import Prediction, PredictionExplanation

if TYPE_CHECKING:
    from medops.audit.service import AuditService
    from medops.clock import Clock
    from medops.config import Settings
    from medops.context import Context
    from medops.core.explain import Attributions
    from medops.core.signature import ModelSignature
    from medops.serving.features import FeatureServing, FeatureUse
    from medops.serving.recorder import UsageRecorder
    from medops.serving.runtime import Route, RowResult, Served, ServingRuntime
    from medops.serving.telemetry import ServingMetrics

log = get_logger("medops.serving")
Explained = tuple["Attributions", int]  # a record's attributions, and its row in them

METADATA_MAX_BYTES = 4096
LOG_TIMEOUT_S = 10.0
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_TOP_KEYS = frozenset({"features", "records", "patient_ref", "metadata", "explain"})
_RECORD_KEYS = frozenset({"features", "patient_ref"})


@dataclass
class Parsed:
    """A predict request after its shape was checked (its values are checked per signature)."""

    records: list[dict[str, Any]]
    patient_refs: list[str | None]
    metadata: dict[str, Any] | None
    single: bool
    problems: list[FieldError] = field(default_factory=list)
    explain: bool = False  # feature contributions asked for (serving/explain.py)

    def field(self, index: int) -> str:
        return "features" if self.single else f"records[{index}].features"


def _patient_ref(value: object, where: str, errors: list[FieldError]) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= PATIENT_REF_MAX
        or not value.isprintable()
        or value != value.strip()
    ):
        errors.append(
            FieldError(where, f"must be a printable string of 1 to {PATIENT_REF_MAX} characters")
        )
        return None
    return value


def parse(body: bytes, max_records: int) -> Parsed:
    """Check the request's shape; raise with every problem found."""
    try:
        data = json.loads(body)
        # Unpaired surrogates (valid JSON escapes, not text) could not be echoed back in an
        # error or stored; refuse them here. Only a \uD8xx-\uDFxx escape can make one, so the
        # full check runs only when the body has such an escape.
        if _SURROGATE_ESCAPE.search(body):
            json.dumps(data, ensure_ascii=False).encode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequestError(f"the body is not valid JSON: {exc}") from None
    except UnicodeEncodeError:
        raise MalformedRequestError("the body holds unpaired UTF-16 surrogates") from None
    except RecursionError:
        raise MalformedRequestError("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidInputError(
            "the body must be a JSON object with 'features' or 'records'",
            errors=[FieldError("body", "expected a JSON object")],
        )
    errors = [FieldError(clip(k), "unknown field") for k in data if k not in _TOP_KEYS]
    metadata = data.get("metadata")
    if metadata is not None and (
        not isinstance(metadata, dict) or len(json.dumps(metadata)) > METADATA_MAX_BYTES
    ):
        errors.append(
            FieldError("metadata", f"must be a JSON object of at most {METADATA_MAX_BYTES} bytes")
        )
        metadata = None
    default_ref = _patient_ref(data.get("patient_ref"), "patient_ref", errors)
    explain = _explain_flag(data.get("explain", False), errors)
    records: list[dict[str, Any]] = []
    refs: list[str | None] = []
    single = "features" in data
    if single == ("records" in data):
        errors.append(FieldError("features", "send either 'features' (one record) or 'records'"))
    elif single:
        if not isinstance(data["features"], dict):
            errors.append(FieldError("features", "expected an object of feature values"))
        else:
            records, refs = [data["features"]], [default_ref]
    else:
        records, refs = _records(data["records"], max_records, default_ref, errors)
    if errors and (not records or any(e.field.endswith("].features") for e in errors)):
        raise _invalid(errors)
    # The records' features are checked too, so one answer lists every problem.
    return Parsed(records, refs, metadata, single, errors, explain=explain)


def _explain_flag(value: object, errors: list[FieldError]) -> bool:
    if isinstance(value, bool):
        return value
    errors.append(FieldError("explain", "must be true or false"))
    return False


def _records(
    items: object, max_records: int, default_ref: str | None, errors: list[FieldError]
) -> tuple[list[dict[str, Any]], list[str | None]]:
    records: list[dict[str, Any]] = []
    refs: list[str | None] = []
    if not isinstance(items, list) or not items:
        errors.append(FieldError("records", "expected a non-empty list of records"))
    elif len(items) > max_records:
        errors.append(
            FieldError("records", f"{len(items)} records; at most {max_records} per request")
        )
    else:
        for i, item in enumerate(items):
            where = f"records[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("features"), dict):
                errors.append(FieldError(f"{where}.features", "expected an object"))
                records.append({})  # keeps the later records' indices; the request fails
                refs.append(None)
                continue
            errors.extend(
                FieldError(f"{where}.{clip(k)}", "unknown field")
                for k in item
                if k not in _RECORD_KEYS
            )
            ref = _patient_ref(item.get("patient_ref"), f"{where}.patient_ref", errors)
            records.append(item["features"])
            refs.append(ref if ref is not None else default_ref)
    return records, refs


def _invalid(errors: list[FieldError]) -> InvalidInputError:
    """The refusal: its message names the fields only (it becomes the audit record's reason,
    which must not hold feature values); each error's reason says what is wrong."""
    fields = ", ".join(dict.fromkeys(e.field for e in errors[:10]))
    more = f" and {len(errors) - 10} more" if len(errors) > 10 else ""
    total = len(errors)
    return InvalidInputError(
        f"the request does not fit ({total} problem{'s' if total > 1 else ''}: {fields}{more})",
        errors=errors,
    )


def columns_of(parsed: Parsed, signature: ModelSignature) -> dict[str, list[Any]]:
    """Validate the records against ``signature`` and return them as columns."""
    from medops.core.columns import validate_columns

    names = signature.feature_names
    known = set(names)
    errors: list[FieldError] = []
    for i, record in enumerate(parsed.records):
        where = parsed.field(i)
        errors.extend(
            FieldError(f"{where}.{n}", "missing feature") for n in names if n not in record
        )
        errors.extend(
            FieldError(f"{where}.{clip(k)}", "unknown feature: not in the model's signature")
            for k in record
            if k not in known
        )
    # The values of the features every record has are checked too: one answer, all problems.
    present = [f for f in signature.inputs if all(f.name in r for r in parsed.records)]
    columns = {f.name: [record[f.name] for record in parsed.records] for f in present}
    checked = (
        signature
        if len(present) == len(names)
        else signature.model_copy(update={"inputs": present})
    )
    try:
        if present:
            validate_columns(checked, columns, n_rows_expected=len(parsed.records))
    except InvalidInputError as exc:
        errors.extend(_renamed(e, parsed) for e in exc.errors)
    if errors:
        raise _invalid(errors)
    return columns


def _renamed(error: FieldError, parsed: Parsed) -> FieldError:
    """``rows[3].age`` (validate_columns' naming) as ``records[3].features.age``."""
    if error.field.startswith("rows[") and "]." in error.field:
        index, _, name = error.field[5:].partition("].")
        if index.isdigit():
            return FieldError(f"{parsed.field(int(index))}.{name}", error.reason)
    return error


def _validated(parsed: Parsed, arms: dict[str, Served]) -> dict[int, dict[str, list[Any]]]:
    """The records as columns for each arm's signature; every problem of any arm refused."""
    columns: dict[int, dict[str, list[Any]]] = {}
    problems = list(parsed.problems)
    for served in arms.values():
        if id(served.signature) not in columns:
            try:
                columns[id(served.signature)] = columns_of(parsed, served.signature)
            except InvalidInputError as exc:
                problems.extend(e for e in exc.errors if e not in problems)
    if problems:
        raise _invalid(problems)
    return columns


def canary_bucket(deployment: str, patient_ref: str | None) -> float:
    """Where a record falls in [0, 100): fixed per (deployment, patient), else random."""
    if patient_ref is None:
        return random.random() * 100  # noqa: S311 - traffic split, not security  # nosec B311
    digest = hashlib.sha256(f"{deployment}\x00{patient_ref}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def _metadatas(metadata: str | None, uses: list[FeatureUse] | None, n: int) -> list[str | None]:
    """Each record's logged metadata: the request's, plus where its features came from."""
    if uses is None:
        return [metadata] * n
    return [record_metadata(metadata, use) for use in uses]


def _feature_answers(predictions: list[dict[str, Any]], uses: list[FeatureUse] | None) -> None:
    """Tell the caller, per prediction, as of when its stored features were and which inputs
    were imputed (deployments bound to feature views only)."""
    if uses is not None:
        for prediction, use in zip(predictions, uses, strict=True):
            prediction["feature_store"] = use.answer()


@dataclass
class Timing:
    """Seconds per stage of one request (queue and infer: the slowest arm)."""

    validate: float = 0.0
    queue: float = 0.0
    infer: float = 0.0
    log: float = 0.0
    explain: float = 0.0
    features: float | None = None  # the feature store lookup (deployments bound to views)
    started: float = field(default_factory=time.perf_counter)

    def as_ms(self, total: float) -> dict[str, float]:
        looked_up = {} if self.features is None else {"features": round(self.features * 1000, 3)}
        return {
            **looked_up,
            "validate": round(self.validate * 1000, 3),
            "queue": round(self.queue * 1000, 3),
            "infer": round(self.infer * 1000, 3),
            "log": round(self.log * 1000, 3),
            "total": round(total * 1000, 3),
        } | ({"explain": round(self.explain * 1000, 3)} if self.explain else {})


def _label(value: Any) -> Any:
    """An ONNX output label as JSON (NumPy scalars and bytes made plain)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode()
    return value


class Predictor:
    """Answers predict requests for the deployments of one runtime."""

    def __init__(
        self,
        runtime: ServingRuntime,
        audit: AuditService,
        clock: Clock,
        settings: Settings,
        metrics: ServingMetrics,
        usage: UsageRecorder | None = None,
        features: FeatureServing | None = None,
    ) -> None:
        self.runtime = runtime
        self.features = features  # deployments whose inputs come from feature views
        self.usage = usage  # serving_usage rows: counted here, written by housekeeping
        self._audit = audit
        self._clock = clock
        self._settings = settings
        self.metrics = metrics
        self._background: set[asyncio.Task[None]] = set()
        self._refreshing = asyncio.Lock()
        self._in_flight = 0  # predict requests being answered (on this event loop)

    async def current(self, name: str) -> Route:
        """The deployment's current snapshot; after a change, requests wait for the one
        refresh that picks it up (so none is answered from a view older than the change)."""
        if self.runtime.stale:
            async with self._refreshing:
                if self.runtime.stale:
                    await run_in_threadpool(self.runtime.refresh)
        return self.runtime.route(name)

    async def predict(
        self, ctx: Context, route: Route, body: bytes, *, fhir: bool = False
    ) -> dict[str, Any]:
        """Score the request's records; returns the JSON answer (predictions and timing),
        or a FHIR RiskAssessment (a Bundle of them for several records)."""
        self._in_flight += 1
        try:
            return await self._predict(ctx, route, body, fhir=fhir)
        finally:
            self._in_flight -= 1

    async def _predict(
        self, ctx: Context, route: Route, body: bytes, *, fhir: bool
    ) -> dict[str, Any]:
        timing = Timing()
        primary = route.primary
        if primary is None:
            raise ServiceUnavailableError(
                f"deployment {route.name} serves nothing: {route.target} points at no version"
            )
        parsed = parse(body, self._settings.serving_max_records)
        if fhir:
            require_subjects(parsed.patient_refs, parsed.single)
        uses = self._look_up(route, parsed, timing)
        arms: dict[str, Served] = {"primary": primary}
        if route.canary is not None:
            arms["canary"] = route.canary
        columns = _validated(parsed, arms)
        timing.validate = time.perf_counter() - timing.started

        assignment = self._assign(route, parsed)
        results, cached = await self._results(route, arms, assignment, parsed, columns, timing)
        explained: dict[int, Explained] = {}
        if parsed.explain or route.explain:
            started = time.perf_counter()
            explained = await self._explain(arms, assignment, columns)
            timing.explain = time.perf_counter() - started
        scored_at = time.perf_counter()
        latency_ms = (scored_at - timing.started) * 1000
        predictions = []
        records = []
        now = self._clock.now()
        metadata = json.dumps(parsed.metadata, sort_keys=True) if parsed.metadata else None
        requester = ctx.actor.username if ctx.actor else "anonymous"
        metadatas = _metadatas(metadata, uses, len(results))
        for i, result in enumerate(results):
            served = arms[assignment[i]]
            prediction = self._answer(route, served, assignment[i], result, parsed.patient_refs[i])
            prediction["cached"] = cached[i]
            explanation = self._explained(prediction, explained.get(i), parsed.records[i])
            predictions.append(prediction)
            records.append(
                self._record(
                    route,
                    served,
                    prediction,
                    parsed.records[i],
                    now,
                    requester,
                    ctx.origin.request_id,
                    latency_ms,
                    metadatas[i],
                    shadow=False,
                    explanation=explanation,
                )
            )
        _feature_answers(predictions, uses)
        # The only request in flight commits its own records (no thread hand-off; nothing
        # else is waiting for the event loop, and nothing to batch them with).
        await self._durable(ctx, records, alone=self._in_flight == 1)
        timing.log = time.perf_counter() - scored_at
        if route.shadow is not None:
            self._start_shadow(ctx, route, route.shadow, parsed, metadata)
        total = time.perf_counter() - timing.started
        self._observe(route, timing, total)
        if self.usage is not None:
            self.usage.scored(route.name, len(results), timing.infer)
        if fhir:
            if parsed.single:
                return risk_assessment(predictions[0], now)
            return bundle(predictions, now)
        return {
            "deployment": route.name,
            "predictions": predictions,
            "timing_ms": timing.as_ms(total),
        }

    def _explained(
        self, prediction: dict[str, Any], found: Explained | None, record: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Put the record's explanation in its answer; return its prediction log row."""
        if found is None:
            return None
        attributions, row = found
        answer = explanation_of(attributions, row, record, self._settings.explain_top)
        prediction["explanation"] = answer
        return explanation_row(prediction["id"], attributions, row, len(answer["contributions"]))

    async def _explain(
        self,
        arms: dict[str, Served],
        assignment: list[str],
        columns: dict[int, dict[str, list[Any]]],
    ) -> dict[int, Explained]:
        """Each record's attributions (and its row in them), computed per arm off the event
        loop; a version that cannot be explained refuses the request (409), before anything
        is logged."""
        from medops.serving.explain import as_arrays

        found: dict[int, Explained] = {}
        for arm, served in arms.items():
            rows = [i for i, a in enumerate(assignment) if a == arm]
            if not rows:
                continue
            slot = served.explainer
            # Built once (reads the artifact and background): off the loop; then at once.
            explainer = slot.get() if slot.ready else await run_in_threadpool(slot.get)
            arrays = as_arrays(columns[id(served.signature)], rows)
            attributions = await run_in_threadpool(explainer.explain, arrays)
            for j, i in enumerate(rows):
                found[i] = (attributions, j)
        return found

    def _look_up(self, route: Route, parsed: Parsed, timing: Timing) -> list[FeatureUse] | None:
        """For a deployment bound to feature views, replace each record (entity keys and
        request values) by the model's inputs from the online store (serving/features.py)."""
        bound = self.features.binding(route.name) if self.features is not None else None
        if bound is None or self.features is None:
            return None
        started = time.perf_counter()
        uses, problems = bound.resolve(self.features.store, parsed, self._clock.now())
        timing.features = time.perf_counter() - started
        if problems or parsed.problems:
            raise _invalid([*parsed.problems, *problems])
        return uses

    async def _durable(
        self, ctx: Context, records: list[tuple[AuditEntry, Rows]], *, alone: bool = False
    ) -> None:
        """Wait until the records are committed; fail closed (503) when that takes too long
        (the records may still land: an answer is never sent without them)."""
        waiter = self._audit.writer.submit_rows(ctx, records, alone=alone)
        try:
            async with asyncio.timeout(LOG_TIMEOUT_S):
                await waiter
        except TimeoutError:
            raise AuditUnavailableError(
                "the prediction could not be made durable in time; it was not answered"
            ) from None

    @staticmethod
    def _assign(route: Route, parsed: Parsed) -> list[str]:
        """The arm of each record: canary by its patient's bucket, else primary."""
        assignment = ["primary"] * len(parsed.records)
        if route.canary is not None:
            for i, ref in enumerate(parsed.patient_refs):
                if canary_bucket(route.name, ref) < route.canary_percent:
                    assignment[i] = "canary"
        return assignment

    async def _results(
        self,
        route: Route,
        arms: dict[str, Served],
        assignment: list[str],
        parsed: Parsed,
        columns: dict[int, dict[str, list[Any]]],
        timing: Timing,
    ) -> tuple[list[RowResult], list[bool]]:
        """Each record's result, from the cache or from its arm's batcher."""
        n = len(parsed.records)
        found: list[RowResult | None] = [None] * n
        cached = [False] * n
        cache = route.cache
        keys: list[str] = []
        if cache is not None:
            keys = [json.dumps(r, sort_keys=True, separators=(",", ":")) for r in parsed.records]
        jobs = []
        for arm, served in arms.items():
            rows = [i for i in range(n) if assignment[i] == arm]
            if cache is not None and rows:
                misses = []
                for i in rows:
                    hit = cache.get((served.digest, keys[i]))
                    if hit is None:
                        misses.append(i)
                    else:
                        found[i], cached[i] = hit, True
                if len(misses) < len(rows):
                    self.metrics.cache_hits.labels(route.name).inc(len(rows) - len(misses))
                if misses:
                    self.metrics.cache_misses.labels(route.name).inc(len(misses))
                rows = misses
            if rows:
                jobs.append(self._score(route, arm, served, columns[id(served.signature)], rows))
        for rows, scored, arm_timing, served in await asyncio.gather(*jobs):
            timing.queue = max(timing.queue, arm_timing.get("queue", 0.0))
            timing.infer = max(timing.infer, arm_timing.get("infer", 0.0))
            for i, result in zip(rows, scored, strict=True):
                found[i] = result
                if cache is not None:
                    cache.put((served.digest, keys[i]), result)
        results = [r for r in found if r is not None]
        assert len(results) == n
        return results, cached

    async def _score(
        self,
        route: Route,
        arm: str,
        served: Served,
        columns: dict[str, list[Any]],
        rows: list[int],
    ) -> tuple[list[int], list[RowResult], dict[str, float], Served]:
        """Run ``rows`` of the request through ``served``'s batcher."""
        subset = (
            columns
            if len(rows) == len(next(iter(columns.values())))
            else {name: [values[i] for i in rows] for name, values in columns.items()}
        )
        feed = served.onnx.feed(subset)
        arm_timing: dict[str, float] = {}
        started = time.perf_counter()
        ok = False
        try:
            scored = await served.batcher.submit(
                [(feed, j) for j in range(len(rows))],
                timeout_s=self._settings.serving_deadline_ms / 1000,
                timing=arm_timing,
                # Alone in flight, no request can join its batch (one client at a time, as
                # an EHR's synchronous call): never wait for company.
                company=self._in_flight > 1,
            )
            ok = True
        finally:
            self.runtime.observe(
                route, arm, served, ok, (time.perf_counter() - started) * 1000, len(rows)
            )
        self.metrics.records.labels(route.name, arm, str(served.version)).inc(len(rows))
        return rows, scored, arm_timing, served

    @staticmethod
    def _answer(
        route: Route, served: Served, arm: str, result: RowResult, patient_ref: str | None
    ) -> dict[str, Any]:
        label, probabilities = result
        classes = served.signature.outputs.class_labels
        positive = served.signature.outputs.positive_index
        return {
            "id": uuid.uuid4().hex,
            "deployment": route.name,
            "model": served.model,
            "version": served.version,
            "artifact_digest": served.digest,
            "arm": arm,
            "patient_ref": patient_ref,
            "label": _label(label),
            "probabilities": {
                str(c): float(p) for c, p in zip(classes, probabilities, strict=True)
            },
            "score": float(probabilities[positive]),
            "positive_class": served.signature.outputs.positive,
        }

    @staticmethod
    def _record(
        route: Route,
        served: Served,
        prediction: dict[str, Any],
        features: dict[str, Any],
        now: Any,
        requester: str,
        request_id: str | None,
        latency_ms: float,
        metadata: str | None,
        *,
        shadow: bool,
        explanation: dict[str, Any] | None = None,
    ) -> tuple[AuditEntry, Rows]:
        row = {
            "id": prediction["id"],
            "occurred_at": now,
            "deployment": route.name,
            "model_name": served.model,
            "version": served.version,
            "artifact_digest": served.digest,
            "arm": prediction["arm"],
            "shadow": shadow,
            "cached": bool(prediction.get("cached", False)),
            "requester": requester,
            "patient_ref": prediction["patient_ref"],
            "request_id": request_id,
            "inputs": json.dumps(features, sort_keys=True),
            "label": json.dumps(prediction["label"]),
            "probabilities": json.dumps(prediction["probabilities"], sort_keys=True),
            "latency_ms": latency_ms,
            "metadata_json": metadata,
            "features": served.packer.pack(features),
            "score": prediction["score"],
        }
        entry = AuditEntry(
            action="prediction.shadow" if shadow else "prediction.create",
            resource_type="prediction",
            resource_id=prediction["id"],
            patient_ref=prediction["patient_ref"],
            details={
                "deployment": route.name,
                "model": served.model,
                "version": served.version,
                "arm": prediction["arm"],
                # Binds the row into the chain: audit verify recomputes it from the stored row.
                "row_digest": prediction_digest(row),
            },
        )
        if explanation is None:
            return entry, ((Prediction, row),)
        # The explanation shown, bound into the same record (serving/explain.py).
        entry.details["explanation_digest"] = explanation_digest(explanation)
        return entry, ((Prediction, row), (PredictionExplanation, explanation))

    def _start_shadow(
        self,
        ctx: Context,
        route: Route,
        shadow: Served,
        parsed: Parsed,
        metadata: str | None,
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._shadow(ctx, route, shadow, parsed, metadata)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _shadow(
        self, ctx: Context, route: Route, shadow: Served, parsed: Parsed, metadata: str | None
    ) -> None:
        """Score a copy with the shadow version and log it; never touches the response."""
        try:
            started = time.perf_counter()
            columns = columns_of(parsed, shadow.signature)
            rows = list(range(len(parsed.records)))
            _, scored, _, _ = await self._score(route, "shadow", shadow, columns, rows)
            latency_ms = (time.perf_counter() - started) * 1000
            now = self._clock.now()
            requester = ctx.actor.username if ctx.actor else "anonymous"
            records = []
            for i, result in enumerate(scored):
                answer = self._answer(route, shadow, "shadow", result, parsed.patient_refs[i])
                records.append(
                    self._record(
                        route,
                        shadow,
                        answer,
                        parsed.records[i],
                        now,
                        requester,
                        ctx.origin.request_id,
                        latency_ms,
                        metadata,
                        shadow=True,
                    )
                )
            await self._durable(ctx, records)
        except MedopsError as exc:
            log.warning("shadow scoring failed", deployment=route.name, error=exc.code)
        except Exception:
            log.warning("shadow scoring failed", deployment=route.name, exc_info=True)

    def _observe(self, route: Route, timing: Timing, total: float) -> None:
        m = self.metrics
        m.latency.labels(route.name).observe(total)
        m.stages.labels(route.name, "validate").observe(timing.validate)
        m.stages.labels(route.name, "queue").observe(timing.queue)
        m.stages.labels(route.name, "infer").observe(timing.infer)
        m.stages.labels(route.name, "log").observe(timing.log)

    async def drain(self) -> None:
        """Wait for shadow scoring still running (at shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
