"""Prepare a medops home for the serving benchmark: the same scikit-learn pipeline as the
peers serve, registered, deployed and reachable with an API token (printed on stdout).

Run with the project's venv: ``.venv/bin/python benchmarks/serving_medops_setup.py HOME``.
The version goes through the governed path (report, card, a clinician's and an ML engineer's
signatures, promotion to ``production``) and the deployment follows ``diabetes@production``.
Everything on the prediction path stays on:
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
from medops.auth.schemas import TokenCreate, UserCreate
from medops.config import Settings
from medops.context import SYSTEM_ACTOR, Context, Origin
from medops.core.permissions import Role
from medops.examples import DIABETES_CARD
from medops.packaging import package_model
from medops.registry.refs import Ref
from medops.registry.schemas import (
    ApprovalRequest,
    CardContent,
    ModelCreate,
    PromoteRequest,
    PromotionPolicy,
    VersionCreate,
)
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
        people = (
            ("ds", Role.DATA_SCIENTIST),
            ("mle", Role.ML_ENGINEER),
            ("clin", Role.CLINICIAN),
        )
        for username, role in people:
            services.identity.create_user(
                system,
                UserCreate(
                    username=username, role=role, password=PASSWORD, full_name=f"Bench {username}"
                ),
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
        pkg = package_model(
            pipeline, sample=frame, demographic=["sex", "age"], bands={"age": [40.0, 60.0]}
        )
        assert pkg.parity is not None
        # Thresholds off (the benchmark validates in-sample); the floors stay: a report,
        # a complete card, parity, a clinician's and an ML engineer's signatures.
        policy = PromotionPolicy(min_auroc=None, max_ece=None, max_subgroup_gap=None)
        services.registry.create_model(ctx["mle"], ModelCreate(name="diabetes", policy=policy))
        services.registry.register_version(
            ctx["ds"],
            "diabetes",
            pkg.onnx,
            VersionCreate.model_validate(
                {
                    "signature": pkg.signature.model_dump(mode="json"),
                    "framework": pkg.framework,
                    "training_data": {"uri": "sklearn:load_diabetes", "digest": "0" * 64},
                    "parity": {
                        "columns": pkg.parity.columns,
                        "native_probabilities": pkg.parity.native_probabilities,
                        "tolerance": pkg.parity.tolerance,
                    },
                }
            ),
        )
        ref = Ref("diabetes", version=1)
        labeled = frame.copy()
        labeled["outcome"] = target
        services.registry.validate(
            ctx["ds"],
            ref,
            labeled.to_csv(index=False).encode(),
            label_column="outcome",
            dataset_name="diabetes.csv",
            n_bootstrap=50,
        )
        services.registry.set_card(ctx["clin"], ref, CardContent.model_validate(DIABETES_CARD))
        for signer in ("clin", "mle"):
            services.lifecycle.approve(ctx[signer], ref, ApprovalRequest(password=PASSWORD))
        services.lifecycle.promote(
            ctx["mle"], "diabetes", "production", PromoteRequest(version=1, reason="benchmark")
        )
        services.deployments.create(
            ctx["mle"], DeploymentCreate(name="diabetes", model="diabetes@production")
        )
        token = services.identity.create_token(ctx["clin"], TokenCreate(name="benchmark"))
        print(token.token)  # noqa: T201 - the benchmark reads it from stdout
    finally:
        services.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
