"""Signed acknowledge/resolve links: what the token binds, the key, and the console URLs."""

from __future__ import annotations

import stat
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from medops.alerting.links import LinkClaim, Links, load_key, sign, verify
from medops.config import Settings
from medops.errors import InvalidInputError
from tests.helpers.notify_peers import LINK_KEY, T0

CLAIM = LinkClaim("alert-1", "acknowledge", T0 + timedelta(hours=1), "ana")


def test_a_signed_claim_verifies_back_to_itself() -> None:
    """Alert, action, expiry (to the second) and user come back as signed."""
    assert verify(LINK_KEY, sign(LINK_KEY, CLAIM), T0) == CLAIM


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"alert_id": "alert-2"}, "bad signature"),
        ({"action": "resolve"}, "bad signature"),
        ({"user": "eve"}, "bad signature"),
        ({"expires": T0 + timedelta(days=30)}, "bad signature"),
    ],
)
def test_a_claim_changed_after_signing_is_refused(change: dict[str, object], reason: str) -> None:
    """Swapping in another claim's body under the original MAC fails: the MAC binds all."""
    token = sign(LINK_KEY, CLAIM)
    forged_body = sign(b"x" * 32, replace(CLAIM, **change)).split(".")[1]  # type: ignore[arg-type]
    forged = ".".join([token.split(".")[0], forged_body, token.split(".")[2]])
    with pytest.raises(InvalidInputError, match=reason) as caught:
        verify(LINK_KEY, forged, T0)
    assert caught.value.errors[0].field == "token"


def test_an_expired_malformed_or_foreign_token_is_refused() -> None:
    """After its expiry, cut short, or signed with another key: refused, naming why."""
    token = sign(LINK_KEY, CLAIM)
    with pytest.raises(InvalidInputError, match="expired"):
        verify(LINK_KEY, token, T0 + timedelta(hours=1))
    with pytest.raises(InvalidInputError, match="malformed"):
        verify(LINK_KEY, token.rsplit(".", 1)[0], T0)
    with pytest.raises(InvalidInputError, match="bad signature"):
        verify(b"y" * 32, token, T0)


def test_the_link_key_file_is_made_once_private_and_reused(tmp_path: Path) -> None:
    """No MEDOPS_ALERT_LINK_KEY: a 0600 key file in the home, the same key on every load."""
    settings = Settings(home=tmp_path / "home", database_url="sqlite://")
    first = load_key(settings)
    assert load_key(settings) == first
    assert len(first) == 32
    mode = stat.S_IMODE(settings.alert_link_key_file.stat().st_mode)
    assert mode == 0o600


def test_a_link_key_setting_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    """MEDOPS_ALERT_LINK_KEY is used as given; shorter than 32 characters is refused."""
    good = Settings(home=tmp_path, database_url="sqlite://", alert_link_key=SecretStr("k" * 40))
    assert load_key(good) == b"k" * 40
    short = Settings(home=tmp_path, database_url="sqlite://", alert_link_key=SecretStr("k"))
    with pytest.raises(InvalidInputError, match="at least 32"):
        load_key(short)


def test_links_point_under_the_public_url_and_carry_a_verifiable_token(tmp_path: Path) -> None:
    """MEDOPS_PUBLIC_URL prefixes the console, evidence and act links; the act link's token
    verifies to the alert and action, valid MEDOPS_ALERT_LINK_HOURS."""
    settings = Settings(
        home=tmp_path, database_url="sqlite://", public_url="https://medops.example.org/",
        alert_link_hours=12,
    )  # fmt: skip
    links = Links.for_settings(settings, LINK_KEY, T0)
    urls = links.alert("alert-9", "/deployments/diabetes")
    assert urls.evidence == "https://medops.example.org/deployments/diabetes"
    parts = urlsplit(urls.resolve)
    assert (parts.netloc, parts.path) == ("medops.example.org", "/alerts/act")
    claim = verify(LINK_KEY, parse_qs(parts.query)["token"][0], T0)
    assert (claim.alert_id, claim.action, claim.expires) == (
        "alert-9", "resolve", T0 + timedelta(hours=12),
    )  # fmt: skip


def test_a_public_url_that_is_not_http_is_refused() -> None:
    """MEDOPS_PUBLIC_URL must be an http(s) address."""
    with pytest.raises(ValueError, match="http"):
        Settings(home=Path("/tmp"), database_url="sqlite://", public_url="ftp://x")  # noqa: S108
