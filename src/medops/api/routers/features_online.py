"""The online side of the feature store over HTTP: binding a deployment to feature views
(``features:write``), materializing views into the online store and the online/offline skew check
(``features:materialize``, as the role table describes it), the materialization state, an
entity's online values and served-against-trained skew (``features:read``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from starlette.concurrency import run_in_threadpool

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.features.online.schemas import (
    FeatureBindingIn,
    FeatureBindingOut,
    MaterializationState,
    MaterializeIn,
    MaterializeOut,
    OnlineLookupIn,
    OnlineLookupOut,
    OnlineSkewIn,
    ServedSkewIn,
    ServedSkewOut,
    SkewCheckOut,
)

router = APIRouter(tags=["features"])
Reader = Annotated[Context, Depends(require(Permission.FEATURES_READ))]
Writer = Annotated[Context, Depends(require(Permission.FEATURES_WRITE))]
Materializer = Annotated[Context, Depends(require(Permission.FEATURES_MATERIALIZE))]
DeploymentName = Annotated[str, Path(min_length=1, max_length=64)]


@router.put(f"{API_PREFIX}/deployments/{{name}}/features", name="features.bind")
def bind(
    services: ServicesDep, ctx: Writer, name: DeploymentName, body: FeatureBindingIn
) -> FeatureBindingOut:
    """Serve the deployment's model from feature views: requests then carry entity keys and
    request values only."""
    return services.feature_online.bind(ctx, name, body.spec)


@router.get(f"{API_PREFIX}/deployments/{{name}}/features", name="features.binding")
def binding(services: ServicesDep, _ctx: Reader, name: DeploymentName) -> FeatureBindingOut:
    """The deployment's feature binding."""
    return services.feature_online.binding(name)


@router.delete(
    f"{API_PREFIX}/deployments/{{name}}/features", name="features.unbind", status_code=204
)
def unbind(services: ServicesDep, ctx: Writer, name: DeploymentName) -> Response:
    """Stop serving the deployment from feature views (requests carry every input again)."""
    services.feature_online.unbind(ctx, name)
    return Response(status_code=204)


@router.post(f"{API_PREFIX}/features/materialize", name="features.materialize")
async def materialize(
    services: ServicesDep, ctx: Materializer, body: MaterializeIn
) -> MaterializeOut:
    """Write the newest rows of the views (default: every view a deployment serves from)
    to the online store, from each view's watermark."""
    return await run_in_threadpool(services.feature_online.materialize, ctx, body)


@router.get(f"{API_PREFIX}/features/materializations", name="features.materializations")
def materializations(services: ServicesDep, _ctx: Reader) -> list[MaterializationState]:
    """How far each view has been materialized into this installation's online store."""
    return services.feature_online.states()


@router.post(f"{API_PREFIX}/features/online", name="features.online")
def online(services: ServicesDep, ctx: Reader, body: OnlineLookupIn) -> OnlineLookupOut:
    """An entity's values in the online store, with their event times and freshness."""
    return services.feature_online.lookup(ctx, dict(body.entity), list(body.features))


@router.post(f"{API_PREFIX}/features/skew/online", name="features.skew-online")
async def skew_online(services: ServicesDep, ctx: Materializer, body: OnlineSkewIn) -> SkewCheckOut:
    """For sampled entities of a served view, the online values against the offline
    point-in-time join at the same time."""
    return await run_in_threadpool(services.feature_online.online_skew, ctx, body)


@router.post(f"{API_PREFIX}/features/skew/served", name="features.skew-served")
async def skew_served(services: ServicesDep, _ctx: Reader, body: ServedSkewIn) -> ServedSkewOut:
    """What a deployment served against the training set's distribution, per feature."""
    return await run_in_threadpool(services.feature_online.served_skew, body)
