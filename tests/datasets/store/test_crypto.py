"""The data KEKs (from the environment or a 0600 keyring file made on first use) and sealed
secrets for database columns."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from medops.config import Settings
from medops.datasets.keys import add_key
from medops.errors import ConfigurationError, IntegrityError
from medops.storage.crypto import Keyring, sealed_kek_id


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(home=tmp_path / "home", database_url="sqlite://", **values)  # type: ignore[arg-type]


def test_keyring_file_is_made_0600_on_first_use_and_kept(tmp_path: Path) -> None:
    """The first use makes one key in a 0600 file; later uses read the same key."""
    settings = _settings(tmp_path)
    first = Keyring.from_settings(settings)
    path = settings.resolved_data_kek_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Keyring.from_settings(settings).current_id == first.current_id
    assert path.read_text().startswith(first.current_id + ":")


def test_keys_from_the_environment_current_first(tmp_path: Path) -> None:
    """MEDOPS_DATA_KEK's keys are used, the first wraps, and no file is made."""
    one, two = Keyring.generate_key(), Keyring.generate_key()
    text = ",".join(f"{i}:{base64.b64encode(k).decode()}" for i, k in (one, two))
    settings = _settings(tmp_path, data_kek=SecretStr(text))
    ring = Keyring.from_settings(settings)
    assert ring.current_id == one[0]
    assert ring.ids == [one[0], two[0]]
    assert not settings.resolved_data_kek_file.exists()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nocolon",
        "k1:" + base64.b64encode(b"short").decode(),
        "bad id:" + "A" * 44,
        "k1:"
        + base64.b64encode(bytes(32)).decode()
        + ",k1:"
        + base64.b64encode(bytes(32)).decode(),
    ],
)
def test_malformed_keys_are_a_configuration_error(tmp_path: Path, text: str) -> None:
    """Keys that are not id:base64 of 32 bytes, or a repeated id, are refused plainly."""
    with pytest.raises(ConfigurationError, match="MEDOPS_DATA_KEK"):
        Keyring.from_settings(_settings(tmp_path, data_kek=SecretStr(text)))


def test_seal_and_open_bind_the_context() -> None:
    """A sealed value opens with its context only, and names the KEK that wraps it."""
    ring = Keyring([Keyring.generate_key()])
    sealed = ring.seal(b"project secret", context=b"data_deid_projects:demo")
    assert b"project secret" not in sealed.encode()
    assert sealed_kek_id(sealed) == ring.current_id
    assert ring.open(sealed, context=b"data_deid_projects:demo") == b"project secret"
    with pytest.raises(IntegrityError):
        ring.open(sealed, context=b"data_deid_projects:other")


def test_tampered_or_malformed_sealed_values_fail() -> None:
    """A changed character or a value that is not sealed raises IntegrityError."""
    ring = Keyring([Keyring.generate_key()])
    sealed = ring.seal(b"x" * 40, context=b"c")
    body = sealed[:-5] + ("A" if sealed[-5] != "A" else "B") + sealed[-4:]
    for bad in (body, "plain text", "ms1.k.x.y"):
        with pytest.raises(IntegrityError):
            ring.open(bad, context=b"c")


def test_reseal_rewraps_without_the_context() -> None:
    """Resealing moves a value to the current KEK, keeps its ciphertext part, and the old
    KEK is no longer needed."""
    old = Keyring([Keyring.generate_key()])
    sealed = old.seal(b"mapping", context=b"row 7")
    new_key = Keyring.generate_key()
    both = old.with_current(new_key)
    moved = both.reseal(sealed)
    assert sealed_kek_id(moved) == new_key[0]
    assert moved.split(".")[3] == sealed.split(".")[3]
    assert Keyring([new_key]).open(moved, context=b"row 7") == b"mapping"
    assert both.reseal(moved) == moved


def test_add_key_puts_a_new_current_key_first(tmp_path: Path) -> None:
    """add_key makes a fresh current KEK and keeps the old ones; with the keys in the
    environment it refuses and says what to do."""
    settings = _settings(tmp_path)
    old = Keyring.from_settings(settings)
    new_id = add_key(settings)
    ring = Keyring.from_settings(settings)
    assert ring.ids == [new_id, old.current_id]
    assert stat.S_IMODE(settings.resolved_data_kek_file.stat().st_mode) == 0o600
    text = f"{new_id}:{base64.b64encode(bytes(32)).decode()}"
    with pytest.raises(ConfigurationError, match="MEDOPS_DATA_KEK"):
        add_key(_settings(tmp_path, data_kek=SecretStr(text)))
