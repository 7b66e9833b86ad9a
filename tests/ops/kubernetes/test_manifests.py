"""The Kubernetes manifests (deploy/kubernetes): every overlay renders with ``kubectl
kustomize`` and validates offline against the Kubernetes schemas (and the ServiceMonitor
against its CRD's), and what they say is true of this project: every MEDOPS_* name is a real
setting with a valid value, every container runs a real ``medops`` command, the probes are
real routes, the image is this release's, no secret value is in the repository, every pod
is Pod Security "restricted", and the migration Job can be applied before the rest."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import httpx
import pytest
import typer
import yaml
from pydantic import BaseModel
from typer.core import TyperGroup
from typer.testing import CliRunner

import medops
from medops.cli.main import app as cli_app
from medops.config import ENV_PREFIX, Settings
from tests.helpers.kubernetes import (
    KUSTOMIZE,
    OVERLAYS,
    PRE_ROLLOUT,
    ROOT,
    Container,
    DeploymentSpec,
    HpaSpec,
    IngressSpec,
    Manifest,
    NetworkPolicySpec,
    Workload,
    env_value,
    of_kind,
    one,
    overlay_path,
    render,
    validate,
    workloads,
)
from tests.helpers.routes import all_routes

EVERY = ("base", *OVERLAYS)
# Settings whose value is a secret: only ever from a Secret (secretKeyRef or a file in a
# secret volume), never a literal in a manifest or a ConfigMap.
SECRET_SETTINGS = {
    "MEDOPS_DATABASE_URL",
    "MEDOPS_MFA_KEY",
    "MEDOPS_DATA_KEK",
    "MEDOPS_ALERT_LINK_KEY",
    "MEDOPS_TOKEN",
    "MEDOPS_ADMIN_PASSWORD",
    "MEDOPS_BACKUP_KEY",
}
OPERATIONS = ROOT / "docs" / "operations.md"
TMP = "/" + "tmp"  # the pods' writable scratch folder (an emptyDir), not this machine's


def _containers(overlay: str) -> list[tuple[Workload, Container]]:
    return [
        (w, c) for w in workloads(render(overlay_path(overlay))) for c in w.pod.spec.all_containers
    ]


def _config(manifests: list[Manifest]) -> dict[str, str]:
    return one(manifests, "ConfigMap").data()


@pytest.mark.parametrize("overlay", EVERY)
def test_every_object_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    """kubernetes_validate (strict, Kubernetes KUBERNETES_VERSION) for the built-in kinds, the
    vendored CRD schema for the ServiceMonitor; unknown fields are errors."""
    manifests = render(overlay_path(overlay))
    assert manifests
    assert [f for m in manifests if (f := validate(m)) is not None] == []
    assert {m.kind for m in manifests} >= {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "Job",
        "CronJob",
        "NetworkPolicy",
        "ServiceMonitor",
    }


@pytest.mark.parametrize("overlay", EVERY)
def test_every_pod_is_pod_security_restricted(overlay: str) -> None:
    """Deployment, Job and CronJobs alike: non-root, no escalation, read-only root, no
    capability, RuntimeDefault seccomp, no host namespaces, a writable /tmp (emptyDir); the
    namespace enforces the profile."""
    manifests = render(overlay_path(overlay))
    namespace = one(manifests, "Namespace")
    assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {m.metadata.namespace for m in manifests if m.kind != "Namespace"} == {namespace.name}
    pods = workloads(manifests)
    assert {w.kind for w in pods} == {"Deployment", "Job", "CronJob"}
    for workload in pods:
        spec = workload.pod.spec
        pod = spec.security_context
        assert pod is not None, workload.name
        assert pod.run_as_non_root is True, workload.name
        assert pod.run_as_user is not None
        assert pod.run_as_user > 0
        assert pod.seccomp_profile is not None
        assert pod.seccomp_profile.type == "RuntimeDefault"
        assert (spec.host_network, spec.host_pid, spec.host_ipc) == (False, False, False)
        assert spec.automount_service_account_token is False, workload.name
        tmp_volumes = {
            m.name for c in spec.all_containers for m in c.volume_mounts if m.mount_path == TMP
        }
        assert [
            v.name for v in spec.volumes if v.name in tmp_volumes and v.empty_dir is not None
        ] == list(tmp_volumes)
        for container in spec.all_containers:
            context = container.security_context
            assert context is not None, (workload.name, container.name)
            assert context.allow_privilege_escalation is False
            assert context.read_only_root_filesystem is True
            assert context.privileged in (None, False)
            assert context.capabilities is not None
            assert context.capabilities.drop == ["ALL"]
            assert context.capabilities.add == []
            assert tmp_volumes, (workload.name, "no /tmp")


@pytest.mark.parametrize("overlay", EVERY)
def test_no_secret_value_is_in_the_manifests(overlay: str) -> None:
    """No Secret object at all (they are made with kubectl create secret, see the runbook);
    secret settings come only from secretKeyRef, and never sit in the ConfigMap."""
    manifests = render(overlay_path(overlay))
    assert of_kind(manifests, "Secret") == []
    assert SECRET_SETTINGS.isdisjoint(_config(manifests))
    for workload, container in _containers(overlay):
        for variable in container.env:
            if variable.name in SECRET_SETTINGS:
                assert variable.value is None, (workload.name, variable.name)
                assert variable.value_from is not None
                assert variable.value_from.secret_key_ref is not None, (
                    workload.name,
                    variable.name,
                )


def test_every_secret_the_manifests_use_has_its_create_command_in_the_runbook() -> None:
    """The runbook creates each Secret the pods reference (kubectl create secret ...)."""
    referenced: set[str] = set()
    for overlay in EVERY:
        for workload in workloads(render(overlay_path(overlay))):
            spec = workload.pod.spec
            referenced |= {v.secret.secret_name for v in spec.volumes if v.secret is not None}
            for container in spec.all_containers:
                referenced |= {
                    e.value_from.secret_key_ref.name
                    for e in container.env
                    if e.value_from is not None and e.value_from.secret_key_ref is not None
                }
                referenced |= {f.secret_ref.name for f in container.env_from if f.secret_ref}
        for ingress in of_kind(render(overlay_path(overlay)), "Ingress"):
            referenced |= {t.secret_name for t in ingress.spec_as(IngressSpec).tls}
    runbook = OPERATIONS.read_text()
    created = set(re.findall(r"kubectl -n medops create secret \w+ ([a-z0-9-]+)", runbook))
    # The TLS secret is cert-manager's to make (its annotation on the Ingress).
    assert referenced - created == {"medops-tls"}
    assert "--from-file" in runbook


def _pod_environment(container: Container, config: dict[str, str]) -> dict[str, str]:
    """The MEDOPS_* variables a container sees: the ConfigMap, its literal values, a
    placeholder of the right shape for each secret it references, the pod's name."""
    key = base64.b64encode(bytes(32)).decode()
    placeholders = {
        "MEDOPS_DATA_KEK": f"kplaceholder:{key}",
        "MEDOPS_MFA_KEY": key,
        "MEDOPS_BACKUP_KEY": key,
        "MEDOPS_ALERT_LINK_KEY": "x" * 48,
        "MEDOPS_DATABASE_URL": "postgresql://medops@db.example/medops",
        "MEDOPS_TOKEN": "placeholder",
    }
    seen = dict(config) if any(f.config_map_ref for f in container.env_from) else {}
    for variable in container.env:
        if variable.value is not None:
            seen[variable.name] = variable.value
        elif variable.value_from is not None and variable.value_from.secret_key_ref is not None:
            seen[variable.name] = placeholders[variable.name]
        elif variable.value_from is not None and variable.value_from.field_ref is not None:
            seen[variable.name] = "medops-7d9f8-abcde"
    return {k: v for k, v in seen.items() if k.startswith(ENV_PREFIX)}


