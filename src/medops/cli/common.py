"""Helpers shared by the CLI's command groups."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from medops.errors import FieldError, InvalidInputError, MfaRequiredError, clip

if TYPE_CHECKING:
    from medops.client import Client
    from medops.config import Settings

PasswordStdinOption = typer.Option(
    False,
    "--password-stdin",
    help="Read the password from the first line of standard input.",
)


def settings() -> Settings:
    """The settings (MEDOPS_* and the saved profile). Without MEDOPS_URL the command runs the
    installation in this process, whose warnings then go to stderr as JSON lines."""
    from medops.config import load_settings

    config = load_settings()
    if config.url is None:
        from medops.logs import configure_logging

        configure_logging("warning")
    return config


def client() -> Client:
    """An SDK client for the configured installation (remote or embedded)."""
    # Importing httpx imports its own command-line client (click, pygments, rich's syntax
    # highlighting), about 0.1 s of every command; medops never runs it, and httpx falls back
    # to a stub when that import fails, which a None entry in sys.modules makes it do.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from medops.client import Client

    return Client(settings=settings())


def read_password(*, from_stdin: bool, prompt: str = "Password", confirm: bool = False) -> str:
    """A password from stdin (scripts) or an interactive prompt that does not echo."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise InvalidInputError(
                "--password-stdin given but standard input had no password",
                errors=[FieldError("password", "empty")],
            )
        return password
    if not sys.stdin.isatty():
        raise InvalidInputError(
            "no terminal to prompt for a password on; pass it with --password-stdin"
        )
    value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return value


T = TypeVar("T")


def with_one_time_code(call: Callable[[str | None], T], otp: str | None, *, from_stdin: bool) -> T:
    """Run ``call(otp)``. When the server answers that the account needs a one-time code and
    none was given, ask for it (on the terminal, or as the line after the password with
    ``--password-stdin``) and run it once more."""
    try:
        return call(otp)
    except MfaRequiredError:
        if otp is not None:
            raise
    return call(read_code(from_stdin=from_stdin))


def read_code(*, from_stdin: bool) -> str:
    """A one-time code: the next line of standard input (after a ``--password-stdin``
    password) or a prompt on the terminal."""
    missing = (
        "your account has MFA: give the one-time code with --otp CODE "
        "(or on the line after the password with --password-stdin)"
    )
    if from_stdin:
        code = sys.stdin.readline().strip()
        if not code:
            raise InvalidInputError(missing, errors=[FieldError("otp", "missing")])
        return code
    if not sys.stdin.isatty():
        raise InvalidInputError(missing, errors=[FieldError("otp", "missing")])
    value: str = typer.prompt("One-time code (from your authenticator)")
    return value.strip()


_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_expiry(value: str, now: datetime | None = None) -> datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` from now, or an ISO date/time (UTC if no zone)."""
    now = now or datetime.now(UTC)
    text = value.strip().lower()
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        try:
            return now + timedelta(**{_UNITS[unit]: amount})
        except OverflowError:
            reason = "is too far in the future"
            raise InvalidInputError(
                f"--expires {clip(value)!r} {reason}", errors=[FieldError("expires", reason)]
            ) from None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        reason = "use a duration like 30d, 12h, 90m, 2w or an ISO date like 2027-01-31"
        raise InvalidInputError(
            f"--expires {clip(value)!r} is not understood: {reason}",
            errors=[FieldError("expires", reason)],
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_json_file(path: Path, what: str) -> Any:
    """The JSON document in ``path``; a clear one-line error when it cannot be read."""
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidInputError(f"{what} {path} is not valid JSON: {exc}") from None
