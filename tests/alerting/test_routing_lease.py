"""The routing tree, on-call schedules (pure) and the job lease (both backends, concurrent
acquirers from several threads each with its own connection pool)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from medops.alerting.routing import route
from medops.alerting.schedules import on_call
from medops.alerting.schemas import AlertingConfig, Matcher, Route, Schedule, ScheduleOverride
from medops.db.engine import Database
from medops.jobs import Lease

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _tree() -> AlertingConfig:
    return AlertingConfig(
        route=Route(
            receiver="default",
            routes=[
                Route(matchers=[Matcher(label="severity", value="critical")],
                      receiver="pager", continue_matching=True, group_by=["deployment"]),
                Route(matchers=[Matcher(label="team", value="ops")], receiver="ops",
                      routes=[Route(matchers=[Matcher(label="deployment", op="=~", value="icu-.*")],
                                    receiver="icu-ops", group_wait_seconds=0)]),
                Route(matchers=[Matcher(label="team", value="ops")], receiver="never"),
            ],
        ),
    )  # fmt: skip


def test_first_matching_child_wins_unless_continue_and_children_inherit() -> None:
    """critical continues to the next match; the first ops route wins over the second; a
    nested route takes icu deployments and inherits grouping, overriding group_wait."""
    tree = _tree()
    leaves = route(tree, {"severity": "critical", "team": "ops", "deployment": "icu-a"})
    assert [leaf.receiver for leaf in leaves] == ["pager", "icu-ops"]
    assert leaves[0].group_by == ("deployment",)
    assert leaves[1].group_by == ("alertname", "deployment")
    assert leaves[1].group_wait_seconds == 0
    assert [x.receiver for x in route(tree, {"team": "ops", "deployment": "ward"})] == ["ops"]
    assert [x.receiver for x in route(tree, {"team": "data_science"})] == ["default"]


def test_group_keys_differ_by_grouping_labels_only() -> None:
    """Two alerts of one deployment share a group; another deployment's does not."""
    [leaf] = route(_tree(), {"team": "ops", "deployment": "ward"})
    a = leaf.group_key({"alertname": "X", "deployment": "ward", "feature": "a"})
    b = leaf.group_key({"alertname": "X", "deployment": "ward", "feature": "b"})
    c = leaf.group_key({"alertname": "X", "deployment": "other"})
    assert a == b
    assert a != c


def test_on_call_rotates_by_shift_and_an_override_wins_while_it_lasts() -> None:
    """Daily shifts bo, cy, di from T0; di covers for cy 12:00-18:00 on day two."""
    schedule = Schedule(
        name="ops",
        users=["bo", "cy", "di"],
        start=T0,
        shift_hours=24,
        overrides=[ScheduleOverride(user="di", start=T0 + timedelta(hours=28),
                                    end=T0 + timedelta(hours=34))],
    )  # fmt: skip
    assert on_call(schedule, T0) == "bo"
    assert on_call(schedule, T0 + timedelta(hours=25)) == "cy"
    assert on_call(schedule, T0 + timedelta(hours=30)) == "di"
    assert on_call(schedule, T0 + timedelta(hours=34)) == "cy"
    assert on_call(schedule, T0 + timedelta(days=3)) == "bo"


def test_one_holder_at_a_time_and_the_lease_passes_on_when_it_ends(db_url: str) -> None:
    """a takes it; b is refused while it runs; a extends it; after it ends b takes it."""
    database = Database(db_url)
    try:
        lease = Lease(database)
        assert lease.acquire("alerts", "a", 30, T0)
        assert not lease.acquire("alerts", "b", 30, T0 + timedelta(seconds=10))
        assert lease.acquire("alerts", "a", 30, T0 + timedelta(seconds=20))
        assert not lease.acquire("alerts", "b", 30, T0 + timedelta(seconds=49))
        assert lease.acquire("alerts", "b", 30, T0 + timedelta(seconds=50))
        lease.release("alerts", "b", T0 + timedelta(seconds=51))
        assert lease.acquire("alerts", "c", 30, T0 + timedelta(seconds=51))
    finally:
        database.dispose()


def test_concurrent_acquirers_get_one_lease_per_tick(db_url: str) -> None:
    """Eight acquirers, each with its own database connections, at the same tick: exactly
    one wins, tick after tick."""
    databases = [Database(db_url) for _ in range(8)]
    try:
        for tick in range(5):
            now = T0 + timedelta(minutes=tick)
            with ThreadPoolExecutor(max_workers=8) as pool:
                won = list(
                    pool.map(
                        lambda i, at=now: Lease(databases[i]).acquire("alerts", f"r{i}", 30, at),
                        range(8),
                    )
                )
            assert sum(won) == 1, (tick, won)
    finally:
        for database in databases:
            database.dispose()
