"""The alert engine end to end over the service, on SQLite and PostgreSQL, with a fixed clock:
the state machine, audit, dedup, grouping timers, silences, inhibition and escalation."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from medops.alerting.records import SilenceIn
from medops.alerting.schemas import Matcher
from medops.errors import ConflictError, InvalidInputError
from medops.services import Services, build_services
from medops.testing import FixedClock, capture_audit
from tests.helpers.alerting import PERSON, config, hooked, outbox

S = timedelta(seconds=1)
M = timedelta(minutes=1)


def test_an_alert_goes_pending_then_firing_after_its_for_then_resolved(
    services: Services, clock: FixedClock
) -> None:
    """ErrorRateHigh (for 5m) is pending at first, firing 5 minutes later, resolved when the
    condition ends; every transition is audited as the system actor."""
    signals = hooked(services)
    signals.set("error_rate", 0.05)
    with capture_audit(services) as audit:
        first = services.alerts.evaluate(PERSON)
        assert first.pending == 1
        assert first.firing == 0
        clock.advance(4 * M)
        assert services.alerts.evaluate(PERSON).firing == 0
        clock.advance(1 * M)
        assert services.alerts.evaluate(PERSON).firing == 1
        [alert] = services.alerts.list_alerts()
        assert alert.state == "firing"
        assert alert.name == "ErrorRateHigh"
        assert alert.labels["deployment"] == "sepsis"
        assert alert.labels["team"] == "ops"
        signals.clear()
        clock.advance(M)
        assert services.alerts.evaluate(PERSON).resolved == 1
    actions = [e.action for e in audit.events if e.action.startswith("alert.")]
    assert actions == ["alert.pending", "alert.firing", "alert.resolved"]
    assert services.alerts.list_alerts() == []
    [done] = services.alerts.list_alerts(include_resolved=True)
    assert done.resolved_by == "system"


def test_a_resolved_alert_that_fires_again_is_a_new_alert(
    services: Services, clock: FixedClock
) -> None:
    """Same fingerprint, two rows: the first resolved, the second open."""
    signals = hooked(services)
    signals.set("drift_detected", 1)
    first = services.alerts.evaluate(PERSON)
    assert first.firing == 1  # DriftDetected has no ``for``
    signals.clear()
    clock.advance(M)
    services.alerts.evaluate(PERSON)
    signals.set("drift_detected", 1)
    clock.advance(M)
    services.alerts.evaluate(PERSON)
    rows = services.alerts.list_alerts(include_resolved=True)
    assert len(rows) == 2
    assert rows[0].fingerprint == rows[1].fingerprint
    assert {r.state for r in rows} == {"firing", "resolved"}


def test_acknowledge_and_resolve_by_hand_are_audited_with_the_note(
    services: Services, clock: FixedClock
) -> None:
    """A person acknowledges a firing alert, then resolves it; a second answer conflicts."""
    hooked(services).set("drift_detected", 1)
    services.alerts.evaluate(PERSON)
    [alert] = services.alerts.list_alerts()
    with capture_audit(services) as audit:
        acked = services.alerts.acknowledge(PERSON, alert.id, "looking")
        assert acked.state == "acknowledged"
        assert acked.acknowledged_by == "ana"
        with pytest.raises(ConflictError):
            services.alerts.acknowledge(PERSON, alert.id)
        done = services.alerts.resolve(PERSON, alert.id, "fixed upstream")
        assert done.state == "resolved"
        assert done.resolve_note == "fixed upstream"
        with pytest.raises(ConflictError):
            services.alerts.resolve(PERSON, alert.id)
    assert [(e.action, e.reason) for e in audit.events] == [
        ("alert.acknowledged", "looking"),
        ("alert.resolved", "fixed upstream"),
    ]


def test_evaluating_the_same_moment_twice_on_two_replicas_queues_one_notification(
    services: Services, clock: FixedClock
) -> None:
    """Two Services on one database (two replicas) evaluating the same transition queue one
    row per receiver: the group row is locked and the dedup key is unique."""
    services.alerts.set_config(PERSON, config(clock.now(), group_wait=0))
    hooked(services).set("drift_detected", 1)
    other = build_services(services.settings, clock=clock)
    try:
        hooked(other).set("drift_detected", 1)
        services.alerts.evaluate(PERSON)
        other.alerts.evaluate(PERSON)
        services.alerts.evaluate(PERSON)
    finally:
        other.close()
    sent = outbox(services)
    assert [p.receiver for _, p in sent] == ["catch-all"]
    assert len(services.alerts.list_alerts()) == 1


def test_group_wait_interval_repeat_and_resolved_notifications(
    services: Services, clock: FixedClock
) -> None:
    """A new group waits group_wait; a change waits group_interval; an unchanged group
    repeats after repeat_interval; its end sends one resolved notification."""
    services.alerts.set_config(PERSON, config(clock.now(), group_wait=30))
    signals = hooked(services)
    signals.set("feature_drift", 1, feature="age")
    services.alerts.evaluate(PERSON)
    assert outbox(services) == []  # group_wait not over
    clock.advance(30 * S)
    services.alerts.evaluate(PERSON)
    [(_, first)] = outbox(services)
    assert first.kind == "firing"
    assert first.receiver == "catch-all"
    assert first.group_labels == {"alertname": "FeatureDrift", "deployment": "sepsis"}
    signals.set("feature_drift", 1, feature="bmi")  # joins the same group
    clock.advance(M)
    services.alerts.evaluate(PERSON)
    assert len(outbox(services)) == 1  # group_interval (5 m) not over
    clock.advance(4 * M)
    services.alerts.evaluate(PERSON)
    changed = outbox(services)[-1][1]
    assert changed.kind == "firing"
    assert len(changed.alerts) == 2
    clock.advance(59 * M)
    services.alerts.evaluate(PERSON)
    assert len(outbox(services)) == 2
    clock.advance(M)
    services.alerts.evaluate(PERSON)
    assert outbox(services)[-1][1].kind == "repeat"
    signals.clear()
    clock.advance(M)
    services.alerts.evaluate(PERSON)
    last = outbox(services)[-1][1]
    assert last.kind == "resolved"
    assert last.status == "resolved"
    assert {a.state for a in last.alerts} == {"resolved"}
    assert "age" not in last.model_dump_json().replace('"feature":"age"', "")


def test_silenced_alerts_are_tracked_but_not_notified(
    services: Services, clock: FixedClock
) -> None:
    """A silence needs a reason; while it lasts the alert is open and silenced, nothing is
    queued; expired by hand, the alert is notified."""
    services.alerts.set_config(PERSON, config(clock.now(), group_wait=0))
    with pytest.raises(InvalidInputError):
        services.alerts.silence(
            PERSON,
            SilenceIn(matchers=[Matcher(label="deployment", value="sepsis")],
                      ends_at=clock.now() - M, reason="late"),
        )  # fmt: skip
    with capture_audit(services) as audit:
        made = services.alerts.silence(
            PERSON,
            SilenceIn(matchers=[Matcher(label="deployment", value="sepsis")],
                      ends_at=clock.now() + 60 * M, reason="maintenance"),
        )  # fmt: skip
        hooked(services).set("drift_detected", 1)
        services.alerts.evaluate(PERSON)
        [alert] = services.alerts.list_alerts()
        assert alert.silenced
        assert alert.state == "firing"
        assert outbox(services) == []
        services.alerts.expire_silence(PERSON, made.id)
        services.alerts.evaluate(PERSON)
    assert len(outbox(services)) == 1
    assert services.alerts.list_silences() == []
    actions = [e.action for e in audit.events if "silence" in e.action]
    assert actions == ["alert.silence.create", "alert.silence.expire"]


def test_monitoring_stale_inhibits_the_drift_alert_of_the_same_deployment(
    services: Services, clock: FixedClock
) -> None:
    """The default inhibition: MonitoringStale mutes DriftDetected of its deployment, not of
    another deployment."""
    services.alerts.set_config(PERSON, config(clock.now(), group_wait=0))
    signals = hooked(services)
    signals.set("monitoring_stale", 1)
    signals.set("drift_detected", 1)
    signals.set("drift_detected", 1, deployment="stroke")
    services.alerts.evaluate(PERSON)
    by = {(a.name, a.deployment): a for a in services.alerts.list_alerts()}
    assert by["DriftDetected", "sepsis"].inhibited
    assert not by["DriftDetected", "stroke"].inhibited
    assert not by["MonitoringStale", "sepsis"].inhibited
    names = {
        p.alerts[0].name + "/" + str(p.alerts[0].labels["deployment"]) for _, p in outbox(services)
    }
    assert names == {"DriftDetected/stroke", "MonitoringStale/sepsis"}


def test_escalation_pages_the_next_level_until_someone_acknowledges(
    services: Services, clock: FixedClock
) -> None:
    """ops-pager: level 0 (with the on-call user) with the first notification; not acked in
    10 minutes → level 1; then the policy repeats once; an acknowledgement stops it."""
    services.alerts.set_config(PERSON, config(clock.now(), group_wait=0))
    hooked(services).set("canary_rolled_back", 1)  # ops, warning, no ``for``
    services.alerts.evaluate(PERSON)
    sent = outbox(services)
    assert sorted((p.receiver, p.kind, p.level) for _, p in sent) == [
        ("ops-hook", "firing", 0),
        ("ops-l1", "firing", 0),
    ]
    page = next(p for _, p in sent if p.receiver == "ops-l1")
    assert (page.oncall, page.oncall_contact) == ("bo", "+100")
    clock.advance(9 * M)
    services.alerts.evaluate(PERSON)
    assert len(outbox(services)) == 2
    clock.advance(M)
    services.alerts.evaluate(PERSON)
    level1 = outbox(services)[-1][1]
    assert (level1.receiver, level1.kind, level1.level) == ("ops-l2", "escalation", 1)
    clock.advance(10 * M)
    services.alerts.evaluate(PERSON)  # the policy's one repeat: level 0 again
    again = outbox(services)[-1][1]
    assert (again.receiver, again.kind, again.level) == ("ops-l1", "escalation", 0)
    [alert] = services.alerts.list_alerts()
    services.alerts.acknowledge(PERSON, alert.id, "on it")
    count = len(outbox(services))
    for _ in range(4):
        clock.advance(10 * M)
        services.alerts.evaluate(PERSON)
    assert len(outbox(services)) == count  # no escalation, no repeat while acknowledged


def test_escalation_stops_after_its_repeats(services: Services, clock: FixedClock) -> None:
    """Never acknowledged: levels 0, 1, 0, 1 and then nothing more from the policy."""
    services.alerts.set_config(PERSON, config(clock.now(), group_wait=0))
    hooked(services).set("canary_rolled_back", 1)
    for _ in range(8):
        services.alerts.evaluate(PERSON)
        clock.advance(10 * M)
    pages = [(p.receiver, p.level) for _, p in outbox(services) if p.receiver.startswith("ops-l")]
    assert pages == [("ops-l1", 0), ("ops-l2", 1), ("ops-l1", 0), ("ops-l2", 1)]


def test_a_deployment_rule_set_replaces_the_default_of_the_same_name(
    services: Services, clock: FixedClock
) -> None:
    """Rule sets are versioned and audited; a deployment's DriftDetected with a higher
    threshold replaces the default there only."""
    from medops.alerting.schemas import AlertRule, RuleSet

    with capture_audit(services) as audit:
        one = services.alerts.set_rules(
            PERSON,
            RuleSet(scope="*", rules=[AlertRule(name="DriftDetected", signal="drift_detected",
                                                threshold=5, team="data_science")]),
        )  # fmt: skip
    assert one.version == 1
    [event] = [e for e in audit.events if e.action == "alerts.rules.set"]
    assert event.details is not None
    assert event.details["before"] is None
    hooked(services).set("drift_detected", 1)
    assert services.alerts.evaluate(PERSON).pending == 0
    assert services.alerts.rules("*").effective == ["DriftDetected"]


def test_a_config_naming_what_it_does_not_define_is_refused_field_by_field(
    services: Services, clock: FixedClock
) -> None:
    """An unknown receiver, an unknown policy, an unknown schedule, a level with no receiver
    and a schedule's time without a zone are each named; nothing is stored."""
    from medops.alerting.schemas import EscalationLevel, EscalationPolicy, Route

    good = config(clock.now())
    bad = good.model_copy(
        update={
            "route": Route(receiver="ghost", escalation="nope"),
            "escalation_policies": [
                EscalationPolicy(
                    name="p", levels=[EscalationLevel(receivers=[], schedule="nobody")]
                )
            ],
        }
    )
    naive = good.schedules[0].model_copy(update={"start": datetime(2026, 1, 1)})
    bad = bad.model_copy(update={"schedules": [naive]})
    with pytest.raises(InvalidInputError) as refused:
        services.alerts.set_config(PERSON, bad)
    assert sorted(e.field for e in refused.value.errors) == [
        "escalation_policies.0.levels.0.receivers",
        "escalation_policies.0.levels.0.schedule",
        "route.escalation",
        "route.receiver",
        "schedules.0.start",
    ]
    assert services.alerts.config().version == 0


def test_two_replicas_evaluating_at_the_same_instant_queue_each_notification_once(
    services: Services, clock: FixedClock
) -> None:
    """Three Services on one database evaluate the same moment from three threads at once
    (no lease): one open alert per condition and one notification per receiver."""
    import threading

    services.alerts.set_config(PERSON, config(clock.now(), group_wait=0))
    replicas = [build_services(services.settings, clock=clock) for _ in range(3)]
    try:
        for replica in replicas:
            signals = hooked(replica)
            signals.set("drift_detected", 1)
            signals.set("canary_rolled_back", 1)
        start = threading.Barrier(len(replicas))
        errors: list[BaseException] = []

        def run(replica: Services) -> None:
            start.wait()
            try:
                replica.alerts.evaluate(PERSON)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(r,)) for r in replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for replica in replicas:
            replica.close()
    assert errors == []
    assert sorted(a.name for a in services.alerts.list_alerts()) == [
        "CanaryRolledBack",
        "DriftDetected",
    ]
    assert sorted(p.receiver for _, p in outbox(services)) == ["catch-all", "ops-hook", "ops-l1"]
