"""The in-memory view of what each deployment serves, and the loaded models behind it.

A ``Route`` is an immutable snapshot of one deployment: its primary version, canary and shadow,
each a ``Served`` model (an ONNX Runtime session with its own micro-batcher), and its cache.
A request takes one snapshot when it starts and uses it to the end, so a promotion or rollback
that lands meanwhile never mixes versions within a response and drops nothing: the old
``Served`` objects stay alive while anyone holds them. ``refresh`` rebuilds every snapshot from
the database and swaps the table in one assignment; this process's own changes mark the view
stale at once (listeners), other processes' changes are found by ``poll``.

Canary health is watched per arm over the last ``min_requests`` records: when the canary's
error rate or p99 latency crosses the deployment's limits, ``on_unhealthy`` is called once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from medops.errors import NotFoundError
from medops.logs import get_logger
from medops.registry.refs import Ref
from medops.serving.batcher import MicroBatcher
from medops.serving.explain import ExplainerSlot
from medops.serving.schemas import ArmStats, RolloutLimits

if TYPE_CHECKING:
    import numpy as np

    from medops.config import Settings
    from medops.core.explain import Explainer
    from medops.core.onnx_model import OnnxModel
    from medops.core.packed import FeaturePacker
    from medops.core.signature import ModelSignature
    from medops.registry.service import RegistryService
    from medops.serving.deployments import DeploymentService
    from medops.serving.tables import Deployment
    from medops.serving.telemetry import ServingMetrics

log = get_logger("medops.serving")

Feed = dict[str, "np.ndarray"]
RowRef = tuple[Feed, int]  # (the feed of one request's rows for this model, row index)
RowResult = tuple[Any, "np.ndarray"]  # (label, probabilities of the row)


class PredictionCache:
    """A bounded LRU of results keyed by (artifact digest, canonical record); a key names
    the version's artifact, so a result of one version is never returned for another."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], RowResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> RowResult | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple[str, str], value: RowResult) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def _run_rows(onnx: OnnxModel) -> Callable[[list[RowRef]], list[RowResult]]:
    """The batcher's ``run_batch``: one ONNX Runtime call for the rows of many requests.
    A request's rows arrive together and in order, so its feed is concatenated whole."""

    def run(rows: list[RowRef]) -> list[RowResult]:
        import numpy as np

        feeds: list[Feed] = []
        last: Feed | None = None
        for feed, _ in rows:
            if feed is not last:
                feeds.append(feed)
                last = feed
        if len(feeds) == 1:
            merged = feeds[0]
        else:
            merged = {name: np.concatenate([f[name] for f in feeds]) for name in feeds[0]}
        labels, probabilities = onnx.run_feed(merged)
        return [(labels[i], probabilities[i]) for i in range(len(rows))]

    return run


@dataclass(eq=False)
class Served:
    """One model version loaded for serving."""

    model: str
    version: int
    version_id: str
    digest: str
    signature: ModelSignature
    onnx: OnnxModel
    batcher: MicroBatcher[RowRef, RowResult]
    packer: FeaturePacker  # its records' features as the prediction log packs them
    explainer: ExplainerSlot  # built on the first explained request (serving/explain.py)


@dataclass(frozen=True, eq=False)
class Route:
    """What one deployment serves, as of the last refresh."""

    name: str
    model: str
    target: str
    primary: Served | None
    canary: Served | None
    canary_percent: int
    shadow: Served | None
    cache: PredictionCache | None
    limits: RolloutLimits
    revision: int
    explain: bool = False  # every prediction explained, asked or not


