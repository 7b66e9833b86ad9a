"""Helpers shared by the benchmark scripts (standard library only: each script also runs in
benchmark-only virtual environments). Scripts run as ``python3 benchmarks/NAME.py``, so this
folder is first on ``sys.path`` and ``import benchlib`` finds this file in any venv."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def working_folder(chosen: Path | None, prefix: str) -> Iterator[Path]:
    """``chosen`` (created, kept afterwards), or else a temporary folder removed at the end."""
    if chosen is not None:
        chosen.mkdir(parents=True, exist_ok=True)
        yield chosen.resolve()
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        yield Path(folder)


# Child processes of the monitoring benchmarks: no telemetry, unbuffered output, no bytecode.
QUIET_ENV = {
    "DO_NOT_TRACK": "true",
    "EVIDENTLY_DISABLE_TELEMETRY": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def peak_kib() -> int:
    """Peak resident set of this process so far (VmHWM of /proc/self/status), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")
