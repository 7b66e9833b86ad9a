"""Security headers of every answer, added by api/middleware.py as the answer starts.

Every answer carries ``X-Content-Type-Options: nosniff`` (a browser never guesses a type from
the content, so a JSON answer holding markup is not run as HTML). HTML answers (the validation
report, the model card, the monitoring report) also carry:

- ``Content-Security-Policy``: ``default-src 'none'`` (no script, image, font, frame or
  connection at all), styles only from the pages' own inline style sheets, each allowed by its
  SHA-256 hash, so no ``'unsafe-inline'`` is needed; ``frame-ancestors 'none'``,
  ``base-uri 'none'`` and ``form-action 'none'``. The reports draw their plots as inline SVG
  with presentation attributes, which need no permission; they have no ``style`` attributes.
- ``Referrer-Policy: no-referrer``: a link followed from a report does not tell the other
  site the report's address.
- ``X-Frame-Options: DENY``: no framing, for browsers that predate ``frame-ancestors``.

Console pages (console/layout.py) set a policy of their own, which is kept: scripts and
styles from this server's ``/static`` files only, still no inline script or style.

The monitoring report inlines the console's style sheet (``console/static/console.css``), so
its hash follows that file. A page with another style sheet adds it to HTML_STYLES
(tests/security/test_input_edges.py fails when a served page holds a style sheet the policy
does not allow).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

from medops.api.console import report_file as monitoring_report
from medops.registry import card, report_html

HTML_STYLES: Final = (report_html.STYLE, card.STYLE, monitoring_report.STYLE)


def style_hash(css: str) -> str:
    """The CSP hash source of an inline style sheet's text."""
    digest = hashlib.sha256(css.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "style-src " + " ".join(style_hash(css) for css in HTML_STYLES),
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    )
)
EVERY_ANSWER: Final = ((b"x-content-type-options", b"nosniff"),)
HTML_ANSWER: Final = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_CSP: Final = b"content-security-policy"
_OURS: Final = frozenset(name for name, _ in (*EVERY_ANSWER, *HTML_ANSWER))


def secured(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with the security headers of the answer's content type (any the route
    set itself is replaced)."""
    html = any(
        name.lower() == b"content-type" and value.lower().startswith(b"text/html")
        for name, value in headers
    )
    own_policy = any(name.lower() == b"content-security-policy" for name, _ in headers)
    if own_policy:  # a console page: its own (script-allowing) policy, the rest as ours
        kept = [(n, v) for n, v in headers if n.lower() not in _OURS or n.lower() == _CSP]
        return [*kept, *EVERY_ANSWER, *(h for h in HTML_ANSWER if h[0] != _CSP)]
    kept = [(name, value) for name, value in headers if name.lower() not in _OURS]
    return [*kept, *EVERY_ANSWER, *(HTML_ANSWER if html else ())]