@pytest.mark.parametrize("overlay", EVERY)
def test_every_medops_variable_is_a_setting_with_a_valid_value(overlay: str) -> None:
    """Every MEDOPS_* name in the ConfigMap and in a container's env is a field of
    src/medops/config.py, and what each container sees loads as Settings (secrets replaced by
    placeholders of their shape)."""
    manifests = render(overlay_path(overlay))
    config = _config(manifests)
    assert all(name.startswith(ENV_PREFIX) for name in config)
    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    assert sorted(set(config) - fields) == []
    for workload, container in _containers(overlay):
        environment = _pod_environment(container, config)
        assert sorted(set(environment) - fields) == [], workload.name
        loaded = Settings(**{k.removeprefix(ENV_PREFIX).lower(): v for k, v in environment.items()})  # type: ignore[arg-type]
        assert str(loaded.home) == environment["MEDOPS_HOME"], workload.name


def _command(argv: list[str]) -> str:
    """Resolve ``medops ARGV`` to its command in the Typer app and parse its options (a usage
    error for an unknown option or a bad value), without running it; the command's path."""
    command = typer.main.get_command(cli_app)
    context = typer.Context(command, info_name="medops")
    args = list(argv)
    path = ["medops"]
    while isinstance(command, TyperGroup):
        assert args, f"medops {' '.join(argv)} names a group, not a command"
        name = args.pop(0)
        found = command.get_command(context, name)
        assert found is not None, f"medops has no command {' '.join(argv)}"
        command = found
        path.append(name)
        context = typer.Context(command, info_name=name, parent=context)
    command.make_context(name, args, parent=context.parent)
    return " ".join(path)


