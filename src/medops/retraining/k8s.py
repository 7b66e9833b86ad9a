"""A training run as a Kubernetes Job: the manifest is rendered here (from the run, its
model's training spec and the settings) and applied by the operator or a pipeline
(``medops train run MODEL --kubernetes --out job.yaml``, then ``kubectl apply -f``); the
server holds no cluster credentials.

The Job runs the medops image (the spec's ``image`` or MEDOPS_TRAINING_IMAGE: the server's
own, so the runner and the server agree on the SDK) with ``medops train execute RUN``: the pod
claims the run, reads the pinned data through the API, trains in a child process, registers the
candidate and reports, exactly as a workstation runner does. It talks to the server at
MEDOPS_URL (the in-cluster Service) with the token of MEDOPS_TRAINING_TOKEN_SECRET. The pod
is locked down like the migration Job (non-root, read-only root file system, no privilege
escalation, every capability dropped, RuntimeDefault seccomp, no service-account token); the
training data and the model are written to an ``emptyDir`` sized from the spec's memory.
``backoffLimit: 0``: a failed run is recorded as failed and a retry is a new run.
``resources.gpu`` asks for ``nvidia.com/gpu`` and tolerates the GPU taint, as the gpu overlay
of the serving Deployment does. deploy/kubernetes/training/job.yaml is this module's rendering
of an example run, checked against it and validated offline in the tests.
"""

from __future__ import annotations

import re
from typing import Any

from medops.config import Settings
from medops.retraining.job_schemas import RunOut

SERVER_URL = "http://medops.medops.svc.cluster.local:8000"
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")


def _label(value: str) -> str:
    cleaned = _LABEL_VALUE.sub("-", value)[:63].strip("-._")
    return cleaned or "unknown"


def job_name(run_id: str) -> str:
    """The Job's name for run ``run_id`` (a DNS-1123 label)."""
    return f"medops-train-{run_id.replace('_', '-').lower()}"[:63]


def render_job(run: RunOut, settings: Settings, *, server_url: str = SERVER_URL) -> dict[str, Any]:
    """The Job manifest of ``run`` (a dict, dumped as YAML or JSON by the caller)."""
    spec = run.spec
    resources = spec.resources
    limits: dict[str, str] = {"cpu": resources.cpu, "memory": resources.memory}
    if resources.gpu:
        limits["nvidia.com/gpu"] = str(resources.gpu)
    labels = {
        "app.kubernetes.io/name": "medops",
        "app.kubernetes.io/component": "training",
        "medops.io/model": _label(run.model),
        "medops.io/training-run": _label(run.id),
    }
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": "medops",
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "train",
                "image": spec.image or settings.training_image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["medops"],
                "args": ["train", "execute", run.id, "--json"],
                "workingDir": "/work",
                "env": [
                    {"name": "MEDOPS_URL", "value": server_url},
                    {
                        "name": "MEDOPS_TOKEN",
                        "valueFrom": {
                            "secretKeyRef": {"name": settings.training_token_secret, "key": "token"}
                        },
                    },
                    {"name": "MEDOPS_HOME", "value": "/work/.medops"},
                    {"name": "TMPDIR", "value": "/work/tmp"},
                    {"name": "HOME", "value": "/work"},
                ],
                "resources": {"requests": dict(limits), "limits": limits},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "work", "mountPath": "/work"}],
            }
        ],
        "volumes": [{"name": "work", "emptyDir": {"sizeLimit": resources.memory}}],
    }
    if resources.gpu:
        pod["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(run.id),
            "namespace": settings.training_namespace,
            "labels": labels,
            "annotations": {
                "medops.io/dataset": run.dataset,
                "medops.io/dataset-root": run.dataset_root,
                "medops.io/reason": run.reason[:500],
            },
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.timeout_seconds + 600,
            "ttlSecondsAfterFinished": 7 * 86400,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
        },
    }
