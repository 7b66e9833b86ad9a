"""The API explorer at /docs: public, under the console's policy, its vendored files intact."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest

from medops.api.console.layout import CONSOLE_CSP

REPO = Path(__file__).resolve().parents[3]
SWAGGER = REPO / "src" / "medops" / "api" / "console" / "static" / "vendor" / "swagger-ui"
AXE = REPO / "tests" / "browser" / "vendor" / "axe-core"


def vendored(folder: Path) -> tuple[str, dict[str, str]]:
    """A vendored folder's VERSION file: its ``package@version`` line and file -> sha256."""
    lines = (folder / "VERSION").read_text(encoding="utf-8").splitlines()
    hashes = {}
    for line in lines[1:]:
        if not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            hashes[name] = digest
    return lines[0], hashes


@pytest.mark.parametrize(
    ("folder", "package"), [(SWAGGER, "swagger-ui-dist"), (AXE, "axe-core")], ids=["swagger", "axe"]
)
def test_vendored_files_are_exactly_those_the_version_file_lists_with_their_hashes(
    folder: Path, package: str
) -> None:
    """Each vendored folder holds its VERSION file and the files it names, byte for byte (a
    pinned npm version, its licence among them), and nothing else."""
    pinned, hashes = vendored(folder)
    assert re.fullmatch(rf"{package}@\d+\.\d+\.\d+", pinned)
    assert "LICENSE" in hashes
    assert {p.name for p in folder.iterdir()} == {*hashes, "VERSION"}
    for name, digest in hashes.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_the_api_explorer_is_public_and_loads_only_this_servers_files(
    http: httpx.Client,
) -> None:
    """/docs answers without a session, under the console's policy, with no inline script;
    every script and style it names is served by this server."""
    response = http.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CONSOLE_CSP
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sources
    assert "<script>" not in response.text
    assert ' style="' not in response.text
    for source in sources:
        assert source.startswith("/static/"), source
        assert http.get(source).status_code == 200, source
    assert http.get("/openapi.json").status_code == 200  # what swagger-init.js loads
