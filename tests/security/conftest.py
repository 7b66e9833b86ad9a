"""The attack stories run against the real app over HTTP: the full-stack fixtures of tests/api
are shared here."""

from __future__ import annotations

from tests.api.conftest import app, client_for, http, http_from, tokens

__all__ = ["app", "client_for", "http", "http_from", "tokens"]