@pytest.mark.parametrize("overlay", EVERY)
def test_every_container_runs_a_real_medops_command(overlay: str) -> None:
    """`medops <group> <cmd> --help` exits 0 and the container's options parse."""
    runner = CliRunner()
    for workload, container in _containers(overlay):
        assert container.command == ["medops"], workload.name
        path = _command(container.args).split()[1:]
        result = runner.invoke(cli_app, [*path, "--help"])
        assert result.exit_code == 0, (workload.name, path, result.output)


def test_probe_paths_are_routes_the_app_serves() -> None:
    """Liveness /healthz, readiness /readyz (503 until the schema is at head:
    tests/api/test_health_metrics.py), startup /healthz, the ServiceMonitor's /metrics."""
    served = {path for method, path, _ in all_routes() if method == "GET"}
    for overlay in EVERY:
        manifests = render(overlay_path(overlay))
        deployment = one(manifests, "Deployment")
        (server,) = workloads([deployment])[0].pod.spec.containers
        probes = {
            "startup": server.startup_probe,
            "liveness": server.liveness_probe,
            "readiness": server.readiness_probe,
        }
        paths = {k: p.http_get.path for k, p in probes.items() if p and p.http_get}
        assert paths == {"startup": "/healthz", "liveness": "/healthz", "readiness": "/readyz"}
        assert set(paths.values()) <= served
        ports = {p.name for p in server.ports}
        assert {p.http_get.port for p in probes.values() if p and p.http_get} <= ports
        monitor = one(manifests, "ServiceMonitor").document["spec"]["endpoints"]
        assert {e["path"] for e in monitor} <= served
        service_ports = {p["name"] for p in one(manifests, "Service").document["spec"]["ports"]}
        assert {e["port"] for e in monitor} <= service_ports


@pytest.mark.parametrize("overlay", EVERY)
def test_every_container_is_this_release_of_the_image_with_resources(overlay: str) -> None:
    """One image, medops:<this version>, everywhere; every container requests CPU and memory
    and has a memory limit."""
    images = set()
    for workload, container in _containers(overlay):
        images.add(container.image)
        assert {"cpu", "memory"} <= set(container.resources.requests), workload.name
        assert "memory" in container.resources.limits, workload.name
    assert images == {f"medops:{medops.__version__}"}


def test_the_demo_is_one_pod_on_sqlite_with_a_claim() -> None:
    manifests = render("overlays/demo")
    deployment = one(manifests, "Deployment")
    spec = deployment.spec_as(DeploymentSpec)
    assert (spec.replicas, spec.strategy.type) == (1, "Recreate")
    assert of_kind(manifests, "HorizontalPodAutoscaler") == []
    assert of_kind(manifests, "PodDisruptionBudget") == []
    assert "MEDOPS_DATABASE_URL" not in _config(manifests)
    for workload in workloads(manifests):
        (container,) = workload.pod.spec.containers
        assert env_value(container, "MEDOPS_DATABASE_URL") is None
        if workload.name == "medops-monitor":
            continue  # through the API
        home = next(v for v in workload.pod.spec.volumes if v.name == "home")
        assert home.persistent_volume_claim is not None, workload.name
        assert home.persistent_volume_claim.claim_name == "medops-home"
    claims = {m.name for m in of_kind(manifests, "PersistentVolumeClaim")}
    assert {"medops-home", "medops-backups"} <= claims


