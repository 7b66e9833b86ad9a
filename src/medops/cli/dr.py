"""Disaster recovery: a drill that loses the primary database under load and measures RPO and RTO.

``medops dr drill`` builds a throw-away installation on PostgreSQL clusters of its own (ports
from --pg-port on 127.0.0.1; never the hospital's cluster), so it runs anywhere PostgreSQL's
server binaries are installed.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from medops.cli.output import JsonOption, err_console, fail, print_json, print_table

app = typer.Typer(
    help="Disaster recovery: a drill that loses the primary database under load and measures "
    "RPO and RTO.",
    no_args_is_help=True,
)


@app.callback()
def _group() -> None:
    """Disaster recovery: a drill that loses the primary database under load and measures RPO
    and RTO."""


@app.command("drill")
def drill(
    mode: str = typer.Option(
        "sync",
        "--mode",
        help="sync or async: a streaming standby, promoted when the primary dies; backup: "
        "the backups alone ('medops backup create' during the load, restored on a fresh cluster).",
    ),
    servers: int = typer.Option(2, "--servers", min=1, max=8, help="medops server processes."),
    clients: int = typer.Option(
        4, "--clients", min=1, max=64, help="Client threads posting predictions."
    ),
    load_seconds: float = typer.Option(
        5.0, "--load-seconds", min=0.5, max=3600, help="Seconds of load before the primary dies."
    ),
    after_seconds: float = typer.Option(
        2.0, "--after-seconds", min=0, max=3600, help="Seconds of load once predictions succeed."
    ),
    promote_after: float = typer.Option(
        0.0,
        "--promote-after",
        min=0,
        max=3600,
        help="Seconds between the primary's death and the promotion (your detection time).",
    ),
    pg_port: int = typer.Option(
        5440,
        "--pg-port",
        min=1024,
        max=65533,
        help="First of the ports the drill's clusters listen on (this one and the next two).",
    ),
    pg_bindir: Path | None = typer.Option(
        None,
        "--pg-bindir",
        help="PostgreSQL's server binaries (default: found on PATH or in "
        "/usr/lib/postgresql/N/bin).",
    ),
    workdir: Path | None = typer.Option(
        None, "--workdir", help="Keep the drill's clusters, home and logs in this folder."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Lose the primary database under prediction load, recover, and report RPO and RTO;
    exits 1 when an objective is missed (a lost prediction with synchronous replication,
    no recovery, an audit trail that does not verify)."""
    from medops.dr.drill import DrillMode, DrillOptions, run_drill

    try:
        chosen = DrillMode(mode)
    except ValueError:
        raise fail(f"--mode must be sync, async or backup, not {mode!r}", 2) from None
    started = time.monotonic()

    def progress(message: str) -> None:
        err_console.print(
            f"[{time.monotonic() - started:6.1f} s] {message}", markup=False, highlight=False
        )

    options = DrillOptions(
        mode=chosen, servers=servers, clients=clients, load_seconds=load_seconds,
        after_seconds=after_seconds, promote_after_seconds=promote_after, pg_port=pg_port,
        pg_bindir=pg_bindir, workdir=workdir, keep=workdir is not None,
    )  # fmt: skip
    report = run_drill(options, progress)
    if json_output:
        print_json(report)
    else:
        rto = "never" if report.rto_seconds is None else f"{report.rto_seconds:.2f} s"
        print_table(
            f"DR drill ({report.mode.value}): {'passed' if report.passed else 'FAILED'}",
            ("measure", "value"),
            [
                ("mode", report.mode.value),
                ("standbys", report.replicas),
                ("servers / clients", f"{report.servers} / {report.clients}"),
                ("load", f"{report.load_rate_per_second:g} predictions/s"),
                ("acknowledged", report.predictions_acknowledged),
                ("acknowledged before the loss", report.acknowledged_before_loss),
                ("RPO: lost", report.lost),
                ("RPO: seconds of data", f"{report.lost_seconds:.2f}"),
                ("RTO", rto),
                (
                    "standby lag before the loss",
                    ""
                    if report.standby_lag_bytes is None
                    else f"{report.standby_lag_bytes} bytes of WAL",
                ),
                ("backup", report.backup_id or ""),
                ("promote / restore + start", f"{report.recovery_seconds:.2f} s"),
                ("servers restarted", "yes" if report.servers_restarted else "no"),
                ("audit verifies", "yes" if report.audit_verifies else "no"),
                ("audit records", report.audit_records),
                ("PostgreSQL", report.postgres),
                ("machine", report.machine),
            ],
        )
        print_table(
            "steps", ("step", "seconds"), [(s.name, f"{s.seconds:.2f}") for s in report.steps]
        )
    if not report.passed:
        raise fail("; ".join(report.failures))
