"""Run the medops app in-process behind a synchronous httpx transport.

The SDK uses this when no ``MEDOPS_URL`` is set: requests take the same path as over the
network (middleware, authentication, permission checks, audit), lifespan included, with no
socket. The ASGI app runs on an event loop in a daemon thread, so a client that is never
closed cannot keep the interpreter from exiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

EMBEDDED_CLIENT_ADDRESS = ("127.0.0.1", 0)
T = TypeVar("T")


class EmbeddedTransport(httpx.BaseTransport):
    """An httpx transport that hands each request to an in-process ASGI app."""

    def __init__(self, app: FastAPI, *, client: tuple[str, int] = EMBEDDED_CLIENT_ADDRESS) -> None:
        """``client``: the address requests appear to come from (the loopback by default)."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="medops-embedded", daemon=True
        )
        self._thread.start()
        self._lifespan = app.router.lifespan_context(app)
        try:
            self._run(self._lifespan.__aenter__())
        except BaseException:
            self._stop()
            raise
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client)
        self._closed = False

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            inner = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._asgi.handle_async_request(inner)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        status, headers, content = self._run(call())
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        """Close the connection (and, embedded, stop the in-process app)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self._lifespan.__aexit__(None, None, None))
        finally:
            self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
