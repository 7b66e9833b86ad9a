"""Settings come from MEDOPS_* variables; a bad one fails with one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from medops.config import Settings, load_settings
from medops.errors import ConfigurationError


def test_defaults_put_everything_in_dot_medops(monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing set: home ./.medops, SQLite file in it, embedded mode, no token."""
    for name in ("MEDOPS_HOME", "MEDOPS_DATABASE_URL", "MEDOPS_URL", "MEDOPS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.home == Path(".medops")
    assert settings.resolved_database_url == f"sqlite:///{Path('.medops/medops.db').resolve()}"
    assert settings.url is None
    assert settings.token is None


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each MEDOPS_* variable sets its field; postgresql:// gets the psycopg driver."""
    monkeypatch.setenv("MEDOPS_HOME", str(tmp_path))
    monkeypatch.setenv("MEDOPS_DATABASE_URL", "postgresql://u@db.hospital:5432/medops")
    monkeypatch.setenv("MEDOPS_URL", "https://medops.hospital/")
    monkeypatch.setenv("MEDOPS_TOKEN", "mdo_x")
    settings = load_settings()
    assert settings.home == tmp_path
    assert settings.resolved_database_url == "postgresql+psycopg://u@db.hospital:5432/medops"
    assert settings.url == "https://medops.hospital"
    assert settings.token == "mdo_x"


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("MEDOPS_URL", "medops.hospital", "must start with http:// or https://"),
        ("MEDOPS_DATABASE_URL", "mysql://x", "must be a sqlite:///path or postgresql://"),
        ("MEDOPS_DATABASE_URL", "sqlitex:///x", "must be a sqlite:///path or postgresql://"),
        ("MEDOPS_DATABASE_URL", "postgresql+asyncpg://u@h/d", "must be a sqlite:///path"),
        ("MEDOPS_MAX_REQUEST_BYTES", "10", "greater than or equal to 1024"),
        ("MEDOPS_LOG_LEVEL", "verbose", "Input should be"),
        ("MEDOPS_SESSION_IDLE_MINUTES", "0", "greater than or equal to 1"),
        ("MEDOPS_MFA_REQUIRED_ROLES", "admin,boss", "unknown role(s) boss"),
        ("MEDOPS_REQUEST_TIMEOUT_SECONDS", "soon", "valid number"),
        ("MEDOPS_MONITOR_WINDOW", "month", "should match pattern"),
        ("MEDOPS_MONITOR_WINDOW", "count:20000000", "10 to 10,000,000 predictions"),
    ],
)
def test_invalid_setting_raises_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    """The message starts with the variable's name and fits on one line."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"invalid setting {variable}: ")
    assert reason in message
    assert "\n" not in message


def test_settings_are_frozen() -> None:
    """Settings are read once and passed around; nobody changes them in flight."""
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.home = Path("/elsewhere")  # type: ignore[misc]
