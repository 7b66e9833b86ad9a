"""Online feature store methods of the SDK client: bind a deployment to feature views,
materialize, read the materialization state and an entity's online values."""

from __future__ import annotations

from medops.client.shapes import Shape
from medops.client.transport import Transport
from medops.features.online.schemas import (
    FeatureBindingIn,
    FeatureBindingOut,
    FeatureBindingSpec,
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
from medops.features.schemas import FeatureRepo

_BINDING = Shape(FeatureBindingOut)
_MATERIALIZED = Shape(MaterializeOut)
_STATES = Shape(list[MaterializationState])
_LOOKUP = Shape(OnlineLookupOut)
_NONE: Shape[None] = Shape(None)
_SKEW = Shape(SkewCheckOut)
_SERVED = Shape(ServedSkewOut)


class FeatureOnlineCalls(Transport):
    """Online feature store methods of the SDK client."""

    def bind_features(self, deployment: str, spec: FeatureBindingSpec) -> FeatureBindingOut:
        """Serve ``deployment``'s model from feature views."""
        body = FeatureBindingIn(spec=spec).model_dump(mode="json")
        return self._call("PUT", f"/api/v1/deployments/{deployment}/features", _BINDING, json=body)

    def feature_binding(self, deployment: str) -> FeatureBindingOut:
        """The deployment's feature binding."""
        return self._call("GET", f"/api/v1/deployments/{deployment}/features", _BINDING)

    def unbind_features(self, deployment: str) -> None:
        """Stop serving ``deployment`` from feature views."""
        self._call("DELETE", f"/api/v1/deployments/{deployment}/features", _NONE)

    def materialize(
        self,
        views: list[str] | None = None,
        *,
        full: bool = False,
        repo: FeatureRepo | None = None,
    ) -> MaterializeOut:
        """Materialize ``views`` (default: every served view) into the online store."""
        body = MaterializeIn(views=tuple(views or ()), full=full, repo=repo)
        return self._call(
            "POST", "/api/v1/features/materialize", _MATERIALIZED, json=body.model_dump(mode="json")
        )

    def materializations(self) -> list[MaterializationState]:
        """How far each view has been materialized."""
        return self._call("GET", "/api/v1/features/materializations", _STATES)

    def online_features(self, entity: dict[str, str | int], features: list[str]) -> OnlineLookupOut:
        """An entity's online values (``view:feature`` or a whole ``view``)."""
        body = OnlineLookupIn(entity=entity, features=tuple(features))
        return self._call(
            "POST", "/api/v1/features/online", _LOOKUP, json=body.model_dump(mode="json")
        )

    def online_skew(self, view: str, *, sample: int = 200, seed: int = 0) -> SkewCheckOut:
        """Online values against the offline join at the same time, for sampled entities."""
        body = OnlineSkewIn(view=view, sample=sample, seed=seed).model_dump(mode="json")
        return self._call("POST", "/api/v1/features/skew/online", _SKEW, json=body)

    def served_skew(self, request: ServedSkewIn) -> ServedSkewOut:
        """What a deployment served against the training set's values, per feature."""
        return self._call(
            "POST", "/api/v1/features/skew/served", _SERVED, json=request.model_dump(mode="json")
        )
