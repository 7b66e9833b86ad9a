"""The demo's alerting story: a scripted incident on the demo's running deployment, on the
real clock, with real webhook receivers on the loopback that check every signature.

1. The ML engineer routes alerts: the data-science and clinical-safety teams to their
   channels, ops to its channel and, through an escalation policy, to whoever the on-call
   schedule names, then to the ops lead; the drill tunes the deployment's latency rule to
   hold for 5 s instead of 5 min (and group_wait to 2 s), so the story takes a minute and a
   half, not an hour.
2. A drift is injected (a new patient population is scored through the predict API, and the
   hour's window is computed) and a latency regression (a slow server process's figures:
   200 requests at 1.2 s, recorded as that process would record them).
3. Evaluations and dispatches as the server runs them (every 15 s and 5 s; here called at
   once): the right teams are told within the rule's ``for`` plus group_wait; nobody
   acknowledges, so after the policy's minute the ops lead is paged; the on-call engineer
   acknowledges, and the escalation stops; traffic recovers and a resolved notification
   goes out.
4. The month's SLA report shows the incident, who acknowledged it, and the budget spent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from demo_serving import DEPLOYMENT
from rich.console import Console
from rich.table import Table

from medops import examples
from medops.alerting.receivers.webhook import SIGNATURE_HEADER, verify_signature
from medops.alerting.schemas import (
    AlertingConfig,
    AlertRule,
    EscalationLevel,
    EscalationPolicy,
    Matcher,
    ReceiverConfig,
    Route,
    RuleSet,
    Schedule,
)
from medops.client import Client
from medops.config import Settings
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.files import write_private
from medops.services import build_services
from medops.serving.recorder import UsageRecorder

console = Console(width=160)
RECEIVERS = ("ops-channel", "ops-pager", "ops-lead", "data-science", "clinical-safety")
SLOW_SECONDS = 1.2
SLOW_REQUESTS = 200
FOR_SECONDS = 5
GROUP_WAIT = 2


class Pager:
    """Webhook receivers on the loopback, one path each, checking each body's HMAC with the
    receiver's secret; what they got, in order."""

    def __init__(self, secrets: dict[str, bytes]) -> None:
        self.secrets = secrets
        self.got: list[tuple[str, dict[str, object]]] = []
        self.refused = 0
        pager = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                name = self.path.strip("/")
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                header = self.headers.get(SIGNATURE_HEADER, "")
                key = pager.secrets.get(name)
                if key is None or not verify_signature(key, header, body, datetime.now(UTC)):
                    pager.refused += 1
                    self.send_response(401)
                else:
                    pager.got.append((name, json.loads(body)))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[Pager]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()

    def received(self, receiver: str, name: str, kind: str) -> list[dict[str, object]]:
        """The bodies ``receiver`` got for alert ``name`` at notification ``kind``."""
        found = []
        for who, body in self.got:
            alerts = body.get("alerts")
            names = {a.get("name") for a in alerts} if isinstance(alerts, list) else set()
            if who == receiver and body.get("kind") == kind and name in names:
                found.append(body)
        return found


def _routing(url: str) -> AlertingConfig:
    receivers = [
        ReceiverConfig(name=name, kind="webhook", url=f"{url}/{name}", secret=name)
        for name in RECEIVERS
    ]
    return AlertingConfig(
        route=Route(
            receiver="ops-channel",
            routes=[
                Route(
                    matchers=[Matcher(label="team", value="data_science")],
                    receiver="data-science",
                ),
                Route(
                    matchers=[Matcher(label="team", value="clinical_safety")],
                    receiver="clinical-safety",
                ),
                Route(
                    matchers=[Matcher(label="team", value="ops")],
                    receiver="ops-channel",
                    escalation="ops-escalation",
                ),
            ],
        ),
        receivers=receivers,
        escalation_policies=[
            EscalationPolicy(
                name="ops-escalation",
                levels=[
                    EscalationLevel(
                        receivers=["ops-pager"], schedule="ops-on-call", after_minutes=1
                    ),
                    EscalationLevel(receivers=["ops-lead"], after_minutes=1),
                ],
            )
        ],
        schedules=[
            Schedule(
                name="ops-on-call",
                users=["ml-engineer-2", "ml-engineer"],
                start=datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0),
                shift_hours=24,
                contacts={"ml-engineer-2": "grace@hospital.example"},
            )
        ],
        group_wait_seconds=GROUP_WAIT,
        group_interval_seconds=60,
    )


