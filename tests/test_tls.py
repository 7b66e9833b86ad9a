"""`medops server` over HTTPS from MEDOPS_TLS_CERT_FILE/KEY_FILE, and the SDK trusting a
private CA through MEDOPS_CA_FILE; wrong TLS settings are one-line errors before it starts."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from medops.client import Client
from medops.config import Settings
from medops.errors import ConnectionFailedError
from tests.helpers.cli_runner import Cli, clean_env
from tests.helpers.server import MEDOPS, free_port, wait_ready
from tests.helpers.tls import TlsFiles, make_tls_files, other_key

ADMIN_PW = "tidal-lantern-quartz"

pytestmark = pytest.mark.slow


def trust(tls: TlsFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.ca_cert))


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "tls")


@pytest.fixture
def https_server(tmp_path: Path, tls: TlsFiles) -> Iterator[str]:
    # TLS is the listener's business, not the database's: the default SQLite home will do.
    env = clean_env(
        MEDOPS_HOME=str(tmp_path / "home"),
        MEDOPS_TLS_CERT_FILE=str(tls.cert),
        MEDOPS_TLS_KEY_FILE=str(tls.key),
    )
    Cli(env).ok("init", MEDOPS_ADMIN_PASSWORD=ADMIN_PW)
    port = free_port()
    proc = subprocess.Popen(
        [MEDOPS, "server", "--port", str(port), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert f'"url": "https://127.0.0.1:{port}"' in proc.stdout.readline()
        url = f"https://127.0.0.1:{port}"
        wait_ready(url, verify=trust(tls))
        yield url
    finally:
        proc.kill()
        proc.communicate()


def test_server_serves_https_and_the_sdk_trusts_the_private_ca(
    https_server: str, tls: TlsFiles, tmp_path: Path
) -> None:
    answer = httpx.get(f"{https_server}/readyz", verify=trust(tls))
    assert answer.status_code == 200
    assert answer.http_version == "HTTP/1.1"
    # Plain HTTP to the TLS port is not served.
    with pytest.raises(httpx.TransportError):
        httpx.get(https_server.replace("https://", "http://") + "/healthz", timeout=3)
    # Without the CA the certificate is not trusted: the SDK says it cannot connect.
    with (
        Client(url=https_server, settings=Settings(home=tmp_path / "untrusting")) as stranger,
        pytest.raises(ConnectionFailedError),
    ):
        stranger.login("admin", ADMIN_PW)
    trusting = Settings(home=tmp_path / "client", ca_file=tls.ca_cert)
    with Client(url=https_server, settings=trusting) as admin:
        admin.login("admin", ADMIN_PW)
        assert admin.whoami().username == "admin"


def test_half_or_wrong_tls_settings_are_one_line_errors(tmp_path: Path, tls: TlsFiles) -> None:
    base = clean_env(MEDOPS_HOME=str(tmp_path / "home"))
    cases = {
        "MEDOPS_TLS_KEY_FILE is not set": {"MEDOPS_TLS_CERT_FILE": str(tls.cert)},
        "is not a file": {
            "MEDOPS_TLS_CERT_FILE": str(tmp_path / "absent.pem"),
            "MEDOPS_TLS_KEY_FILE": str(tls.key),
        },
        "are not a PEM certificate and its private key": {
            "MEDOPS_TLS_CERT_FILE": str(tls.cert),
            "MEDOPS_TLS_KEY_FILE": str(other_key(tmp_path / "other.key")),
        },
    }
    for message, env in cases.items():
        result = Cli({**base, **env})("server", "--port", str(free_port()))
        assert result.code != 0
        lines = result.err.strip().splitlines()
        assert len(lines) == 1, result.err
        assert message in lines[0]
        assert "Traceback" not in result.err


def test_a_ca_file_that_is_not_pem_is_a_configuration_error(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    result = Cli(
        clean_env(
            MEDOPS_HOME=str(tmp_path / "home"),
            MEDOPS_URL="https://127.0.0.1:9",
            MEDOPS_CA_FILE=str(bogus),
        )
    )("whoami")
    assert result.code != 0
    assert "MEDOPS_CA_FILE" in result.err
    assert len(result.err.strip().splitlines()) == 1
