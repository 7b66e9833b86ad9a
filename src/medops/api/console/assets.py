"""The console's static files, served from the package (``/static/...``), from memory.

Everything a page loads lives under ``medops/api/console/static``: our own style sheet and script
and the vendored third-party assets (each in ``static/vendor/NAME`` with its licence and
version). Files are read once, at first use; answers carry a strong ETag and may be cached
for an hour, revalidated after that.
"""

from __future__ import annotations

import functools
import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from medops.api.deps import public
from medops.context import Context
from medops.errors import NotFoundError

router = APIRouter(include_in_schema=False, tags=["console"])
Public = Annotated[Context, Depends(public)]
STATIC_PREFIX = "/static"
TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@functools.cache
def assets() -> dict[str, Asset]:
    """Every file under ``static/``, keyed by its path relative to it."""
    found: dict[str, Asset] = {}
    root = resources.files("medops.api.console") / "static"
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        for entry in folder.iterdir():
            name = f"{prefix}{entry.name}"
            if entry.is_dir():
                stack.append((entry, f"{name}/"))
                continue
            body = entry.read_bytes()
            suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
            kind = TYPES.get(suffix) or mimetypes.guess_type(entry.name)[0] or "text/plain"
            digest = hashlib.sha256(body).hexdigest()[:32]
            found[name] = Asset(body, kind, f'"{digest}"')
    return found


def asset_text(name: str) -> str:
    """A static file's text (for the self-contained report files, which inline the style)."""
    return assets()[name].body.decode()


@router.get(f"{STATIC_PREFIX}/{{path:path}}", name="console.static")
def static_file(
    path: Annotated[str, Path(max_length=200)], request: Request, _ctx: Public
) -> Response:
    """One of the console's own files (style, script, vendored assets)."""
    asset = assets().get(path)
    if asset is None:
        raise NotFoundError(f"no static file {path!r}")
    headers = {"ETag": asset.etag, "Cache-Control": "public, max-age=3600"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)
