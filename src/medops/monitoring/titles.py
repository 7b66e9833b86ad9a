"""How a monitoring window is named for people: its title (deployment, version, kind and real
bounds) and a file name every operating system accepts. The console's window page, the
report file (api/console/report_file.py) and ``medops monitor report`` use them."""

from __future__ import annotations

from datetime import datetime, timedelta

from medops.monitoring.results import WindowSummary


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
