# ruff: noqa: T201
"""Does a failed login take the same time for an unknown user as for a wrong password?

A timing difference would tell an attacker which usernames exist. medops verifies a dummy
argon2id hash for unknown users. This measures both paths through the real app (embedded,
SQLite), interleaved, and reports medians and the ratio. Run: .venv/bin/python
benchmarks/login_timing.py [rounds]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from medops import admin
from medops.api.app import create_app
from medops.client.embedded import EmbeddedTransport
from medops.config import Settings


def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            home=Path(folder),
            admin_password="pebble-torch-quartz",  # type: ignore[arg-type]  # noqa: S106
            # Throttling off: this measures the judgment itself (the delays and address blocks
            # are the same for both paths by construction, and would dominate the numbers).
            login_address_failures=100_000,
            login_delay_after=1000,
            mfa_required_roles=(),
        )
        admin.init(settings)
        app = create_app(settings)
        with httpx.Client(transport=EmbeddedTransport(app), base_url="http://bench") as client:
            samples: dict[str, list[float]] = {"unknown user": [], "wrong password": []}
            for i in range(rounds):
                for label, user in (("unknown user", f"ghost{i}"), ("wrong password", "admin")):
                    started = time.perf_counter()
                    answer = client.post(
                        "/api/v1/auth/token", data={"username": user, "password": "nope-nope-nope"}
                    )
                    samples[label].append(time.perf_counter() - started)
                    assert answer.status_code == 401, answer.text
    medians = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    for label, ms in medians.items():
        print(f"{label:15s} median {ms:7.2f} ms  (n={rounds})")
    print(f"ratio unknown/wrong: {medians['unknown user'] / medians['wrong password']:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
