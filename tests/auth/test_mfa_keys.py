"""Sealing TOTP secrets: AES-256-GCM bound to the user, keys from a 0600 file or a variable."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import pytest

from medops.auth import mfa_keys
from medops.errors import ConfigurationError, IntegrityError

USER = uuid.UUID("12345678-1234-5678-1234-567812345678")
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_a_sealed_secret_opens_only_for_its_user_and_untouched() -> None:
    """Round trip; another user's id or one changed character raises IntegrityError."""
    ring = mfa_keys.Keyring(mfa_keys.new_key())
    sealed = ring.seal(USER, SECRET)
    assert sealed.startswith(f"v1.{ring.current_id}.")
    assert SECRET not in sealed
    assert ring.open(USER, sealed) == SECRET
    with pytest.raises(IntegrityError):
        ring.open(uuid.uuid4(), sealed)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(IntegrityError):
        ring.open(USER, flipped)
    with pytest.raises(IntegrityError, match="not encrypted"):
        ring.open(USER, SECRET)


def test_two_seals_of_one_secret_differ() -> None:
    """A fresh nonce each time: equal secrets do not look equal in the database."""
    ring = mfa_keys.Keyring(mfa_keys.new_key())
    assert ring.seal(USER, SECRET) != ring.seal(USER, SECRET)


def test_an_unknown_key_id_opens_nothing_rather_than_failing() -> None:
    """A keyring without the sealing key answers None (the caller may re-read its keys)."""
    sealed = mfa_keys.Keyring(mfa_keys.new_key()).seal(USER, SECRET)
    assert mfa_keys.Keyring(mfa_keys.new_key()).open(USER, sealed) is None


def test_the_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    """The first process to need a key writes it; a second exclusive write keeps the first."""
    path = tmp_path / "home" / "mfa-secrets.key"
    keys = mfa_keys.MfaKeys(path)
    first = keys.ring()
    assert first is not None
    assert path.stat().st_mode & 0o777 == 0o600
    mfa_keys.write_key_file(path, [mfa_keys.new_key()], exclusive=True)
    assert mfa_keys.MfaKeys(path).ring() == first


def test_a_replaced_key_file_is_read_again(tmp_path: Path) -> None:
    """Another process rotating the file is seen by the next seal or open."""
    path = tmp_path / "mfa-secrets.key"
    keys = mfa_keys.MfaKeys(path)
    old = keys.ring()
    assert old is not None
    sealed = keys.seal(USER, SECRET)
    new = mfa_keys.new_key()
    mfa_keys.write_key_file(path, [new, old.current])
    assert keys.seal(USER, SECRET).split(".")[1] == mfa_keys.key_id(new)
    assert keys.open(USER, sealed) == SECRET


def test_keys_from_the_environment_need_no_file(tmp_path: Path) -> None:
    """MEDOPS_MFA_KEY: the first key seals, the others still open; no file is written."""
    current, old = os.urandom(32), os.urandom(32)
    text = f"{base64.b64encode(current).decode()},{base64.b64encode(old).decode()}"
    path = tmp_path / "absent.key"
    keys = mfa_keys.MfaKeys(path, text)
    sealed_with_old = mfa_keys.Keyring(old).seal(USER, SECRET)
    assert keys.open(USER, sealed_with_old) == SECRET
    assert keys.seal(USER, SECRET).split(".")[1] == mfa_keys.key_id(current)
    assert not path.exists()


@pytest.mark.parametrize("text", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_bad_keys_are_refused_clearly(text: str) -> None:
    """A missing, malformed or short key is a configuration error naming its source."""
    with pytest.raises(ConfigurationError, match="MEDOPS_MFA_KEY"):
        mfa_keys.decode_keys(text, source="MEDOPS_MFA_KEY")
