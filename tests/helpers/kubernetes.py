"""The Kubernetes manifests of deploy/kubernetes as ``kubectl kustomize`` renders them, parsed
into typed models (only the fields the tests read), and the offline schema validation:
the Kubernetes JSON schemas of ``kubernetes_validate`` for KUBERNETES_VERSION, and the
ServiceMonitor CRD's own schema (tests/ops/kubernetes/crds, vendored with its licence).

Without ``kubectl`` the tests skip, or fail under MEDOPS_REQUIRE_KUBECTL=1 (as CI runs them).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import jsonschema  # type: ignore[import-untyped]  # dev dependency, through moto[server]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("demo", "production", "gpu")
CRDS = ROOT / "tests" / "ops" / "kubernetes" / "crds"
# The oldest Kubernetes the manifests must be valid for (CronJob timeZone, preStop sleep,
# autoscaling/v2 and policy/v1 are all there).
KUBERNETES_VERSION = "1.32.0"
REQUIRE_ENV = "MEDOPS_REQUIRE_KUBECTL"
PRE_ROLLOUT = ("medops.io/stage", "pre-rollout")
M = TypeVar("M", bound="Kube")


def kubectl() -> str:
    """The kubectl binary; a skip with the reason, or a failure under MEDOPS_REQUIRE_KUBECTL=1."""
    found = shutil.which("kubectl")
    if found is None:
        why = "kubectl is not installed (apt-get install kubectl, or Kubernetes' own package)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{why}, and {REQUIRE_ENV}=1")
        pytest.skip(why)
    return found


class Kube(BaseModel):
    """A Kubernetes object's part: camelCase on the wire, snake_case here."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Metadata(Kube):
    name: str
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class NameRef(Kube):
    name: str


class KeyRef(Kube):
    name: str
    key: str


class FieldRef(Kube):
    field_path: str


class EnvSource(Kube):
    secret_key_ref: KeyRef | None = None
    config_map_key_ref: KeyRef | None = None
    field_ref: FieldRef | None = None


class EnvVar(Kube):
    name: str
    value: str | None = None
    value_from: EnvSource | None = None


class EnvFrom(Kube):
    config_map_ref: NameRef | None = None
    secret_ref: NameRef | None = None


class HttpGet(Kube):
    path: str
    port: int | str


class Probe(Kube):
    http_get: HttpGet | None = None
    period_seconds: int = 10
    failure_threshold: int = 3


class Resources(Kube):
    requests: dict[str, str | int] = Field(default_factory=dict)
    limits: dict[str, str | int] = Field(default_factory=dict)


class Capabilities(Kube):
    drop: list[str] = Field(default_factory=list)
    add: list[str] = Field(default_factory=list)


class Seccomp(Kube):
    type: str


class SecurityContext(Kube):
    allow_privilege_escalation: bool | None = None
    read_only_root_filesystem: bool | None = None
    run_as_non_root: bool | None = None
    run_as_user: int | None = None
    privileged: bool | None = None
    capabilities: Capabilities | None = None
    seccomp_profile: Seccomp | None = None


class VolumeMount(Kube):
    name: str
    mount_path: str
    read_only: bool = False


class Port(Kube):
    name: str | None = None
    container_port: int


class Container(Kube):
    name: str
    image: str
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    ports: list[Port] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    env_from: list[EnvFrom] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    security_context: SecurityContext | None = None
    startup_probe: Probe | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    volume_mounts: list[VolumeMount] = Field(default_factory=list)


class SecretVolume(Kube):
    secret_name: str


class ClaimRef(Kube):
    claim_name: str


class Volume(Kube):
    name: str
    empty_dir: dict[str, Any] | None = None
    secret: SecretVolume | None = None
    persistent_volume_claim: ClaimRef | None = None


class Toleration(Kube):
    key: str | None = None
    operator: str | None = None
    effect: str | None = None


class PodSpec(Kube):
    containers: list[Container]
    init_containers: list[Container] = Field(default_factory=list)
    security_context: SecurityContext | None = None
    volumes: list[Volume] = Field(default_factory=list)
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    automount_service_account_token: bool | None = None
    service_account_name: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)

    @property
    def all_containers(self) -> list[Container]:
        return [*self.init_containers, *self.containers]


class TemplateMetadata(Kube):
    labels: dict[str, str] = Field(default_factory=dict)


class PodTemplate(Kube):
    metadata: TemplateMetadata | None = None
    spec: PodSpec


@dataclass(frozen=True)
class Workload:
    """A Deployment, Job or CronJob and the pod template it runs."""

    kind: str
    name: str
    labels: dict[str, str]
    pod: PodTemplate


class Strategy(Kube):
    type: str


class DeploymentSpec(Kube):
    replicas: int
    strategy: Strategy


class MetricIdentifier(Kube):
    name: str


class ResourceMetric(Kube):
    name: str


class PodsMetric(Kube):
    metric: MetricIdentifier


class HpaMetric(Kube):
    type: str
    resource: ResourceMetric | None = None
    pods: PodsMetric | None = None


