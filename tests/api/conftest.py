"""Full-stack fixtures live in tests/conftest.py (shared by every test folder); the HTTP
helpers in tests/helpers/http.py. This module keeps their old import path working."""

from __future__ import annotations

from tests.helpers.http import bearer, login

__all__ = ["bearer", "login"]
