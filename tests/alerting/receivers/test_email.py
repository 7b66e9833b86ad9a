"""Mail through a real SMTP server (aiosmtpd) on the loopback: STARTTLS with a self-signed
certificate made here, login with the receiver's secret, a plain text and an HTML part."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from medops.alerting.receivers import DeliveryError, Secrets, build
from medops.alerting.schemas import ReceiverConfig
from tests.helpers.notify_peers import links, payload

PASSWORD = "smtp-pass-word"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Inbox:
    """What the SMTP server received, and who logged in."""

    messages: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.tls.append(session.ssl is not None)
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"

    def authenticate(
        self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password.decode() == PASSWORD
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=inbox.authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield inbox, port, cert
    finally:
        controller.stop()


def mail_config(port: int, **extra: Any) -> ReceiverConfig:
    return ReceiverConfig.model_validate(
        {"name": "clinical-mail", "kind": "email", "to": ["safety@hospital.example"],
         "sender": "medops@hospital.example", "smtp_host": "127.0.0.1", "smtp_port": port,
         "smtp_user": "medops", "secret": "clinical-mail", **extra}
    )  # fmt: skip


SECRETS = Secrets(Path("/nonexistent"), environ={"MEDOPS_ALERT_SECRET_CLINICAL_MAIL": PASSWORD})


def test_mail_goes_over_starttls_with_login_and_has_plain_and_html_parts(
    smtp: tuple[Inbox, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server sees TLS and the login; the message is multipart/alternative with text/plain
    and text/html, the subject the group's title, signed links in both parts."""
    inbox, port, cert = smtp
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test's own certificate
    build(mail_config(port), SECRETS).send(payload(), links(notification_id="row-9"))
    (mail,) = inbox.messages
    assert inbox.tls == [True]
    assert inbox.logins == ["medops"]
    assert mail["Subject"].startswith("[FIRING:1]")
    assert mail["To"] == "safety@hospital.example"
    assert mail["Message-ID"] == "<row-9@medops>"
    assert mail.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_payload(decode=True) for p in mail.walk()
             if not p.is_multipart()}  # fmt: skip
    assert set(parts) == {"text/plain", "text/html"}
    plain, html = (bytes(parts[k]).decode() for k in ("text/plain", "text/html"))
    assert "acknowledge: https://medops.example.org/alerts/act?token=v1." in plain
    assert "<table" in html
    assert "/alerts/act?token=v1." in html


def test_an_untrusted_certificate_is_a_delivery_error(smtp: tuple[Inbox, int, Path]) -> None:
    """Without trusting the server's certificate, STARTTLS fails and nothing is sent."""
    inbox, port, _ = smtp
    with pytest.raises(DeliveryError, match=r"TLS failed|SSL"):
        build(mail_config(port), SECRETS).send(payload(), links())
    assert not inbox.messages


def test_a_wrong_password_is_a_delivery_error_that_never_shows_the_password(
    smtp: tuple[Inbox, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server refuses the login: DeliveryError naming the server, never the password;
    nothing is delivered."""
    inbox, port, cert = smtp
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    wrong = Secrets(Path("/nonexistent"), environ={"MEDOPS_ALERT_SECRET_CLINICAL_MAIL": "nope"})
    with pytest.raises(DeliveryError) as caught:
        build(mail_config(port), wrong).send(payload(), links())
    assert caught.value.message.startswith(f"smtp://127.0.0.1:{port}: ")
    assert not inbox.messages
    assert "nope" not in caught.value.message
