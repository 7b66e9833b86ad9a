"""The serving part of the demo: deploy, predict (JSON and FHIR), refuse bad input, canary
sticky per patient, roll back, shadow, outcomes, live figures and history; then monitoring
of the day's predictions.

Everything goes through the SDK (the same path as the API and CLI). It runs after the
registry demo, which leaves diabetes-risk@production at version 1 and an approved version 2.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from rich.console import Console
from rich.table import Table

from medops import examples
from medops.client import Client
from medops.config import Settings
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.errors import InvalidInputError, PermissionDeniedError
from medops.services import build_services

console = Console(width=160)
NAME = "diabetes-risk"
DEPLOYMENT = "diabetes"


def serving_demo(settings: Settings, login: Callable[[Client, str], None]) -> list[str]:
    """Run the serving story; returns the outcomes that differ from the rules."""
    problems: list[str] = []
    console.rule("serving")
    _, x_eval, _, _ = examples.diabetes_frames()
    records = [
        {"features": row, "patient_ref": f"pt-{1000 + i}"}
        for i, row in enumerate(x_eval.head(40).to_dict(orient="records"))
    ]
    with Client(settings=settings) as engineer:
        login(engineer, "ml-engineer")
        deployment = engineer.create_deployment(
            DEPLOYMENT, f"{NAME}@production", cache_size=1000, reason="first release"
        )
        console.print(
            f"ml-engineer deploys [bold]{DEPLOYMENT}[/] following {deployment.target} "
            f"(now version {deployment.version}, cache {deployment.cache_size} records)"
        )
    with Client(settings=settings) as clinician:
        login(clinician, "clinician")
        first = records[0]
        answer = clinician.predict(
            DEPLOYMENT, first["features"], patient_ref=str(first["patient_ref"])
        )
        (prediction,) = answer["predictions"]
        console.print(
            f"clinician scores patient {prediction['patient_ref']}: risk "
            f"{prediction['score']:.3f} (label {prediction['label']}) from "
            f"{prediction['model']}/{prediction['version']}, prediction {prediction['id'][:8]}…, "
            f"{answer['timing_ms']['total']:.1f} ms (log {answer['timing_ms']['log']:.1f} ms)"
        )
        fhir = clinician.predict(
            DEPLOYMENT, first["features"], patient_ref=str(first["patient_ref"]), fhir=True
        )
        console.print(
            f"  the same as FHIR: {fhir['resourceType']} about {fhir['subject']['reference']}, "
            f"method {fhir['method']['coding'][0]['code']}"
        )
        bad = dict(first["features"]) | {"age": 250, "bmi": "high", "weight": 80}
        bad.pop("bp")
        try:
            clinician.predict(DEPLOYMENT, bad)
            problems.append("an invalid record was scored")
        except InvalidInputError as exc:
            console.print("  a bad record -> 422, every field named, nothing scored or logged:")
            for error in exc.errors:
                console.print(f"    - {error.field}: {error.reason}")
    with Client(settings=settings) as scientist:
        login(scientist, "data-scientist")
        try:
            scientist.predict(DEPLOYMENT, first["features"])
            problems.append("a data scientist scored a patient")
        except PermissionDeniedError as exc:
            console.print(f"data-scientist tries to score a patient -> 403: {exc}")
    problems += _rollout(settings, login, records)
    return problems


def _rollout(
    settings: Settings, login: Callable[[Client, str], None], records: list[dict[str, object]]
) -> list[str]:
    problems: list[str] = []
    with Client(settings=settings) as engineer, Client(settings=settings) as clinician:
        login(engineer, "ml-engineer")
        login(clinician, "clinician")
        engineer.set_canary(DEPLOYMENT, 2, 30, "canary for version 2 (C=3)")
        _wait_for_refresh(settings)
        first = clinician.predict(DEPLOYMENT, records=records)["predictions"]
        again = clinician.predict(DEPLOYMENT, records=records)["predictions"]
        arms = Counter(f"{p['arm']} v{p['version']}" for p in first)
        sticky = [p["arm"] for p in first] == [p["arm"] for p in again]
        console.print(
            f"ml-engineer starts a 30% canary of version 2: 40 patients -> {dict(arms)}; "
            f"the same patients again get the same versions: {sticky}"
        )
        if not sticky or "canary v2" not in arms:
            problems.append(f"canary split {dict(arms)}, sticky {sticky}")
        ended = engineer.rollback_deployment(DEPLOYMENT, "sensitivity lower in the ED")
        _wait_for_refresh(settings)
        after = clinician.predict(DEPLOYMENT, records=records)["predictions"]
        versions = sorted({p["version"] for p in after})
        console.print(
            f"ml-engineer rolls back: canary {ended.canary_version}; answers now from {versions}"
        )
        if versions != [1]:
            problems.append(f"after the rollback answers came from versions {versions}")
        engineer.set_shadow(DEPLOYMENT, 2, "compare version 2 quietly")
        _wait_for_refresh(settings)
        shadowed = clinician.predict(DEPLOYMENT, records=records[:5])["predictions"]
        if {p["version"] for p in shadowed} != {1}:
            problems.append("a shadow result reached the client")
        console.print(
            f"shadow of version 2: answers from {sorted({p['version'] for p in shadowed})} "
            "only; the shadow's results go to the prediction log, flagged"
        )
        engineer.set_shadow(DEPLOYMENT, None, "enough")
        labels = dict(zip((f"pt-{1000 + i}" for i in range(40)), examples_labels(), strict=False))
        csv = io.StringIO()
        csv.write("prediction_id,label\n")
        for p in after:
            csv.write(f"{p['id']},{labels[p['patient_ref']]}\n")
        uploaded = clinician.upload_outcomes(csv.getvalue().encode())
        console.print(
            f"clinician uploads outcomes: {uploaded.rows} rows, {uploaded.created} attached"
        )
        status = clinician.deployment(DEPLOYMENT)  # the live figures of the serving process
        table = Table(title=f"medops deploy status {DEPLOYMENT} (live, this server)")
        for column in ("arm/version", "records", "errors", "p50 ms", "p99 ms"):
            table.add_column(column)
        for arm, stats in status.live.items():
            table.add_row(
                arm,
                str(stats.records),
                str(stats.errors),
                f"{stats.p50_ms:.2f}" if stats.p50_ms is not None else "-",
                f"{stats.p99_ms:.2f}" if stats.p99_ms is not None else "-",
            )
        console.print(table)
        history = engineer.deployment_history(DEPLOYMENT)
        console.print("deployment history: " + ", ".join(f"{e.kind} by {e.actor}" for e in history))
    problems += _monitoring(settings, login)
    return problems


def _monitoring(settings: Settings, login: Callable[[Client, str], None]) -> list[str]:
    """The day's predictions as monitoring sees them once the day is over: the scheduler's
    run (done here as it would run tomorrow), then the results and the report."""
    console.rule("monitoring")
    services = build_services(settings)
    try:
        ctx = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))
        tomorrow = services.clock.now() + timedelta(days=1)
        run = services.monitoring.run(ctx, "day", now=tomorrow)
    finally:
        services.close()
    console.print(f"the scheduler's run tomorrow computes {len(run.computed)} day window(s)")
    with Client(settings=settings) as engineer:
        login(engineer, "ml-engineer")
        document = engineer.monitoring_report(DEPLOYMENT)
        result = document.result
        accuracy = result.performance.metrics["accuracy"]
        console.print(
            f"medops monitor report {DEPLOYMENT}: {result.rows} predictions, "
            f"{result.labelled} with outcomes, verdict [bold]{document.verdict}[/], "
            f"accuracy {accuracy.value} (status {result.performance.status}), "
            f"drifted features {', '.join(result.dataset.drifted_features) or 'none'}"
        )
        estimated = result.estimated
        guess = estimated.metrics.get("accuracy") if estimated is not None else None
        if guess is not None and None not in (guess.value, guess.lower, guess.upper):
            reconciled = (
                result.reconciliation.metrics.get("accuracy") if result.reconciliation else None
            )
            console.print(
                f"  estimated before outcomes (CBPE): accuracy {guess.value:.3f} "
                f"[{guess.lower:.3f}, {guess.upper:.3f}]"
                + (f", realized {reconciled.realized}" if reconciled is not None else ""),
                markup=False,
            )
        for alert in document.alerts:
            console.print(f"  alert: {alert}", markup=False)
        console.print(
            "  (the demo replays the same 40 evaluation patients all day: not a random draw "
            "from the reference, so a flagged feature here is the monitor telling the truth)"
        )
        page = engineer.monitoring_report_html(DEPLOYMENT)
        out = settings.home / "monitoring-report.html"
        out.write_text(page)
        console.print(f"report written to {out} ({len(page):,} bytes)")
    return [] if run.computed else ["monitoring computed no window for the demo's day"]


def _wait_for_refresh(settings: Settings) -> None:
    """Each SDK client here runs its own embedded app, like separate server processes: a
    change made through one reaches the others at their next refresh."""
    time.sleep(settings.serving_refresh_seconds + 0.5)


def examples_labels() -> list[int]:
    """The true outcomes of the first 40 evaluation patients."""
    _, _, _, y_eval = examples.diabetes_frames()
    return [int(v) for v in y_eval.head(40)]
