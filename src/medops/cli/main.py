"""The ``medops`` command: every action goes through the SDK (and so the API), except the
local administration of ``init`` and ``db`` (see medops/admin.py)."""

from __future__ import annotations

import os
import sys
from typing import Any, ClassVar

import typer
from typer.exceptions import TyperException

import medops
from medops.cli.common import (
    PasswordStdinOption,
    client,
    read_password,
    settings,
    with_one_time_code,
)
from medops.cli.lazy import Lazy, LazyGroup
from medops.cli.output import (
    JsonOption,
    console,
    error_line,
    fail,
    print_json,
    print_record,
    print_table,
)
from medops.errors import MedopsError
from medops.tls import tls_options


class MedopsGroup(LazyGroup):
    """The top-level group: each command group is imported when it runs (see cli/lazy.py)."""

    lazy: ClassVar[dict[str, Lazy]] = {
        "breakglass": Lazy(
            "medops.cli.access",
            "breakglass",
            "Take emergency access to a permission now; audited as break-glass, reviewed later.",
            first=True,
        ),
        "predict": Lazy(
            "medops.cli.predict",
            "predict",
            "Score one record or several with a deployment; every prediction is logged. "
            "A large file goes in batches with --output.",
            first=True,
        ),
        "users": Lazy(
            "medops.cli.users", "app", "Manage user accounts (needs users:manage or users:read)."
        ),
        "tokens": Lazy("medops.cli.tokens", "app", "Create, list and revoke your API tokens."),
        "db": Lazy(
            "medops.cli.db",
            "app",
            "Database schema migrations (local: run where the database is).",
        ),
        "audit": Lazy(
            "medops.cli.audit",
            "app",
            "The tamper-evident audit log: search and export (auditors, through the API); "
            "verify, checkpoint and public-key (local, offline).",
        ),
        "mfa": Lazy(
            "medops.cli.access",
            "mfa_app",
            "Multi-factor authentication (TOTP) for your account; rotate-key is local "
            "administration of the server's key.",
        ),
        "sessions": Lazy(
            "medops.cli.access", "sessions_app", "Your logins (CLI and browser sessions)."
        ),
        "grants": Lazy(
            "medops.cli.access",
            "grants_app",
            "Review break-glass grants (needs breakglass:review).",
        ),
        "models": Lazy(
            "medops.cli.models",
            "app",
            "Model registry: register, validate, card, approve, promote, roll back.",
        ),
        "deploy": Lazy(
            "medops.cli.deploy",
            "app",
            "Deployments: serve a model version, canary, shadow, roll back.",
        ),
        "outcomes": Lazy(
            "medops.cli.deploy",
            "outcomes_app",
            "Attach ground-truth outcomes to earlier predictions.",
        ),
        "monitor": Lazy(
            "medops.cli.monitor",
            "app",
            "Monitoring: drift, performance, calibration and fairness per window.",
        ),
        "alerts": Lazy(
            "medops.cli.alerts",
            "app",
            "Alerts: rules, alerts (ack, resolve), silences, routing, notifications and export.",
        ),
        "data": Lazy(
            "medops.cli.data",
            "app",
            "Datasets: versions (add, checkout, verify), holds, remotes, re-identification.",
        ),
        "lineage": Lazy(
            "medops.cli.lineage",
            "app",
            "Lineage: which data made which model, where it serves, what it predicted.",
        ),
        "features": Lazy(
            "medops.cli.features",
            "app",
            "Feature store: definitions (apply, list, show) and point-in-time training sets.",
        ),
        "slo": Lazy(
            "medops.cli.slo",
            "app",
            "Service-level objectives: status, error budgets, burn rates, the monthly SLA report.",
        ),
        "backup": Lazy(
            "medops.cli.backup",
            "app",
            "Backups (local: run where the database and stores are): create, list, verify, "
            "restore, prune.",
        ),
        "ci": Lazy(
            "medops.cli.ci",
            "app",
            "Continuous integration for models: the gate a model repository's pipeline runs.",
        ),
        "cost": Lazy(
            "medops.cli.slo",
            "cost_app",
            "What serving costs: per 1,000 predictions, right-sizing, INT8 against its parent.",
        ),
        "dr": Lazy(
            "medops.cli.dr",
            "app",
            "Disaster recovery: a drill that loses the primary database under load and measures "
            "RPO and RTO.",
        ),
    }


