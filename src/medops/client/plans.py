"""The SDK's change-control plan calls, mixed into ``medops.Client``: plans (create, sign,
show), candidate reports (challenger against champion) and the rollouts a plan allows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medops.client.shapes import Shape
from medops.client.transport import Transport
from medops.retraining.plan_schemas import (
    CandidateReport,
    DataRef,
    EvaluateRequest,
    PlanOut,
    PlanSpec,
    RolloutOut,
    RolloutStart,
)
from medops.validation import checked

_PLAN = Shape(PlanOut)
_PLANS = Shape(list[PlanOut])
_REPORT = Shape(CandidateReport)
_REPORTS = Shape(list[CandidateReport])
_ROLLOUT = Shape(RolloutOut)
_ROLLOUTS = Shape(list[RolloutOut])


class PlanCalls(Transport):
    """Change-control plan methods of the SDK client."""

    def create_plan(self, name: str, spec: PlanSpec | Mapping[str, Any]) -> PlanOut:
        """Propose a plan version; active once a clinician and an ML engineer sign it."""
        body = checked(PlanSpec, spec, "plan").model_dump(mode="json")
        return self._call("POST", f"/api/v1/models/{name}/plans", _PLAN, json=body)

    def plans(self, name: str) -> list[PlanOut]:
        """Every plan version of a model, newest first."""
        return self._call("GET", f"/api/v1/models/{name}/plans", _PLANS)

    def plan(self, name: str, number: int | None = None) -> PlanOut:
        """One plan version; without a number the active plan."""
        if number is None:
            return self._call("GET", f"/api/v1/models/{name}/plans/active", _PLAN)
        return self._call("GET", f"/api/v1/models/{name}/plans/{number}", _PLAN)

    def sign_plan(
        self,
        name: str,
        number: int,
        password: str,
        *,
        otp: str | None = None,
        comment: str | None = None,
    ) -> PlanOut:
        """Sign a pending plan (re-authenticates); the completing signature activates it."""
        body = {"password": password, "otp": otp, "comment": comment}
        path = f"/api/v1/models/{name}/plans/{number}/signatures"
        return self._call("POST", path, _PLAN, json=body)

    def evaluate_candidate(
        self, name: str, version: int, recent: DataRef | Mapping[str, Any] | None = None
    ) -> CandidateReport:
        """Judge a version against the active plan and the production version."""
        request = EvaluateRequest(
            recent=None if recent is None else checked(DataRef, recent, "recent")
        )
        path = f"/api/v1/models/{name}/versions/{version}/candidate-reports"
        return self._call("POST", path, _REPORT, json=request.model_dump(mode="json"))

    def candidate_reports(self, name: str) -> list[CandidateReport]:
        """A model's candidate reports, newest first."""
        return self._call("GET", f"/api/v1/models/{name}/candidate-reports", _REPORTS)

    def candidate_report(self, name: str, report_id: str) -> CandidateReport:
        """One candidate report."""
        path = f"/api/v1/models/{name}/candidate-reports/{report_id}"
        return self._call("GET", path, _REPORT)

    def start_rollout(self, name: str, version: int, deployment: str) -> RolloutOut:
        """Take a within-plan candidate through the plan's protocol on a deployment (an
        outside-plan one comes back ``stopped`` with its reasons)."""
        body = RolloutStart(version=version, deployment=deployment).model_dump(mode="json")
        return self._call("POST", f"/api/v1/models/{name}/rollouts", _ROLLOUT, json=body)

    def rollouts(self, name: str) -> list[RolloutOut]:
        """A model's rollouts, newest first (its retraining history)."""
        return self._call("GET", f"/api/v1/models/{name}/rollouts", _ROLLOUTS)

    def rollout(self, name: str, rollout_id: str) -> RolloutOut:
        """One rollout with its history."""
        return self._call("GET", f"/api/v1/models/{name}/rollouts/{rollout_id}", _ROLLOUT)

    def abort_rollout(self, name: str, rollout_id: str, reason: str) -> RolloutOut:
        """Stop a rollout in progress."""
        path = f"/api/v1/models/{name}/rollouts/{rollout_id}/abort"
        return self._call("POST", path, _ROLLOUT, json={"reason": reason})

    def tick_rollouts(self) -> list[RolloutOut]:
        """Advance every rollout in progress (the scheduled job's work)."""
        return self._call("POST", "/api/v1/rollouts/tick", _ROLLOUTS)
