"""Every router of the console, in the order the app includes them (after the API's)."""

from __future__ import annotations

from fastapi import APIRouter

from medops.api.console import (
    account,
    admin,
    alert_act,
    alerts,
    apidocs,
    assets,
    audit,
    datasets,
    explanation,
    lineage,
    models,
    monitoring,
    overview,
    slo,
    window_page,
)


def routers() -> list[APIRouter]:
    """The console's routers: static files, sign-in and account, then the pages."""
    return [
        assets.router,
        account.router,
        apidocs.router,
        overview.router,
        monitoring.router,
        window_page.router,
        alert_act.router,  # /alerts/act before /alerts/{alert_id}
        alerts.router,
        slo.router,
        models.router,
        datasets.router,
        lineage.router,
        audit.router,
        explanation.router,
        admin.router,
    ]