class HpaSpec(Kube):
    min_replicas: int
    max_replicas: int
    metrics: list[HpaMetric]


class IngressTls(Kube):
    hosts: list[str]
    secret_name: str


class IngressSpec(Kube):
    tls: list[IngressTls] = Field(default_factory=list)


class PolicyPeer(Kube):
    namespace_selector: dict[str, Any] | None = None
    pod_selector: dict[str, Any] | None = None
    ip_block: dict[str, Any] | None = None


class PolicyPort(Kube):
    port: int | str | None = None
    protocol: str = "TCP"


class PolicyRule(Kube):
    peers: list[PolicyPeer] = Field(default_factory=list)
    ports: list[PolicyPort] = Field(default_factory=list)


class NetworkPolicySpec(Kube):
    pod_selector: dict[str, Any]
    policy_types: list[str]
    ingress: list[dict[str, Any]] = Field(default_factory=list)
    egress: list[dict[str, Any]] = Field(default_factory=list)

    def rules(self, direction: str) -> list[PolicyRule]:
        """The ingress ``from`` or egress ``to`` rules, typed."""
        raw = self.ingress if direction == "ingress" else self.egress
        side = "from" if direction == "ingress" else "to"
        return [
            PolicyRule(
                peers=[PolicyPeer.model_validate(p) for p in rule.get(side, [])],
                ports=[PolicyPort.model_validate(p) for p in rule.get("ports", [])],
            )
            for rule in raw
        ]


@dataclass(frozen=True)
class Manifest:
    """One rendered object: its identity, and the document as kubectl would send it."""

    api_version: str
    kind: str
    metadata: Metadata
    document: dict[str, Any]

    @property
    def name(self) -> str:
        return self.metadata.name

    def spec_as(self, model: type[M]) -> M:
        return model.model_validate(self.document.get("spec", {}))

    def data(self) -> dict[str, str]:
        """A ConfigMap's data."""
        data: dict[str, str] = self.document.get("data", {})
        return data


@cache
def _render(overlay: str) -> tuple[Manifest, ...]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(KUSTOMIZE / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    manifests = []
    for document in yaml.safe_load_all(out):
        if document is None:
            continue
        manifests.append(
            Manifest(
                api_version=document["apiVersion"],
                kind=document["kind"],
                metadata=Metadata.model_validate(document["metadata"]),
                document=document,
            )
        )
    return tuple(manifests)


def render(overlay: str) -> list[Manifest]:
    """Every object of ``deploy/kubernetes/<overlay>`` (``base`` or ``overlays/NAME``)."""
    kubectl()
    return list(_render(overlay))


def overlay_path(name: str) -> str:
    return "base" if name == "base" else f"overlays/{name}"


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.kind == kind]


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in of_kind(manifests, kind) if name is None or m.name == name]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


def workloads(manifests: list[Manifest]) -> list[Workload]:
    """Every pod template: of each Deployment, Job and CronJob."""
    found = []
    for m in manifests:
        spec = m.document.get("spec", {})
        if m.kind in ("Deployment", "Job", "StatefulSet", "DaemonSet", "ReplicaSet"):
            template = spec["template"]
        elif m.kind == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
        elif m.kind == "Pod":
            template = {"metadata": m.document["metadata"], "spec": spec}
        else:
            continue
        found.append(
            Workload(
                kind=m.kind,
                name=m.name,
                labels=m.metadata.labels,
                pod=PodTemplate.model_validate(template),
            )
        )
    return found


def env_value(container: Container, name: str) -> EnvVar | None:
    return next((e for e in container.env if e.name == name), None)


# -- offline schema validation ---------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One object that does not validate: which, and why (empty: it validates)."""

    kind: str
    name: str
    problem: str


def _closed(schema: Any) -> Any:
    """The CRD schema as kubectl's strict field validation reads it: an object schema that lists
    its properties accepts no others (unknown fields are errors, not silently pruned)."""
    if isinstance(schema, dict):
        closed = {k: _closed(v) for k, v in schema.items()}
        if (
            "properties" in closed
            and "additionalProperties" not in closed
            and not closed.get("x-kubernetes-preserve-unknown-fields")
        ):
            closed["additionalProperties"] = False
        return closed
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@cache
def _crd_schemas() -> dict[tuple[str, str], Any]:
    monitor = yaml.safe_load((CRDS / "servicemonitor-v1.schema.yaml").read_text())
    return {("monitoring.coreos.com/v1", "ServiceMonitor"): _closed(monitor)}


def validate(manifest: Manifest) -> Finding | None:
    """Validate against Kubernetes KUBERNETES_VERSION's schemas (strict: no unknown fields), or
    the vendored CRD's; None when it validates."""
    document = copy.deepcopy(manifest.document)
    crd = _crd_schemas().get((manifest.api_version, manifest.kind))
    try:
        if crd is not None:
            jsonschema.Draft202012Validator(crd).validate(document)
        else:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return Finding(manifest.kind, manifest.name, f"{where}: {exc.message}")
    except kubernetes_validate.SchemaNotFoundError as exc:
        return Finding(manifest.kind, manifest.name, exc.message)
    return None
