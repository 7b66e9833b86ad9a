"""Which deployments serve patients from a model's alias: a question the registry asks of
serving.

The registry cannot import serving (serving is built on it), so the wiring (``services.py``)
hands the registry a function that answers it. An alias a deployment follows is gated like a
protected one whatever the model's policy says, and a policy change cannot unprotect it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

# (session, model id, alias) -> names of the deployments that follow model@alias.
Followers = Callable[[Session, str, str], list[str]]


def no_followers(_session: Session, _model_id: str, _alias: str) -> list[str]:
    """For a registry wired without serving (nothing follows any alias)."""
    return []
