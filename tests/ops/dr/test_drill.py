"""The disaster-recovery drill, for real: PostgreSQL clusters of the drill's own on ports
5440-5442, ``medops server`` processes under prediction load, the primary SIGKILLed.

- Synchronous streaming replication: the standby is promoted and the servers, given a
  multi-host URL with ``target_session_attrs=read-write``, find it by themselves; not one
  acknowledged prediction is missing from the promoted database (RPO 0) and the audit trail
  verifies there.
- Asynchronous: the same, with the loss counted and stated (not asserted: it is what
  asynchronous replication allows).
- From backups alone: ``medops backup create`` during the load, restored on a fresh cluster;
  what was acknowledged after the backup is lost, counted and stated.

The measured RPO and RTO are printed (timings are stated, never asserted).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from medops.dr.drill import DrillMode, DrillOptions, DrillReport, run_drill

pytestmark = [pytest.mark.dr]

MIN_LOAD = 20  # acknowledged predictions before the loss, for the drill to mean anything


def _drill(
    mode: DrillMode, bindir: Path, capsys: pytest.CaptureFixture[str], *, servers: int
) -> DrillReport:
    # The drill's own folder (under /tmp, reachable by the postgres user; pytest's is not).
    options = DrillOptions(
        mode=mode, servers=servers, clients=4, load_seconds=4.0, after_seconds=1.0,
        pg_port=5440, pg_bindir=bindir,
    )  # fmt: skip
    report = run_drill(options)
    rto = "never" if report.rto_seconds is None else f"{report.rto_seconds:.2f} s"
    with capsys.disabled():  # the measured figures are the stage's output, always shown
        print(  # noqa: T201
            f"\nDR drill {mode.value}: {report.predictions_acknowledged} acknowledged "
            f"({report.acknowledged_before_loss} before the loss, "
            f"{report.load_rate_per_second:g}/s), RPO {report.lost} lost "
            f"({report.lost_seconds:.2f} s of data), RTO {rto} (recovery "
            f"{report.recovery_seconds:.2f} s), audit verifies: {report.audit_verifies}"
        )
    return report


def test_sync_failover_loses_no_acknowledged_prediction(
    pg_bindir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two servers on a primary and its synchronous standby; the primary dies under load, the
    standby is promoted: every acknowledged prediction is there and the audit trail verifies."""
    report = _drill(DrillMode.SYNC, pg_bindir, capsys, servers=2)
    assert report.acknowledged_before_loss >= MIN_LOAD, "too little load to mean anything"
    assert report.lost_before_loss == 0
    assert report.lost == 0
    assert report.rto_seconds is not None, report.failures
    assert not report.servers_restarted
    assert report.audit_verifies, report.audit_problem
    assert report.passed, report.failures


def test_async_failover_states_what_it_loses(
    pg_bindir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same with an asynchronous standby: predictions succeed again, the audit trail on
    the promoted database verifies, and the loss is counted (whatever it is)."""
    report = _drill(DrillMode.ASYNC, pg_bindir, capsys, servers=2)
    assert report.acknowledged_before_loss >= MIN_LOAD, "too little load to mean anything"
    assert report.rto_seconds is not None, report.failures
    assert report.lost >= report.lost_before_loss >= 0
    assert report.audit_verifies, report.audit_problem


@pytest.mark.skipif(
    importlib.util.find_spec("medops.backup") is None,
    reason="medops backup (branch backup) is not in this build yet",
)
def test_restore_from_backups_alone(pg_bindir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No standby: a backup taken during the load is restored on a fresh cluster and the
    servers start on it; what was acknowledged before the backup is all there."""
    report = _drill(DrillMode.BACKUP, pg_bindir, capsys, servers=1)
    assert report.acknowledged_before_loss >= MIN_LOAD, "too little load to mean anything"
    assert report.backup_id is not None
    assert report.lost_before_backup == 0
    assert report.rto_seconds is not None, report.failures
    assert report.servers_restarted
    assert report.audit_verifies, report.audit_problem
