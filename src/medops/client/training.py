"""Training methods of the SDK client: a model's training spec, runs (request, claim, finish,
logs, the Kubernetes Job manifest), triggers and their events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medops.client.shapes import Shape
from medops.client.transport import Transport
from medops.retraining.job_schemas import (
    EvaluationOut,
    RunLogs,
    RunOut,
    RunRecord,
    RunRequest,
    TrainingSpec,
    TrainingSpecOut,
    TriggerEventOut,
    TriggerIn,
    TriggerOut,
)

_SPEC = Shape(TrainingSpecOut)
_RUN = Shape(RunOut)
_RUNS = Shape(list[RunOut])
_LOGS = Shape(RunLogs)
_TRIGGER = Shape(TriggerOut)
_TRIGGERS = Shape(list[TriggerOut])
_EVENTS = Shape(list[TriggerEventOut])
_EVALUATION = Shape(EvaluationOut)
_JOB = Shape(dict[str, Any])


class TrainingCalls(Transport):
    """Training methods of the SDK client."""

    def configure_training(self, model: str, spec: TrainingSpec) -> TrainingSpecOut:
        """Store a new version of the model's training spec (training:configure)."""
        return self._call(
            "PUT", f"/api/v1/training/models/{model}/spec", _SPEC, json=spec.model_dump(mode="json")
        )

    def training_spec(self, model: str) -> TrainingSpecOut:
        """The model's current training spec."""
        return self._call("GET", f"/api/v1/training/models/{model}/spec", _SPEC)

    def request_training_run(self, model: str, request: RunRequest) -> RunOut:
        """Queue a run of the model (training:run); TrainingBusyError while one is active."""
        return self._call(
            "POST",
            f"/api/v1/training/models/{model}/runs",
            _RUN,
            json=request.model_dump(mode="json"),
        )

    def training_runs(
        self, model: str | None = None, *, statuses: Sequence[str] = (), limit: int = 100
    ) -> list[RunOut]:
        """Runs, newest first."""
        params: dict[str, Any] = {"limit": limit}
        if model is not None:
            params["model"] = model
        if statuses:
            params["status"] = list(statuses)
        return self._call("GET", "/api/v1/training/runs", _RUNS, params=params)

    def training_run(self, run_id: str) -> RunOut:
        """One run."""
        return self._call("GET", f"/api/v1/training/runs/{run_id}", _RUN)

    def training_logs(self, run_id: str) -> RunLogs:
        """One run's captured output."""
        return self._call("GET", f"/api/v1/training/runs/{run_id}/logs", _LOGS)

    def training_job(self, run_id: str) -> dict[str, Any]:
        """The run as a Kubernetes Job manifest."""
        return self._call("GET", f"/api/v1/training/runs/{run_id}/job", _JOB)

    def start_training_run(self, run_id: str) -> RunOut:
        """Take a queued run as its runner (training:run)."""
        return self._call("POST", f"/api/v1/training/runs/{run_id}/start", _RUN, json={})

    def finish_training_run(self, run_id: str, record: RunRecord) -> RunOut:
        """Report how a run ended (training:run)."""
        return self._call(
            "POST",
            f"/api/v1/training/runs/{run_id}/finish",
            _RUN,
            json=record.model_dump(mode="json"),
        )

    def training_triggers(self, model: str | None = None) -> list[TriggerOut]:
        """Triggers of one model or all."""
        params = {"model": model} if model is not None else {}
        return self._call("GET", "/api/v1/training/triggers", _TRIGGERS, params=params)

    def create_training_trigger(self, definition: TriggerIn) -> TriggerOut:
        """Add a trigger (training:configure)."""
        return self._call(
            "POST", "/api/v1/training/triggers", _TRIGGER, json=definition.model_dump(mode="json")
        )

    def pause_training_trigger(self, trigger_id: str, reason: str = "") -> TriggerOut:
        """Pause a trigger (training:configure)."""
        return self._call(
            "POST",
            f"/api/v1/training/triggers/{trigger_id}/pause",
            _TRIGGER,
            json={"reason": reason},
        )

    def resume_training_trigger(self, trigger_id: str, reason: str = "") -> TriggerOut:
        """Resume a trigger (training:configure)."""
        return self._call(
            "POST",
            f"/api/v1/training/triggers/{trigger_id}/resume",
            _TRIGGER,
            json={"reason": reason},
        )

    def evaluate_training_triggers(self) -> EvaluationOut:
        """Evaluate every trigger now (training:configure)."""
        return self._call("POST", "/api/v1/training/triggers/evaluate", _EVALUATION, json={})

    def training_events(
        self, model: str | None = None, *, limit: int = 100
    ) -> list[TriggerEventOut]:
        """Trigger events, newest first."""
        params: dict[str, Any] = {"limit": limit}
        if model is not None:
            params["model"] = model
        return self._call("GET", "/api/v1/training/events", _EVENTS, params=params)