@dataclass
class ArmWindow:
    """The last records of one arm (deployment, arm, version): outcome and latency."""

    size: int
    records: int = 0
    errors: int = 0
    recent: deque[tuple[bool, float]] = field(default_factory=deque)
    tripped: bool = False
    # Records per RATE_BUCKET_SECONDS bucket of the monotonic clock, the last RATE_BUCKETS.
    buckets: deque[list[int]] = field(default_factory=deque)

    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, ok: bool, latency_ms: float, count: int = 1) -> None:
        bucket = int(time.monotonic()) // RATE_BUCKET_SECONDS
        with self.lock:
            if self.buckets and self.buckets[-1][0] == bucket:
                self.buckets[-1][1] += count
            else:
                self.buckets.append([bucket, count])
                if len(self.buckets) > RATE_BUCKETS:
                    self.buckets.popleft()
            for _ in range(count):
                self.records += 1
                self.errors += 0 if ok else 1
                self.recent.append((ok, latency_ms))
                if len(self.recent) > self.size:
                    self.recent.popleft()

    def stats(self) -> ArmStats:
        with self.lock:  # read from request threads while the event loop adds
            recent = list(self.recent)
            buckets = [(b, c) for b, c in self.buckets]
        latencies = sorted(latency for _, latency in recent)
        n = len(recent)
        bad = sum(1 for ok, _ in recent if not ok)
        return ArmStats(
            records=self.records,
            errors=self.errors,
            error_rate=bad / n if n else None,
            p50_ms=latencies[(n - 1) // 2] if n else None,
            p99_ms=latencies[min(n - 1, int(0.99 * n))] if n else None,
            rate_per_second=_rate(buckets),
        )


RATE_BUCKET_SECONDS = 10
RATE_BUCKETS = 31  # the last five minutes, and the bucket filling now


def _rate(buckets: list[tuple[int, int]]) -> float:
    """Records per second over the last five minutes (the filling bucket counts for the
    seconds it has run)."""
    now = time.monotonic()
    current = int(now) // RATE_BUCKET_SECONDS
    oldest = current - RATE_BUCKETS + 1
    counted = sum(c for b, c in buckets if b >= oldest)
    seconds = (RATE_BUCKETS - 1) * RATE_BUCKET_SECONDS + (now - current * RATE_BUCKET_SECONDS)
    return counted / seconds


class ServingRuntime:
    """The deployments this process serves, refreshed atomically."""

    def __init__(
        self,
        deployments: DeploymentService,
        registry: RegistryService,
        settings: Settings,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._deployments = deployments
        self._registry = registry
        self._settings = settings
        self._routes: dict[str, Route] = {}
        self._served: dict[str, Served] = {}
        self._caches: dict[str, PredictionCache] = {}
        self._lock = threading.Lock()
        self._generation = 1  # bumped by every change this process hears of
        self._built = 0  # the generation the routes were built at
        self._fingerprint: tuple[int, int, int] | None = None
        # Per (deployment, arm, version, routing revision): a changed canary starts afresh.
        self.windows: dict[tuple[str, str, int, int], ArmWindow] = {}
        self.on_unhealthy: Callable[[str, int, str], None] | None = None
        self._providers: list[str] | None = None

    # -- the view -------------------------------------------------------------------------

    @property
    def stale(self) -> bool:
        """True from a change until a refresh that started after it has finished."""
        return self._built != self._generation

    def mark_stale(self) -> None:
        self._generation += 1

    def route(self, name: str) -> Route:
        """The current snapshot of deployment ``name`` (refresh first when stale)."""
        route = self._routes.get(name)
        if route is None:
            raise NotFoundError(f"no deployment named {name!r}")
        return route

    def refresh(self) -> None:
        """Rebuild every route from the database; loads versions not loaded yet."""
        with self._lock:
            generation = self._generation  # a change landing during the rebuild: still stale
            fingerprint = self._deployments.fingerprint()
            routes: dict[str, Route] = {}
            for row, arms in self._deployments.resolved():
                routes[row.name] = self._build(row, arms)
            self._routes = routes
            current = {(r.name, r.revision) for r in routes.values()}
            for key in [k for k in self.windows if (k[0], k[3]) not in current]:
                del self.windows[key]  # figures of a routing that no longer exists
            self._fingerprint = fingerprint
            self._built = generation

    def poll(self) -> bool:
        """Refresh when another process changed a deployment or alias; True when it did."""
        if self._deployments.fingerprint() == self._fingerprint and not self.stale:
            return False
        self.refresh()
        return True

    def _build(self, row: Deployment, arms: dict[str, Any]) -> Route:
        from medops.serving.deployments import limits_of, target_of

        cache = None
        if row.cache_size > 0:
            cache = self._caches.get(row.name)
            if cache is None or cache.capacity != row.cache_size:
                cache = self._caches[row.name] = PredictionCache(row.cache_size)
        return Route(
            name=row.name,
            model=row.model_name,
            target=target_of(row),
            primary=self._serve_or_none(row.name, "primary", arms["primary"]),
            canary=self._serve_or_none(row.name, "canary", arms["canary"])
            if row.canary_percent > 0
            else None,
            canary_percent=row.canary_percent,
            shadow=self._serve_or_none(row.name, "shadow", arms["shadow"]),
            cache=cache,
            limits=limits_of(row),
            revision=row.revision,
            explain=row.explain,
        )

    def _serve_or_none(self, deployment: str, arm: str, version: Any) -> Served | None:
        """One arm's model; an arm that cannot be loaded (a missing or damaged artifact) is
        left out and logged, so it cannot take the other arms and deployments down with it:
        without a primary the deployment answers 503, without a canary all go to primary."""
        try:
            return self._serve(version)
        except Exception as exc:  # noqa: BLE001 - isolated per arm, reported
            log.error(
                "a deployment arm could not be loaded",
                deployment=deployment,
                arm=arm,
                version=getattr(version, "version", None),
                error=type(exc).__name__,
            )
            return None

    def _serve(self, version: Any) -> Served | None:
        if version is None:
            return None
        served = self._served.get(version.id)
        if served is not None:
            return served
        from medops.core.onnx_model import OnnxModel
        from medops.core.packed import FeaturePacker

        model_name = self._deployments.model_name(version.model_id)
        info, data = self._registry.artifact(Ref(model_name, version=version.version))
        onnx = OnnxModel(
            data,
            info.signature,
            providers=self.providers(),
            intra_op_threads=self._settings.serving_threads,
        )
        settings = self._settings
        on_batch = None
        if self._metrics is not None:
            sizes = self._metrics.batch_size.labels(model_name, str(version.version))

            def on_batch(rows: int, _seconds: float) -> None:
                sizes.observe(rows)

        served = Served(
            model=model_name,
            version=version.version,
            version_id=version.id,
            digest=info.artifact_digest,
            signature=info.signature,
            onnx=onnx,
            packer=FeaturePacker(info.signature),
            explainer=ExplainerSlot(self._explainer_of(model_name, version.version)),
            batcher=MicroBatcher(
                _run_rows(onnx),
                max_batch_size=settings.serving_max_batch_size,
                max_delay_s=settings.serving_max_delay_ms / 1000,
                on_batch=on_batch,
            ),
        )
        self._served[version.id] = served
        log.info("model loaded for serving", model=model_name, version=version.version)
        return served

    def _explainer_of(self, model_name: str, number: int) -> Callable[[], Explainer]:
        """How to build the version's explainer when first asked: its artifact, and its
        background (serving/explain.py) from the latest validation data."""

        def build() -> Explainer:
            import numpy as np

            from medops.core.explain import explainer_for

            ref = Ref(model_name, version=number)
            info, data = self._registry.artifact(ref)
            rows = self._registry.explain_background(ref, self._settings.explain_background_rows)
            background = None
            if rows is not None:
                background = {name: np.asarray(values) for name, values in rows.items()}
            return explainer_for(
                data,
                info.signature,
                background=background,
                class_index=info.signature.outputs.positive_index,
            )

        return build

    def providers(self) -> list[str]:
        """The configured execution providers this ONNX Runtime has, in order."""
        if self._providers is None:
            import onnxruntime as ort  # type: ignore[import-untyped]

            available = set(ort.get_available_providers())
            wanted = list(self._settings.onnx_providers)
            missing = [p for p in wanted if p not in available]
            if missing:
                log.warning("execution providers not available here", missing=missing)
            chosen = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
            self._providers = chosen
        return self._providers

    # -- canary health --------------------------------------------------------------------

    def observe(
        self, route: Route, arm: str, served: Served, ok: bool, latency_ms: float, count: int
    ) -> None:
        key = (route.name, arm, served.version, route.revision)
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = ArmWindow(size=route.limits.min_requests)
        window.add(ok, latency_ms, count)
        if arm != "canary" or window.tripped or len(window.recent) < route.limits.min_requests:
            return
        stats = window.stats()
        reasons = []
        if stats.error_rate is not None and stats.error_rate > route.limits.max_error_rate:
            reasons.append(
                f"error rate {stats.error_rate:.2%} over {route.limits.max_error_rate:.2%}"
            )
        if stats.p99_ms is not None and stats.p99_ms > route.limits.max_p99_ms:
            reasons.append(f"p99 {stats.p99_ms:.1f} ms over {route.limits.max_p99_ms:g} ms")
        if reasons and self.on_unhealthy is not None:
            window.tripped = True
            reason = (
                f"canary version {served.version} crossed its limits over the last "
                f"{len(window.recent)} records: " + "; ".join(reasons)
            )
            self.on_unhealthy(route.name, served.version, reason)

    def live(self, name: str) -> dict[str, ArmStats]:
        """What this process saw of each arm of ``name``, keyed ``arm/version``."""
        return {
            f"{arm}/{version}": window.stats()
            for (deployment, arm, version, _), window in list(self.windows.items())
            if deployment == name
        }

    async def close(self) -> None:
        for served in list(self._served.values()):
            await served.batcher.close()