@pytest.mark.parametrize("overlay", ["production", "gpu"])
def test_production_runs_three_replicas_on_postgresql_and_s3_behind_tls(overlay: str) -> None:
    manifests = render(overlay_path(overlay))
    assert one(manifests, "Deployment").spec_as(DeploymentSpec).replicas == 3
    hpa = one(manifests, "HorizontalPodAutoscaler").spec_as(HpaSpec)
    assert hpa.min_replicas == 3
    kinds = {(m.type, (m.resource or m.pods)) for m in hpa.metrics}
    assert {k for k, _ in kinds} == {"Resource", "Pods"}
    assert one(manifests, "PodDisruptionBudget").document["spec"]["maxUnavailable"] == 1
    config = _config(manifests)
    assert config["MEDOPS_BLOB_URL"].startswith("s3://")
    assert config["MEDOPS_DATA_REMOTE"].startswith("s3://")
    assert config["MEDOPS_DATA_S3_ENDPOINT_URL"]
    for workload in workloads(manifests):
        if workload.name == "medops-monitor":
            continue  # through the API, with its token
        (container,) = workload.pod.spec.containers
        url = env_value(container, "MEDOPS_DATABASE_URL")
        assert url is not None, workload.name
        assert url.value_from is not None
        assert url.value_from.secret_key_ref is not None
        # The migration runs as the tables' owner, everything else as the application role.
        owner = "medops-database-owner" if workload.kind == "Job" else "medops-database"
        assert url.value_from.secret_key_ref.name == owner
        assert "medops-s3" in {f.secret_ref.name for f in container.env_from if f.secret_ref}
    ingress = one(manifests, "Ingress")
    assert "cert-manager.io/cluster-issuer" in ingress.metadata.annotations
    assert [t.secret_name for t in ingress.spec_as(IngressSpec).tls] == ["medops-tls"]
    backup = next(w for w in workloads(manifests) if w.name == "medops-backup")
    assert backup.pod.spec.containers[0].args[:4] == [
        "backup",
        "create",
        "--to",
        "s3://medops-backups/production",
    ]


def test_the_gpu_overlay_asks_for_a_gpu_and_prefers_cuda() -> None:
    manifests = render("overlays/gpu")
    pod = workloads([one(manifests, "Deployment")])[0].pod.spec
    (server,) = pod.containers
    assert server.resources.limits["nvidia.com/gpu"] == 1
    assert pod.node_selector == {"nvidia.com/gpu.present": "true"}
    assert [(t.key, t.effect) for t in pod.tolerations] == [("nvidia.com/gpu", "NoSchedule")]
    settings = Settings(onnx_providers=_config(manifests)["MEDOPS_ONNX_PROVIDERS"])
    assert settings.onnx_providers == ("CUDAExecutionProvider", "CPUExecutionProvider")
    # Only the server holds a GPU.
    for workload in workloads(manifests):
        if workload.kind != "Deployment":
            assert "nvidia.com/gpu" not in workload.pod.spec.containers[0].resources.limits


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_job_can_be_applied_before_the_rest(overlay: str) -> None:
    """`kubectl apply -k OVERLAY -l medops.io/stage=pre-rollout` applies the migration Job
    with everything it needs (namespace, service account, ConfigMap, claims, policies) and not
    the Deployment; the Job runs `medops db upgrade` on the same config as the servers."""
    manifests = render(overlay_path(overlay))
    key, value = PRE_ROLLOUT
    first = [m for m in manifests if m.metadata.labels.get(key) == value]
    kinds = {m.kind for m in first}
    assert "Deployment" not in kinds
    assert "CronJob" not in kinds
    (job,) = workloads([one(first, "Job")])
    (container,) = job.pod.spec.containers
    assert container.args[:2] == ["db", "upgrade"]
    needs = {("ConfigMap", f.config_map_ref.name) for f in container.env_from if f.config_map_ref}
    needs |= {
        ("PersistentVolumeClaim", v.persistent_volume_claim.claim_name)
        for v in job.pod.spec.volumes
        if v.persistent_volume_claim is not None
    }
    needs |= {("ServiceAccount", job.pod.spec.service_account_name or "default")}
    assert needs <= {(m.kind, m.name) for m in first}
    assert {"Namespace", "NetworkPolicy"} <= kinds
    (server,) = workloads([one(manifests, "Deployment")])[0].pod.spec.containers
    assert server.env_from == container.env_from
    assert server.image == container.image


