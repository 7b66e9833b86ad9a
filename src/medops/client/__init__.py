"""The medops SDK: ``Client``, one object for everything a user can do with medops.

>>> from medops.client import Client        # or: import medops; medops.Client
>>> with Client() as c:                      # MEDOPS_URL, MEDOPS_TOKEN, MEDOPS_HOME as set
...     c.login("ana", password)             # doctest: +SKIP

With ``MEDOPS_URL`` (or ``url=``) the client talks to that server over HTTP; without it, it
runs the medops app in this process on ``MEDOPS_HOME`` (the embedded mode). Every call goes
through the API either way, so it is authenticated, permission-checked and audited as it
would be over the network. Errors raise the exceptions of ``medops.errors``.

The package: ``transport.py`` (the connection, answers and errors, saved logins),
``embedded.py`` (the in-process transport), and one module of calls per domain:
``access.py`` (login, users, tokens, MFA, break-glass), ``audit.py``, ``registry.py``,
``serving.py`` and ``monitoring.py``. ``shapes.py`` checks each answer's shape.
"""

from __future__ import annotations

from medops.client.access import AccessCalls
from medops.client.alerts import AlertCalls
from medops.client.audit import AuditCalls
from medops.client.datasets import DatasetCalls
from medops.client.features import FeatureCalls
from medops.client.features_online import FeatureOnlineCalls
from medops.client.lineage import LineageCalls
from medops.client.monitoring import MonitoringCalls
from medops.client.notifications import NotificationCalls
from medops.client.plans import PlanCalls
from medops.client.registry import RegistryCalls
from medops.client.serving import ServingCalls
from medops.client.slo import SloCalls
from medops.client.training import TrainingCalls
from medops.client.transport import EMBEDDED_KEY

__all__ = ["EMBEDDED_KEY", "Client"]


class Client(
    AccessCalls,
    AuditCalls,
    RegistryCalls,
    ServingCalls,
    MonitoringCalls,
    AlertCalls,
    NotificationCalls,
    SloCalls,
    DatasetCalls,
    LineageCalls,
    TrainingCalls,
    PlanCalls,
    FeatureCalls,
    FeatureOnlineCalls,
):
    """Talks to one medops installation as one user (the token's).

    ``Client(url=None, token=None, *, settings=None, transport=None)``: ``url`` of a server
    (default ``MEDOPS_URL``; none: the embedded mode on ``MEDOPS_HOME``), ``token`` (default
    ``MEDOPS_TOKEN``, else the login saved by ``login(..., save=True)``). Use it as a context
    manager, or call ``close()``."""
