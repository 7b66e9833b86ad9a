"""The API explorer at ``/docs``: Swagger UI over ``/openapi.json``, from this server alone.

Swagger UI is vendored (``static/vendor/swagger-ui``: the npm version and each file's sha256
are in its VERSION file) and started by our own ``static/swagger-init.js``: no inline script,
nothing from another origin. The page is public, as the OpenAPI document it shows already is;
trying an operation out calls the API with the viewer's own session (and its CSRF header) or
a bearer token typed into Swagger UI's Authorize dialog, so the API's permission checks and
audit apply as to any client.

Its Content-Security-Policy is the console's (``CONSOLE_CSP``) with nothing loosened:
checked in a real browser (tests/browser/test_shell.py fails on any CSP violation reported
to the console and checks the operations render). Swagger UI sets inline styles through the
CSSOM (``element.style``), which ``style-src 'self'`` does not govern; its icons are inline
SVG and ``data:`` images, which ``img-src 'self' data:`` allows.

Accessibility (axe-core, in the browser tests): ``static/swagger-overrides.css`` darkens the
colours of Swagger UI's that fail WCAG AA contrast, and deep links are off, since Swagger UI
draws each deep link as a link inside the button that opens the operation (nested
interactive controls, which screen readers cannot reach).
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from medops.api.console.errors import CONSOLE_TAG
from medops.api.console.layout import PAGE_HEADERS
from medops.api.deps import public
from medops.context import Context

router = APIRouter(include_in_schema=False, tags=[CONSOLE_TAG])
Public = Annotated[Context, Depends(public)]
VENDOR: Final = "/static/vendor/swagger-ui"

PAGE: Final = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>medops API</title>
<link rel="stylesheet" href="{VENDOR}/swagger-ui.css">
<link rel="stylesheet" href="/static/swagger-overrides.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{VENDOR}/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>
"""


@router.get("/docs", name="console.api-docs", response_class=HTMLResponse)
def api_docs(_ctx: Public) -> HTMLResponse:
    """Swagger UI over this server's OpenAPI document."""
    return HTMLResponse(PAGE, headers=PAGE_HEADERS)