def _drill_rules() -> RuleSet:
    return RuleSet(
        scope=DEPLOYMENT,
        rules=[
            AlertRule(
                name="LatencyOverSla",
                signal="latency_p95_ms",
                op=">",
                threshold=500,
                for_seconds=FOR_SECONDS,
                severity="critical",
                team="ops",
                annotations={
                    "summary": "95th percentile latency above the 500 ms SLA (drill: for 5 s)",
                    "runbook_url": "docs/runbooks.md#latencyoversla",
                },
            )
        ],
    )


def _inject_drift(clinician: Client, settings: Settings) -> str:
    """Score a new population (heavier, higher blood pressure) and compute the hour's window."""
    _, x_eval, _, _ = examples.diabetes_frames()
    shifted = x_eval.head(60).copy()
    shifted["bmi"] = (shifted["bmi"] + 10).clip(upper=45)
    shifted["bp"] = (shifted["bp"] + 20).clip(upper=140)
    records = [
        {"features": row, "patient_ref": f"pt-{5000 + i}"}
        for i, row in enumerate(shifted.to_dict(orient="records"))
    ]
    clinician.predict(DEPLOYMENT, records=records)
    services = build_services(settings)
    try:
        ctx = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="local"))
        # As the scheduler's run just after the hour ends would compute it.
        run = services.monitoring.run(ctx, "hour", now=services.clock.now() + timedelta(hours=1))
    finally:
        services.close()
    # The run's summaries are the service's plain records (what the API answers as JSON).
    return ", ".join(f"{w['window']} {w['verdict']}" for w in run.computed) or "none"


def _inject_latency(settings: Settings, seconds: float, requests: int) -> None:
    """What a slow server process records: ``requests`` answered in ``seconds`` each."""
    services = build_services(settings)
    try:
        recorder = UsageRecorder(services.clock, "drill-slow-replica")
        for _ in range(requests):
            recorder.request(DEPLOYMENT, 200, seconds)
        recorder.flush(services.db)
    finally:
        services.close()


def _tick(engineer: Client) -> None:
    engineer.evaluate_alerts()
    engineer.dispatch_alerts()


def alerts_demo(
    settings: Settings, login: Callable[[Client, str], None], folder: Path
) -> list[str]:
    """Run the scripted incident; returns the outcomes that differ from what must happen."""
    console.rule("alerts: a scripted incident")
    problems: list[str] = []
    secrets = {name: f"demo-hmac-{name}-{'x' * 24}".encode() for name in RECEIVERS}
    for name, key in secrets.items():
        write_private(settings.home / "secrets" / name, key)
    with (
        Pager(secrets).running() as pager,
        Client(settings=settings) as engineer,
        Client(settings=settings) as clinician,
    ):
        login(engineer, "ml-engineer")
        login(clinician, "clinician")
        engineer.set_alert_config(_routing(pager.url))
        engineer.set_alert_rules(_drill_rules())
        console.print(
            f"ml-engineer routes alerts to {len(RECEIVERS)} webhook receivers at {pager.url} "
            f"(HMAC-signed; secrets in {settings.home / 'secrets'}), ops escalating to the "
            f"on-call engineer then the lead; the drill holds LatencyOverSla {FOR_SECONDS} s "
            f"and groups wait {GROUP_WAIT} s"
        )
        started = time.monotonic()
        verdicts = _inject_drift(clinician, settings)
        _inject_latency(settings, SLOW_SECONDS, SLOW_REQUESTS)
        console.print(
            f"injected: 60 patients of a new population (hour window: {verdicts}); "
            f"{SLOW_REQUESTS} requests at {SLOW_SECONDS * 1000:.0f} ms from a slow replica"
        )
        _tick(engineer)
        time.sleep(GROUP_WAIT + 0.3)
        _tick(engineer)
        time.sleep(max(0.0, FOR_SECONDS + 0.2 - (time.monotonic() - started)))
        _tick(engineer)
        time.sleep(GROUP_WAIT + 0.3)
        _tick(engineer)
        told = time.monotonic() - started
        drift = pager.received("data-science", "DriftDetected", "firing")
        latency = pager.received("ops-channel", "LatencyOverSla", "firing")
        paged = pager.received("ops-pager", "LatencyOverSla", "firing")
        console.print(
            f"after {told:.1f} s: data-science told of DriftDetected ({len(drift)}), "
            f"ops-channel of LatencyOverSla ({len(latency)}), the on-call pager "
            f"({len(paged)}, on call: {paged[0].get('oncall') if paged else '-'})"
        )
        if not drift:
            problems.append("the data-science team was not told of the drift")
        if not latency or not paged:
            problems.append("ops was not told of the latency regression")
        if told > FOR_SECONDS + 2 * GROUP_WAIT + 5:
            problems.append(f"notifications took {told:.1f} s, more than for + group_wait")
        with console.status("nobody acknowledges: waiting for the escalation policy's minute"):
            time.sleep(max(0.0, told + 61 - (time.monotonic() - started)))
            _tick(engineer)
        lead = pager.received("ops-lead", "LatencyOverSla", "escalation")
        console.print(f"a minute later, nobody acknowledged: the ops lead is paged ({len(lead)})")
        if not lead:
            problems.append("the ops lead was not paged after the escalation minute")
        problems += _acknowledge_and_recover(settings, login, engineer, pager)
        problems += _report(engineer, folder)
        _receipts(pager)
        if pager.refused:
            problems.append(f"{pager.refused} notification(s) failed their signature check")
    return problems


