"""A monitoring window as one self-contained HTML file: the console's window page
(``console/window.py``) with the console's style sheet inlined, no script, nothing from another
origin, so it opens from disk and prints. ``medops monitor report`` writes it and the API
answers it to ``GET /api/v1/monitoring/report`` with ``Accept: text/html`` (its inline style is
allowed by hash: ``STYLE`` is in api/headers.py ``HTML_STYLES``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import medops
from medops.console.assets import asset_text
from medops.console.window import render as window_body
from medops.core.svg import esc
from medops.monitoring.results import WindowDocument, WindowSummary

# The file's one style sheet: the console's, as served at /static/console.css.
STYLE: Final = asset_text("console.css")


def window_title(document: WindowSummary) -> str:
    """A window as a person reads it: deployment, version, kind and its real bounds (a count
    window's first and last prediction, not the half-open end a microsecond later)."""
    start = datetime.fromisoformat(document.start)
    end = datetime.fromisoformat(document.end)
    head = f"{document.deployment} v{document.version} {document.window}"
    kind = document.window
    if kind.startswith("count:"):
        size, number = int(kind.split(":", 1)[1]), int(document.sequence or 0)
        last = end - timedelta(microseconds=1)
        return (
            f"{head} window #{number + 1} (predictions {number * size + 1} to "
            f"{(number + 1) * size}), logged {start:%Y-%m-%d %H:%M:%S} to "
            f"{last:%Y-%m-%d %H:%M:%S} UTC"
        )
    return f"{head} window {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def file_name(document: WindowSummary, suffix: str) -> str:
    """A file name every operating system accepts (no ``:``): deployment, kind, version and
    sequence, e.g. ``monitoring-diabetes-count500-v2-3.html``."""
    kind = document.window.replace(":", "")
    sequence = document.sequence if document.sequence is not None else 0
    return f"monitoring-{document.deployment}-{kind}-v{document.version}-{sequence}{suffix}"


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
