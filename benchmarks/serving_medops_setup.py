"""Prepare a medops home for the serving benchmark: the same scikit-learn pipeline as the
peers serve, registered, deployed and reachable with an API token (printed on stdout).

Run with the project's venv: ``.venv/bin/python benchmarks/serving_medops_setup.py HOME``.
The deployment follows the unprotected alias ``diabetes@bench``, so no approvals are needed:
the benchmark measures serving, not governance. Everything on the prediction path stays on:
authentication, permission check, validation against the signature, micro-batching, durable
prediction and audit records by group commit.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sklearn.datasets import load_diabetes  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

from medops import admin
from medops.auth.permissions import Role
from medops.auth.schemas import TokenCreate, UserCreate
from medops.config import Settings
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.packaging import package_model
from medops.registry.schemas import ModelCreate, PromoteRequest, VersionCreate
from medops.services import build_services
from medops.serving.schemas import DeploymentCreate

PASSWORD = "benchmark-password-not-for-production"  # noqa: S105 - a throwaway home


def main(home: Path) -> None:
    settings = Settings(home=home, mfa_required_roles=())
    admin.init(settings)
    services = build_services(settings)
    system = Context(actor=SYSTEM_ACTOR, origin=Origin(source_ip="127.0.0.1"))
    try:
        ctx = {}
        for username, role in (("mle", Role.ML_ENGINEER), ("ehr", Role.CLINICIAN)):
            services.identity.create_user(
                system, UserCreate(username=username, role=role, password=PASSWORD)
            )
            login = services.logins.login(system, username, PASSWORD, kind="login")
            ctx[username] = Context(
                actor=services.logins.authenticate(login.secret), origin=system.origin
            )
        data = load_diabetes(as_frame=True, scaled=False)
        frame = data.data.astype("float64")
        target = (data.target > data.target.median()).astype("int64")
        pipeline = Pipeline(
            [("scale", StandardScaler()), ("classify", LogisticRegression(max_iter=1000))]
        )
        pipeline.fit(frame, target)
        pkg = package_model(pipeline, sample=frame)
        assert pkg.parity is not None
        services.registry.create_model(ctx["mle"], ModelCreate(name="diabetes"))
        services.registry.register_version(
            ctx["mle"],
            "diabetes",
            pkg.onnx,
            VersionCreate.model_validate(
                {
                    "signature": pkg.signature.model_dump(mode="json"),
                    "framework": pkg.framework,
                    "parity": {
                        "columns": pkg.parity.columns,
                        "native_probabilities": pkg.parity.native_probabilities,
                        "tolerance": pkg.parity.tolerance,
                    },
                }
            ),
        )
        services.lifecycle.promote(
            ctx["mle"], "diabetes", "bench", PromoteRequest(version=1, reason="benchmark")
        )
        services.deployments.create(
            ctx["mle"], DeploymentCreate(name="diabetes", model="diabetes@bench")
        )
        token = services.identity.create_token(ctx["ehr"], TokenCreate(name="benchmark"))
        print(token.token)  # noqa: T201 - the benchmark reads it from stdout
    finally:
        services.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
