"""An S3-compatible server for tests: moto's standalone server (``moto_server``, from the
virtual environment) as a real process on the loopback, on a free port.

``MotoServer.start()`` launches it and waits until it answers; ``bucket()`` creates a fresh
bucket; ``env`` holds the AWS_* variables a client (or a subprocess) needs; ``stop()`` ends
the process it started.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "medops-test",
    "AWS_SECRET_ACCESS_KEY": "medops-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    """A running moto_server process."""

    endpoint: str
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=lambda: dict(CREDENTIALS))

    @classmethod
    def start(cls, *, timeout: float = 30.0) -> MotoServer:
        port = _free_port()
        program = Path(sys.executable).with_name("moto_server")
        process = subprocess.Popen(
            [str(program), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **CREDENTIALS},
        )
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):  # noqa: S310
                    break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        return cls(endpoint, process)

    def client(self) -> Any:
        import boto3  # type: ignore[import-untyped]

        return boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=self.endpoint)

    def bucket(self) -> str:
        """A new, empty bucket's name."""
        name = f"medops-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    """A moto_server for the length of the block."""
    server = MotoServer.start()
    try:
        yield server
    finally:
        server.stop()