app = typer.Typer(
    name="medops",
    cls=MedopsGroup,
    help="medops: clinical ML models from notebook to patients, under hospital governance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"medops {medops.__version__}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    _version_flag: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
    as_user: str | None = typer.Option(
        None,
        "--as",
        help="Act as this user's saved login (see 'medops profiles'); MEDOPS_PROFILE too.",
    ),
) -> None:
    """medops: clinical ML models from notebook to patients, under hospital governance."""
    if as_user is not None:
        os.environ["MEDOPS_PROFILE"] = as_user


@app.command()
def init(
    admin_name: str = typer.Option("admin", "--admin", help="Login name of the first admin."),
    json_output: bool = JsonOption,
) -> None:
    """Create MEDOPS_HOME, migrate the database and create the first admin."""
    from medops import admin

    result = admin.init(settings(), admin_name)
    if json_output:
        print_json(
            {
                "home": result.home,
                "database": result.database,
                "revision": result.revision,
                "admin": result.admin.model_dump(mode="json"),
                "generated_password": result.generated_password,
            }
        )
        return
    print_record(
        "medops initialized",
        {
            "home": result.home,
            "database": result.database,
            "revision": result.revision,
            "admin": result.admin.username,
        },
    )
    if result.generated_password:
        console.print(
            f"Password of {result.admin.username} (shown once; store it now):",
            style="bold",
        )
        console.print(result.generated_password, markup=False, highlight=False)


def _say_starting(event: dict[str, Any]) -> None:
    """One JSON line (so a program can read it before the server's logs), flushed at once."""
    import json

    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


@app.command()
def server(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port to listen on."),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        envvar="MEDOPS_SERVER_WORKERS",
        help="Worker processes sharing the port (each with its own audit chain; changes made "
        "through one reach the others within MEDOPS_SERVING_REFRESH_SECONDS).",
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Say where it listens as one JSON line first (logs are JSON lines)."
    ),
) -> None:
    """Serve the API with uvicorn; SIGTERM drains requests and stops gracefully."""
    import uvicorn

    from medops.api.app import create_app, settle_heap
    from medops.logs import configure_logging

    config = settings()
    configure_logging(config.log_level)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": 30,
        **tls_options(config),
    }
    scheme = "https" if "ssl_certfile" in options else "http"
    if workers > 1:
        # Each worker is a fresh process that builds its own app from the same environment.
        if json_output:
            _say_starting(
                {"event": "starting", "url": f"{scheme}://{host}:{port}", "pid": os.getpid(),
                 "workers": workers}
            )  # fmt: skip
        uvicorn.run("medops.api.app:worker_app", factory=True, workers=workers, **options)
        return
    application = create_app(config)
    if json_output:
        _say_starting({"event": "starting", "url": f"{scheme}://{host}:{port}", "pid": os.getpid()})
    settle_heap()
    uvicorn.run(application, **options)


@app.command("console")
def web_console(
    port: int = typer.Option(
        0, "--port", min=0, max=65535, help="Local port (0: a free one is chosen)."
    ),
    open_browser: bool = typer.Option(
        True, "--open/--no-open", help="Open the console in the default web browser."
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Say where it listens as one JSON line first."
    ),
) -> None:
    """Serve the web console of this installation on 127.0.0.1 and open it in a browser;
    Ctrl-C stops it. Sign in with your user name, password and one-time code."""
    import json
    import socket
    import threading
    import time
    import webbrowser

    import uvicorn

    from medops.api.app import create_app
    from medops.logs import configure_logging

    config = settings()
    configure_logging(config.log_level)
    if port == 0:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    if json_output:  # one line, so a program can read it before the server's logs
        sys.stdout.write(json.dumps({"event": "starting", "url": url, "pid": os.getpid()}) + "\n")
        sys.stdout.flush()
    else:
        typer.echo(f"medops console at {url} (Ctrl-C stops it)")
    application = create_app(config)

    def open_when_ready() -> None:  # the browser opens once the port answers
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                time.sleep(0.1)
                continue
            webbrowser.open(url)
            return

    if open_browser:
        threading.Thread(target=open_when_ready, daemon=True).start()
    uvicorn.run(
        application, host="127.0.0.1", port=port, log_config=None, access_log=False,
        server_header=False,
    )  # fmt: skip


