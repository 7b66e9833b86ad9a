"""The SDK as users see it: one `Client` with a documented method for each thing they can do,
typed for their type checkers."""

from __future__ import annotations

import inspect
from importlib import resources

import medops
from medops.client import Client


def test_every_public_method_is_documented() -> None:
    """Each public method of `Client` says what it does (its docstring)."""
    undocumented = [
        name
        for name, function in inspect.getmembers(Client, inspect.isfunction)
        if not name.startswith("_") and not (function.__doc__ or "").strip()
    ]
    assert undocumented == []


def test_the_package_ships_its_types() -> None:
    """medops carries the PEP 561 marker, so users' type checkers read its annotations."""
    assert (resources.files("medops") / "py.typed").is_file()


def test_the_top_level_name_is_the_sdk_client() -> None:
    """`medops.Client` is `medops.client.Client`, imported on first use."""
    assert medops.Client is Client
