"""A monitoring window as one self-contained HTML file: the console's window page
(``window.py``) with the console's style sheet inlined, no script, nothing from another
origin, so it opens from disk and prints. ``medops monitor report`` writes it and the API
answers it to ``GET /api/v1/monitoring/report`` with ``Accept: text/html`` (its inline style is
allowed by hash: ``STYLE`` is in api/headers.py ``HTML_STYLES``)."""

from __future__ import annotations

from typing import Final

import medops
from medops.api.console.assets import asset_text
from medops.api.console.window import render as window_body
from medops.core.svg import esc
from medops.monitoring.results import WindowDocument
from medops.monitoring.titles import window_title

# The file's one style sheet: the console's, as served at /static/console.css.
STYLE: Final = asset_text("console.css")


def render(document: WindowDocument) -> str:
    """The self-contained page of one stored window (``MonitoringService.document``)."""
    title = window_title(document)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f'<main id="main"><h1>{esc(title)}</h1>{window_body(document)}</main>'
        f"<footer><span>medops {esc(medops.__version__)}</span></footer></body></html>"
    )
