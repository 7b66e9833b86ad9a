"""The FastAPI app factory: the whole HTTP surface of one medops installation."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import medops
from medops.alerting.dispatch import default_holder, dispatcher_for
from medops.alerting.outbox_metrics import NotificationCollector
from medops.alerting.telemetry import AlertCollector
from medops.api.console.routes import routers as console_routers
from medops.api.errors import audit_unhandled, install_error_handlers
from medops.api.fastlane import PredictFastLane
from medops.api.middleware import RequestMiddleware
from medops.api.routers import (
    alerts,
    audit,
    auth,
    breakglass,
    datasets,
    deployments,
    features,
    features_online,
    health,
    lineage,
    models,
    monitoring,
    notifications,
    plans,
    slo,
    tokens,
    training,
    users,
)
from medops.api.telemetry import AuditWriterCollector, HttpMetrics
from medops.config import Settings, load_settings
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.errors import AuditTamperedError
from medops.jobs import Leader, process_holder
from medops.lineage.schemas import SendSummary
from medops.logs import get_logger
from medops.monitoring.telemetry import MonitoringCollector
from medops.services import Services, build_services
from medops.serving.predict import Predictor
from medops.serving.recorder import FLUSH_SECONDS as USAGE_FLUSH_SECONDS
from medops.serving.runtime import ServingRuntime
from medops.serving.telemetry import ServingMetrics

SWEEP_SECONDS = 60
TICK_SECONDS = 1
REFUSAL_BACKOFF = 5  # checkpoint intervals skipped after a refused checkpoint
SYSTEM_CONTEXT = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))
log = get_logger("medops.app")


async def _pause(stopping: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``; True when the app is stopping (then the loop returns). The loops
    stop this way, not by cancellation: a cancelled task abandons the thread it waits on,
    which would go on using the database after the services were closed."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
    return stopping.is_set()


async def _release(services: Services, *leaders: Leader) -> None:
    """At shutdown, give up the leases this process holds, so another replica takes the jobs
    over at its next turn instead of after the leases run out (a rolling upgrade)."""
    for leader in leaders:
        if leader.leading:
            try:
                await run_in_threadpool(leader.lease.release, leader.name, leader.holder,
                                        services.clock.now())  # fmt: skip
            except Exception:
                log.warning("job lease not released; it runs out", job=leader.name, exc_info=True)


async def _housekeeping(services: Services, stopping: asyncio.Event) -> None:
    """Every minute, end and audit logins that expired while nobody used them, and forget
    login failures too old to count (the ``sessions.sweep`` lease: one replica). Write this
    process's counts of refused requests whose minute has closed (every TICK_SECONDS). Sign a
    checkpoint of new audit records every MEDOPS_AUDIT_CHECKPOINT_SECONDS, or sooner once
    MEDOPS_AUDIT_CHECKPOINT_RECORDS await one (checked every TICK_SECONDS), when this process
    holds the ``audit.checkpoint`` lease: one replica signs the records of every replica's
    chain. A checkpoint refused for tampering (counted and audited by the checkpointer) is
    logged as an error; the server keeps serving and tries again REFUSAL_BACKOFF intervals
    later."""
    settings = services.settings
    holder = process_holder(services)
    sweeper = Leader(services.db, "sessions.sweep", holder, SWEEP_SECONDS)
    signer = Leader(services.db, "audit.checkpoint", holder, settings.audit_checkpoint_seconds)
    since_sweep = since_checkpoint = 0
    while not await _pause(stopping, TICK_SECONDS):
        since_sweep += TICK_SECONDS
        since_checkpoint += TICK_SECONDS
        try:
            await run_in_threadpool(services.refusals.flush)
            if since_sweep % USAGE_FLUSH_SECONDS == 0:  # serving_usage rows, every ~10 s
                await services.usage.flush_async(services.db)
            if since_sweep >= SWEEP_SECONDS:
                since_sweep = 0
                if await run_in_threadpool(sweeper.turn, services.clock.now()):
                    ended = await run_in_threadpool(services.logins.sweep_expired)
                    if ended:
                        log.info("expired sessions ended", count=ended)
                    await run_in_threadpool(services.logins.sweep_throttle)
                    sweeper.ran()
            due = since_checkpoint >= settings.audit_checkpoint_seconds
            if not due and since_checkpoint >= 0:
                waiting = await run_in_threadpool(services.checkpoints.pending_records)
                due = waiting >= settings.audit_checkpoint_records
            if due:
                since_checkpoint = 0
                if await run_in_threadpool(signer.turn, services.clock.now()):
                    made = await run_in_threadpool(services.checkpoints.checkpoint)
                    signer.ran(to_seq=made["to_seq"] if made else None)
                    await run_in_threadpool(signer.turn, services.clock.now())  # a long one
                    if made:
                        log.info("audit checkpoint signed", to_seq=made["to_seq"])
        except AuditTamperedError as exc:  # counted and audited by the checkpointer
            log.error("audit tampering detected; checkpoint refused", reason=exc.message)
            # Try again after REFUSAL_BACKOFF intervals, not at every tick: the range keeps
            # failing until an operator acts (medops audit checkpoint --accept-problems).
            since_checkpoint = -REFUSAL_BACKOFF * settings.audit_checkpoint_seconds
        except Exception:
            log.warning("housekeeping failed; retried at the next tick", exc_info=True)
    await _release(services, sweeper, signer)


async def _monitoring(
    services: Services, seconds: float, window: str, stopping: asyncio.Event
) -> None:
    """Compute the due monitoring windows every ``seconds`` (MEDOPS_MONITOR_INTERVAL_SECONDS)
    when this process holds the ``monitoring.run`` lease: one replica computes each period
    (a run started by hand on any replica may race it; each window is stored once all the
    same, by the unique (deployment, version, window, sequence) of its row)."""
    ctx = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))
    leader = Leader(services.db, "monitoring.run", process_holder(services), seconds)
    while not await _pause(stopping, seconds):
        try:
            if await run_in_threadpool(leader.turn, services.clock.now()):
                summary = await run_in_threadpool(services.monitoring.run, ctx, window)
                leader.ran(windows=len(summary.computed))
                await run_in_threadpool(leader.turn, services.clock.now())  # a long run
        except Exception:
            log.warning("monitoring run failed; retried at the next interval", exc_info=True)
    await _release(services, leader)


async def _rollouts(services: Services, seconds: float, stopping: asyncio.Event) -> None:
    """Advance the rollouts change-control plans allow every ``seconds``
    (MEDOPS_ROLLOUT_INTERVAL_SECONDS), when this process holds the ``retraining.rollout``
    lease: one replica moves each rollout per period."""
    leader = Leader(services.db, "retraining.rollout", process_holder(services), seconds)
    while not await _pause(stopping, seconds):
        try:
            if await run_in_threadpool(leader.turn, services.clock.now()):
                moved = await run_in_threadpool(services.rollouts.tick, SYSTEM_CONTEXT)
                leader.ran(rollouts=len(moved))
        except Exception:
            log.warning("rollout tick failed; retried at the next interval", exc_info=True)
    await _release(services, leader)


async def _alerting(services: Services, seconds: float, stopping: asyncio.Event) -> None:
    """Evaluate alert rules every ``seconds`` (MEDOPS_ALERT_EVALUATE_SECONDS), when this
    process holds the ``alerts.evaluate`` lease: one replica evaluates each tick."""
    leader = Leader(services.db, "alerts.evaluate", process_holder(services), seconds)
    while not await _pause(stopping, seconds):
        try:
            if await run_in_threadpool(leader.turn, services.clock.now()):
                await run_in_threadpool(services.alerts.evaluate, SYSTEM_CONTEXT)
                leader.ran()
                await run_in_threadpool(leader.turn, services.clock.now())  # a long run
        except Exception:
            log.warning("alert evaluation failed; retried at the next tick", exc_info=True)
    await _release(services, leader)


async def _training_triggers(services: Services, seconds: float, stopping: asyncio.Event) -> None:
    """Evaluate the retraining triggers every ``seconds`` (MEDOPS_TRAINING_TRIGGER_SECONDS)
    when this process holds the ``training.triggers`` lease: one replica evaluates each tick
    (and a second request for the same model is refused by the database all the same)."""
    leader = Leader(services.db, "training.triggers", process_holder(services), seconds)
    while not await _pause(stopping, seconds):
        try:
            if await run_in_threadpool(leader.turn, services.clock.now()):
                result = await run_in_threadpool(
                    services.training_triggers.evaluate, SYSTEM_CONTEXT
                )
                leader.ran(triggers=result.checked, events=len(result.events))
                await run_in_threadpool(leader.turn, services.clock.now())  # a long run
        except Exception:
            log.warning("trigger evaluation failed; retried at the next tick", exc_info=True)


async def _materializing(services: Services, seconds: float, stopping: asyncio.Event) -> None:
    """Materialize every feature view a deployment serves from, every ``seconds``
    (MEDOPS_FEATURE_MATERIALIZE_SECONDS), when this process holds the ``features.materialize``
    lease: one replica per period (a run by hand may race it: the online store keeps the newer
    row whatever the order of writes)."""
    from medops.features.online.schemas import MaterializeIn

    leader = Leader(services.db, "features.materialize", process_holder(services), seconds)
    while not await _pause(stopping, seconds):
        try:
            if await run_in_threadpool(leader.turn, services.clock.now()):
                done = await run_in_threadpool(
                    services.feature_online.materialize, SYSTEM_CONTEXT, MaterializeIn()
                )
                leader.ran(views=len(done.runs), rows=sum(r.rows_written for r in done.runs))
                await run_in_threadpool(leader.turn, services.clock.now())  # a long run
        except Exception:
            log.warning("feature materialization failed; retried at the next tick", exc_info=True)
    await _release(services, leader)


async def _dispatch(services: Services, seconds: float, stopping: asyncio.Event) -> None:
    """Send the due alert notifications every ``seconds`` (MEDOPS_ALERT_DISPATCH_SECONDS).
    Every replica runs it: each row is claimed by one conditional UPDATE, so one sends it."""
    dispatcher = dispatcher_for(services, f"{default_holder()[:48]}-{id(services):x}")
    while not await _pause(stopping, seconds):
        try:
            summary = await run_in_threadpool(dispatcher.run_once)
            if summary.claimed:
                log.info("alert notifications dispatched", **summary.model_dump())
        except Exception:
            log.warning("alert dispatch failed; retried at the next tick", exc_info=True)


async def _serving_refresh(
    runtime: ServingRuntime, seconds: float, stopping: asyncio.Event
) -> None:
    """Pick up deployment and alias changes made by other processes (replicas, the CLI on
    the server's database)."""
    while not await _pause(stopping, seconds):
        try:
            if await run_in_threadpool(runtime.poll):
                log.info("serving view refreshed")
        except Exception:
            log.warning("serving refresh failed; retried at the next tick", exc_info=True)


def _serving(services: Services, metrics: ServingMetrics) -> tuple[ServingRuntime, Predictor]:
    """The serving runtime of one app, ending an unhealthy canary automatically (off the
    request path, audited as the system)."""
    runtime = ServingRuntime(services.deployments, services.registry, services.settings, metrics)

    def auto_rollback(name: str, version: int, reason: str) -> None:
        try:
            if services.deployments.auto_rollback(name, version, reason):
                metrics.rollbacks.labels(name).inc()
                log.warning("canary rolled back automatically", deployment=name, version=version)
        except Exception:
            log.exception("automatic canary rollback failed", deployment=name)

    def on_unhealthy(name: str, version: int, reason: str) -> None:
        asyncio.get_running_loop().run_in_executor(None, auto_rollback, name, version, reason)

    runtime.on_unhealthy = on_unhealthy
    services.usage.providers = runtime.providers
    predictor = Predictor(
        runtime,
        services.audit,
        services.clock,
        services.settings,
        metrics,
        services.usage,
        services.feature_online.serving,
    )
    return runtime, predictor


def settle_heap() -> None:
    """Everything built so far (modules, app, services) lives as long as the process: keep it
    out of the garbage collector's full passes, whose pauses would otherwise grow with it and
    land on whichever requests are in flight (the latency tail)."""
    gc.collect()
    gc.freeze()


def worker_app() -> FastAPI:
    """The app of one worker process of ``medops server --workers N`` (uvicorn's factory):
    built from the environment's settings, like the parent's."""
    from medops.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    application = create_app(settings)
    settle_heap()
    return application


def _lineage_pass(services: Services, seconds: float) -> Callable[[], SendSummary]:
    """A pass of the OpenLineage outbox when this process holds the ``lineage.send`` lease:
    one replica sends, so the events leave in their order (row locks alone would let two
    replicas send two batches out of order)."""
    leader = Leader(services.db, "lineage.send", process_holder(services), seconds)

    def send_pass() -> SendSummary:
        if not leader.turn(services.clock.now()):
            return SendSummary(sent=0, failed=0, pending=0, target=None)
        summary = services.lineage.send()
        leader.ran(sent=summary.sent)
        return summary

    return send_pass


def _loops(
    services: Services, runtime: ServingRuntime, stopping: asyncio.Event
) -> list[asyncio.Task[None]]:
    """The app's background loops: housekeeping and the serving refresh always; monitoring,
    alert evaluation and notification dispatch when their interval is above 0; the
    OpenLineage sender when a target is set. Across replicas, the jobs that must run once per
    period (session sweep, audit checkpoints, monitoring, alert evaluation, the OpenLineage
    sender) run under a lease (``medops.jobs.Leader``); notification dispatch runs
    everywhere, each row claimed by one replica; the refresh, usage and refusal counts are
    each replica's own."""
    settings = services.settings
    loops = [
        asyncio.create_task(_housekeeping(services, stopping)),
        asyncio.create_task(_serving_refresh(runtime, settings.serving_refresh_seconds, stopping)),
    ]
    if settings.monitor_interval_seconds > 0:
        loops.append(
            asyncio.create_task(
                _monitoring(
                    services, settings.monitor_interval_seconds, settings.monitor_window, stopping
                )
            )
        )
    if settings.alert_evaluate_seconds > 0:
        loops.append(
            asyncio.create_task(_alerting(services, settings.alert_evaluate_seconds, stopping))
        )
    if settings.alert_dispatch_seconds > 0:
        loops.append(
            asyncio.create_task(_dispatch(services, settings.alert_dispatch_seconds, stopping))
        )
    if settings.training_trigger_seconds > 0:
        loops.append(
            asyncio.create_task(
                _training_triggers(services, settings.training_trigger_seconds, stopping)
            )
        )
    if settings.rollout_interval_seconds > 0:
        loops.append(
            asyncio.create_task(_rollouts(services, settings.rollout_interval_seconds, stopping))
        )
    if settings.feature_materialize_seconds > 0:
        loops.append(
            asyncio.create_task(
                _materializing(services, settings.feature_materialize_seconds, stopping)
            )
        )
    if settings.openlineage_url:
        from medops.lineage.outbox import SEND_SECONDS, run_loop

        sender = run_loop(_lineage_pass(services, SEND_SECONDS), SEND_SECONDS, stopping)
        loops.append(asyncio.create_task(sender))
    return loops


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    owns_services: bool | None = None,
) -> FastAPI:
    """Build the app for ``services`` (or for ``settings``, or for the environment's settings).

    The app closes the services at shutdown when it owns them: by default, when it built them.
    """
    owned = services is None if owns_services is None else owns_services
    if services is None:
        services = build_services(settings or load_settings())
    metrics = HttpMetrics()
    runtime, predictor = _serving(services, ServingMetrics(metrics.registry))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Told of this process's changes while the app runs (a lifespan may be entered
        # more than once for one app, e.g. by several in-process clients).
        services.deployments.listeners.append(runtime.mark_stale)
        services.lifecycle.listeners.append(runtime.mark_stale)
        try:  # an installation from before encryption at rest: seal its TOTP secrets now
            await run_in_threadpool(services.mfa_secrets.check_at_start, SYSTEM_CONTEXT)
        except Exception:
            log.exception("TOTP secrets could not be checked at start")
        stopping = asyncio.Event()
        loops = _loops(services, runtime, stopping)
        try:
            yield
        finally:
            stopping.set()  # each loop ends after the database work it is doing
            await asyncio.gather(*loops, return_exceptions=True)
            await predictor.drain()
            try:
                await services.usage.flush_async(services.db)
            except Exception:
                log.warning("serving usage could not be written at shutdown", exc_info=True)
            await runtime.close()
            services.deployments.listeners.remove(runtime.mark_stale)
            services.lifecycle.listeners.remove(runtime.mark_stale)
            if owned:
                services.close()

    app = FastAPI(
        title="medops",
        version=medops.__version__,
        summary="Clinical ML models from notebook to patients, under hospital governance.",
        openapi_url=None,  # served by routers/health.py as a declared, metered route
        docs_url=None,  # FastAPI's Swagger UI loads from a CDN: console/apidocs.py serves /docs
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.metrics = metrics
    app.state.metrics.registry.register(
        AuditWriterCollector(services.audit.writer.stats, services.checkpoints)
    )
    app.state.metrics.registry.register(MonitoringCollector(services.db))
    app.state.metrics.registry.register(AlertCollector(services.db))
    app.state.metrics.registry.register(NotificationCollector(services.db))
    app.state.runtime = runtime
    app.state.predictor = predictor
    install_error_handlers(app)
    # Routes are matched in order: the predict route (the hot path) first.
    for router in (
        deployments.predict_router,
        health.router,
        auth.router,
        users.router,
        tokens.router,
        audit.router,
        breakglass.router,
        plans.router,  # before models' /{name}/versions/{selector}
        plans.jobs,
        models.router,
        deployments.router,
        monitoring.router,
        notifications.router,  # before alerts/{alert_id}
        alerts.router,
        slo.router,
        datasets.router,
        lineage.router,
        training.router,
        features.router,
        features_online.router,
        *console_routers(),
    ):
        app.include_router(router)
    app.add_middleware(
        RequestMiddleware,
        metrics=app.state.metrics,
        max_body_bytes=services.settings.max_request_bytes,
        fast_lane=PredictFastLane(app, services.settings.max_request_bytes)
        if services.settings.serving_fast_lane
        else None,
        on_unhandled=audit_unhandled,
    )
    return app