@app.command()
def login(
    username: str | None = typer.Option(
        None, "--username", "-u", help="Login name (prompted if absent)."
    ),
    password_stdin: bool = PasswordStdinOption,
    otp: str | None = typer.Option(
        None, "--otp", help="One-time code (TOTP or recovery code) when MFA is enrolled."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Log in and save an access token in MEDOPS_HOME/credentials.json (mode 0600)."""
    interactive = sys.stdin.isatty() and not password_stdin
    if username is None:
        if not interactive:
            raise fail("--username is required when the password comes from standard input")
        username = typer.prompt("Username")
    password = read_password(from_stdin=password_stdin)
    with client() as c:
        answer = with_one_time_code(
            lambda code: c.login(username, password, otp=code, save=True),
            otp,
            from_stdin=password_stdin,
        )
    if json_output:
        print_json(
            {
                "username": username,
                "expires_at": answer.expires_at.isoformat(),
                "restriction": answer.restriction,
            }
        )
        return
    expires = answer.expires_at.isoformat(timespec="seconds")
    console.print(f"logged in as {username}; session ends by {expires} or when idle")
    if answer.restriction == "mfa-enrollment":
        console.print("Your role requires MFA: run 'medops mfa enroll' before anything else.")
    elif answer.restriction == "password-change":
        console.print("Your password was reset: run 'medops password' before anything else.")


@app.command()
def logout(
    everywhere: bool = typer.Option(
        False, "--everywhere", help="End all your logins (CLI and browser), not just this one."
    ),
    json_output: bool = JsonOption,
) -> None:
    """End your login on the server and forget the saved token."""
    with client() as c:
        if everywhere:
            ended = c.logout_everywhere()
        else:
            c.logout()
            ended = 1
    if json_output:
        print_json({"logged_out": True, "sessions_ended": ended})
    else:
        console.print(f"logged out ({ended} session(s) ended)")


@app.command()
def password(
    password_stdin: bool = typer.Option(
        False,
        "--password-stdin",
        help="Read the current password, then the new one, from two lines of standard input.",
    ),
    json_output: bool = JsonOption,
) -> None:
    """Change your password (asks for the current one); your other logins end."""
    if password_stdin:
        current = read_password(from_stdin=True)
        new = read_password(from_stdin=True)
    else:
        current = read_password(from_stdin=False, prompt="Current password")
        new = read_password(from_stdin=False, prompt="New password", confirm=True)
    with client() as c:
        c.change_password(current, new)
    if json_output:
        print_json({"changed": True})
        return
    console.print("password changed; your other logins and API tokens have ended")


@app.command()
def profiles(json_output: bool = JsonOption) -> None:
    """The logins saved here (one per user), and which one commands use."""
    with client() as c:
        current, saved = c.saved_logins()
        chosen = c.settings.profile or current
    rows = [
        {"username": name, "in use": name == chosen, "expires_at": entry.get("expires_at")}
        for name, entry in sorted(saved.items())
    ]
    if json_output:
        print_json(rows)
        return
    print_table(
        "saved logins ('medops --as USER ...' picks one; 'medops login' adds or renews one)",
        ("username", "in use", "expires"),
        [(r["username"], "yes" if r["in use"] else "", r["expires_at"]) for r in rows],
    )


@app.command()
def whoami(json_output: bool = JsonOption) -> None:
    """Show who you are logged in as, your role and permissions."""
    with client() as c:
        me = c.whoami()
    if json_output:
        print_json(me)
        return
    record = me.model_dump(mode="json")
    record["permissions"] = ", ".join(me.permissions)
    print_record("whoami", record)


def main() -> None:
    """Entry point of the console script: one line on stderr and a non-zero exit on error."""
    try:
        code = app(standalone_mode=False)
    except TyperException as exc:  # usage errors: bad option, unknown command, missing value
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            sys.stdout.write(ctx.get_help() + "\n")
            raise SystemExit(0) from None
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        raise SystemExit(_exit(exc.format_message() + where, 2)) from None
    except typer.Abort:
        raise SystemExit(_exit("aborted", 130)) from None
    except MedopsError as exc:
        raise SystemExit(_exit(error_line(exc))) from None
    except KeyboardInterrupt:
        raise SystemExit(_exit("interrupted", 130)) from None
    except Exception as exc:  # noqa: BLE001 - the CLI never shows a traceback
        raise SystemExit(_exit(_unexpected(exc))) from None
    raise SystemExit(code if isinstance(code, int) else 0)


def _unexpected(exc: Exception) -> str:
    """The line for an exception no command handled: a value a pydantic model checked on this
    side names the field (pydantic is imported by then if that is what was raised), anything
    else is an internal error."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        return f"invalid {where}: {first['msg']}"
    return f"internal error ({type(exc).__name__}): {exc}"


def _exit(message: str, code: int = 1) -> int:
    fail(message, code)
    return code


if __name__ == "__main__":
    main()