def test_the_runbook_applies_the_migration_before_the_rollout() -> None:
    """docs/operations.md, "Upgrade with migrations": delete the old Job, apply the
    pre-rollout objects, wait for the Job to complete, apply the rest, watch the rollout."""
    text = OPERATIONS.read_text()
    section = text.split("## Upgrade with migrations", 1)[1].split("\n## ", 1)[0]
    steps = [
        "kubectl -n medops delete job medops-db-upgrade --ignore-not-found",
        "-l medops.io/stage=pre-rollout",
        "kubectl -n medops wait --for=condition=complete job/medops-db-upgrade",
        "kubectl apply -k deploy/kubernetes/overlays/production\n",
        "kubectl -n medops rollout status deployment/medops",
    ]
    positions = [section.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p == -1]
    assert positions == sorted(positions)


class _AdapterName(BaseModel):
    matches: str
    as_: str

    model_config = {"populate_by_name": True, "alias_generator": lambda f: f.rstrip("_")}


class _AdapterRule(BaseModel):
    series_query: str
    name: _AdapterName
    metrics_query: str

    model_config = {
        "alias_generator": lambda f: f.split("_")[0] + "".join(w.title() for w in f.split("_")[1:])
    }


def test_the_request_rate_the_autoscaler_reads_is_served_by_the_adapter_rule(
    http: httpx.Client,
) -> None:
    """The HPA's Pods metric is the name the prometheus-adapter rule serves, computed from the
    counter the server really exposes on /metrics."""
    rules = yaml.safe_load((KUSTOMIZE / "prometheus-adapter" / "rules.yaml").read_text())
    (rule,) = [_AdapterRule.model_validate(r) for r in rules["rules"]]
    hpa = one(render("base"), "HorizontalPodAutoscaler").spec_as(HpaSpec)
    pods = [m.pods.metric.name for m in hpa.metrics if m.pods is not None]
    assert pods == [rule.name.as_]
    counter = re.fullmatch(r"\^(\w+)\$", rule.name.matches)
    assert counter is not None
    assert counter.group(1) in rule.series_query
    http.get("/healthz")
    assert f"\n{counter.group(1)}{{" in http.get("/metrics").text
    assert "rate(" in rule.metrics_query


def test_network_policies_deny_by_default_and_admit_only_the_named_peers() -> None:
    """Default deny both ways; the server admits the ingress controller's namespace,
    Prometheus and the API-calling jobs on its port; egress only to DNS, PostgreSQL and S3."""
    manifests = render("overlays/production")
    policies = {m.name: m.spec_as(NetworkPolicySpec) for m in of_kind(manifests, "NetworkPolicy")}
    deny = policies["medops-default-deny"]
    assert (deny.pod_selector, sorted(deny.policy_types), deny.ingress, deny.egress) == (
        {},
        ["Egress", "Ingress"],
        [],
        [],
    )
    ingress = policies["medops-server-ingress"].rules("ingress")
    sources = [
        (
            (p.namespace_selector or {}).get("matchLabels", {}).get("kubernetes.io/metadata.name"),
            (p.pod_selector or {}).get("matchLabels", {}),
        )
        for rule in ingress
        for p in rule.peers
    ]
    assert sources == [
        ("ingress-nginx", {}),
        ("monitoring", {"app.kubernetes.io/name": "prometheus"}),
        (None, {"medops.io/api-client": "true"}),
    ]
    assert {port.port for rule in ingress for port in rule.ports} == {"http"}
    egress = policies["medops-egress"].rules("egress")
    assert sorted({port.port for rule in egress for port in rule.ports}, key=str) == sorted(
        {53, 5432, 9000, 443}, key=str
    )
    assert all(p.ip_block is None for rule in egress for p in rule.peers)


def test_the_servicemonitor_crd_schema_is_vendored_with_its_licence() -> None:
    readme = (Path(__file__).parent / "crds" / "README.md").read_text()
    assert "Apache License" in readme
    assert "prometheus-operator" in readme