def _acknowledge_and_recover(
    settings: Settings, login: Callable[[Client, str], None], engineer: Client, pager: Pager
) -> list[str]:
    problems = []
    with Client(settings=settings) as on_call:
        login(on_call, "ml-engineer-2")
        open_alerts = on_call.alerts(deployment=DEPLOYMENT)
        for alert in open_alerts:
            if alert.team == "ops" and alert.state == "firing":
                on_call.acknowledge_alert(alert.id, "scaling out the slow replica")
        taken = [a.name for a in on_call.alerts(state="acknowledged")]
        console.print(f"ml-engineer-2 (on call) acknowledges: {', '.join(taken)}")
    before = len(pager.got)
    _tick(engineer)
    escalations = [b for _, b in pager.got[before:] if b.get("kind") == "escalation"]
    if escalations:
        problems.append("escalation went on after the acknowledgement")
    _inject_latency(settings, 0.02, 8000)  # traffic recovers: fast answers dilute the p95
    _tick(engineer)
    resolved = pager.received("ops-channel", "LatencyOverSla", "resolved")
    console.print(f"traffic recovers: LatencyOverSla resolves, ops-channel told ({len(resolved)})")
    if not resolved:
        problems.append("no resolved notification for the latency alert")
    return problems


def _report(engineer: Client, folder: Path) -> list[str]:
    month = datetime.now(UTC).strftime("%Y-%m")
    report = engineer.slo_report(DEPLOYMENT, month)
    (folder / f"sla-{DEPLOYMENT}-{month}.html").write_text(
        engineer.slo_report_html(DEPLOYMENT, month)
    )
    table = Table(title=f"SLA report {DEPLOYMENT} {month}: objectives", title_justify="left")
    for column in ("objective", "target", "attained", "budget left"):
        table.add_column(column)
    for o in report.objectives:
        table.add_row(
            o.objective.name,
            f"{100 * o.objective.target:g}%",
            "-" if o.attainment is None else f"{100 * o.attainment:.2f}%",
            "-" if o.budget_remaining is None else f"{100 * o.budget_remaining:.1f}%",
        )
    console.print(table)
    incidents = [
        f"{i.name} ({i.severity}, acknowledged by {i.acknowledged.by if i.acknowledged else '-'})"
        for i in report.incidents
    ]
    console.print(f"incidents: {'; '.join(incidents) or 'none'}", highlight=False)
    console.print(f"the report: {folder / f'sla-{DEPLOYMENT}-{month}.html'}", highlight=False)
    latency = next((i for i in report.incidents if i.name == "LatencyOverSla"), None)
    if latency is None or latency.acknowledged is None:
        return ["the SLA report does not show the acknowledged latency incident"]
    spent = [o for o in report.objectives if o.objective.kind == "latency"]
    if not spent or spent[0].budget_remaining is None or spent[0].budget_remaining >= 1:
        return ["the SLA report shows no latency budget spent"]
    return []


def _receipts(pager: Pager) -> None:
    table = Table(title="What each receiver got (every signature checked)", title_justify="left")
    for column in ("receiver", "notification", "level", "alerts"):
        table.add_column(column)
    for receiver, body in pager.got:
        alerts = body.get("alerts")
        names = sorted({str(a.get("name")) for a in alerts}) if isinstance(alerts, list) else []
        table.add_row(receiver, str(body.get("kind")), str(body.get("level")), ", ".join(names))
    console.print(table)
    if pager.refused:
        console.print(f"[red]{pager.refused} request(s) refused for a bad signature[/]")
