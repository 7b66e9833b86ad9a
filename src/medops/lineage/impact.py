"""Impact analysis: for one model version reached downstream of a dataset version, how the
data was used (the path to it), its aliases, and every deployment serving it now or before,
with predictions and monitoring windows counted from their own tables."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medops.lineage.graph import DV, MV, Step, Walker, split
from medops.lineage.schemas import ImpactModel, ImpactServing
from medops.monitoring.tables import MonitoringResult
from medops.registry.tables import ModelAlias, ModelVersion
from medops.serving.tables import Deployment, Prediction


def impact_model(
    session: Session, walker: Walker, node: str, root: str, parents: dict[str, Step]
) -> ImpactModel:
    """The model version ``node`` as the impact of ``root`` shows it (``parents``: the
    step that first reached each node, walking downstream from ``root``)."""
    row, name = walker.model_version(split(node)[1]) or (None, "")
    assert row is not None
    path = [walker.node(node).label]
    relation = "derived"
    current = node
    while current != root and current in parents:
        step = parents[current]
        if split(step.target)[0] == MV and split(step.source)[0] == DV and relation == "derived":
            relation = step.relation
        current = step.source
        path.append(walker.node(current).label)
    aliases = sorted(
        session.scalars(select(ModelAlias.alias).where(ModelAlias.version_id == row.id))
    )
    return ImpactModel(
        model=name,
        version=row.version,
        ref=f"{name}/{row.version}",
        relation=relation,
        path=list(reversed(path)),
        aliases=aliases,
        serving=serving(session, walker, row, name),
    )


def serving(session: Session, walker: Walker, row: ModelVersion, name: str) -> list[ImpactServing]:
    """Every deployment serving version ``row`` of model ``name`` now (primary through an
    alias or pinned, canary, shadow) or before (its predictions say so), with counts."""
    arms: dict[str, tuple[str, str | None, bool, int | None]] = {}
    for dep in session.scalars(
        select(Deployment).where(Deployment.model_id == row.model_id).order_by(Deployment.name)
    ):
        primary = (
            walker.alias_version(row.model_id, dep.alias) == row.id
            if dep.alias is not None
            else dep.version == row.version
        )
        if primary:
            arms[dep.name] = ("primary", dep.alias, True, None)
        elif dep.canary_version == row.version:
            arms[dep.name] = ("canary", None, dep.canary_percent > 0, dep.canary_percent)
        elif dep.shadow_version == row.version:
            arms[dep.name] = ("shadow", None, True, None)
    # Deployments that served the version before (their predictions say so).
    for dep_name, arm in session.execute(
        select(Prediction.deployment, func.max(Prediction.arm))
        .where(Prediction.model_name == name, Prediction.version == row.version)
        .group_by(Prediction.deployment)
    ):
        arms.setdefault(dep_name, (arm, None, False, None))
    out = []
    for dep_name, (arm, alias, now, percent) in sorted(arms.items()):
        count, last = session.execute(
            select(func.count(), func.max(Prediction.occurred_at)).where(
                Prediction.deployment == dep_name,
                Prediction.model_name == name,
                Prediction.version == row.version,
            )
        ).one()
        windows = [
            (drifted, verdict)
            for drifted, verdict in session.execute(
                select(MonitoringResult.drifted, MonitoringResult.verdict)
                .where(
                    MonitoringResult.deployment == dep_name,
                    MonitoringResult.model_name == name,
                    MonitoringResult.version == row.version,
                )
                .order_by(MonitoringResult.window_end, MonitoringResult.id)
            )
        ]
        out.append(
            ImpactServing(
                deployment=dep_name,
                model=name,
                version=row.version,
                arm=arm if arm in {"primary", "canary", "shadow"} else "primary",
                via_alias=alias,
                serving_now=now,
                canary_percent=percent,
                predictions=int(count or 0),
                last_prediction_at=last,
                windows=len(windows),
                drifted_windows=sum(1 for d, _ in windows if d),
                last_window_verdict=windows[-1][1] if windows else None,
            )
        )
    return out
