"""The wiring of one medops installation: settings, database, clock, blob store and services.

Built once per process (or per test) and handed to the API app; nothing here is global.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from medops.alerting import incidents
from medops.alerting.service import AlertService
from medops.alerting.slo_service import SloService
from medops.audit import signing
from medops.audit.checkpoints import CheckpointService
from medops.audit.refusals import RefusalTally
from medops.audit.service import AuditService, AuditSink, install_audit_guard
from medops.auth.breakglass import BreakGlassService
from medops.auth.enrollment import MfaService
from medops.auth.login import LoginService
from medops.auth.mfa_keys import MfaKeys
from medops.auth.mfa_store import MfaSecretStore
from medops.auth.passwords import OWASP_HASHING, PasswordHashing
from medops.auth.service import IdentityService
from medops.clock import Clock, SystemClock
from medops.config import Settings
from medops.context import Context
from medops.datasets.schemas import DatasetRef
from medops.datasets.service import DatasetService
from medops.db.engine import Database
from medops.features.online.service import FeatureOnlineService
from medops.features.schemas import DatasetSource
from medops.features.service import FeatureService
from medops.lineage.service import LineageService
from medops.monitoring.configs import MonitoringConfigService
from medops.monitoring.service import MonitoringService
from medops.registry.lifecycle import LifecycleService
from medops.registry.policy_changes import PolicyChangeService
from medops.registry.service import RegistryService
from medops.retraining.comparison import CandidateService
from medops.retraining.jobs import TrainingService
from medops.retraining.plans import PlanService
from medops.retraining.rollout import RolloutService
from medops.retraining.triggers import TriggerService
from medops.rowcheck import check_rows
from medops.serving.cost import Prices
from medops.serving.deployments import DeploymentService, followers
from medops.serving.explanations import ExplanationService
from medops.serving.outcomes import OutcomeService
from medops.serving.recorder import UsageRecorder, default_replica
from medops.storage.base import BlobStore
from medops.storage.encrypted import EncryptedBlobStore, open_blob_store


@dataclass
class Services:
    """Everything a use case needs, injected rather than imported."""

    settings: Settings
    db: Database
    clock: Clock
    blobs: BlobStore
    audit: AuditService
    refusals: RefusalTally
    identity: IdentityService
    logins: LoginService
    mfa: MfaService
    mfa_secrets: MfaSecretStore
    breakglass: BreakGlassService
    checkpoints: CheckpointService
    registry: RegistryService
    lifecycle: LifecycleService
    policy_changes: PolicyChangeService
    deployments: DeploymentService
    outcomes: OutcomeService
    explanations: ExplanationService
    monitoring: MonitoringService
    monitoring_config: MonitoringConfigService
    alerts: AlertService
    usage: UsageRecorder
    slo: SloService
    datasets: DatasetService
    lineage: LineageService
    training: TrainingService
    training_triggers: TriggerService
    plans: PlanService
    candidates: CandidateService
    rollouts: RolloutService
    features: FeatureService
    feature_online: FeatureOnlineService

    def close(self) -> None:
        self.refusals.flush(everything=True)
        try:
            self.usage.flush(self.db)
        finally:
            if isinstance(self.blobs, EncryptedBlobStore):
                self.blobs.close()  # its crypto threads
            self.datasets.close()
            self.feature_online.close()
            self.audit.close()
            self.db.dispose()


def dataset_reader(datasets: DatasetService) -> Callable[[Context, DatasetSource], bytes]:
    """How the feature store reads a view's dataset-version source on the server: the file
    through the datasets service, as the caller, audited ``data.read``."""

    def read(ctx: Context, source: DatasetSource) -> bytes:
        ref = DatasetRef.parse(source.dataset, field="source.dataset")
        return datasets.read_file(ctx, ref, source.file, "feature view source")

    return read


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    blobs: BlobStore | None = None,
    audit_sink: AuditSink | None = None,
    password_hashing: PasswordHashing = OWASP_HASHING,
) -> Services:
    """Connect the pieces for ``settings``; nothing is created on disk or in the database.
    ``password_hashing`` is for test suites only (medops.testing.FAST_PASSWORD_HASHING)."""
    clock = clock or SystemClock()
    db = Database(settings.resolved_database_url)
    install_audit_guard(db.session_factory)
    key_file = settings.resolved_audit_key_file
    # The audit key signs chain openings, checkpoints and approvals, and keys the records' MACs.
    audit = AuditService(db, clock, audit_sink, key=lambda: signing.load_or_create(key_file))
    # Encrypted with the datasets' keyring (one instance, so a rotation covers both); it is
    # asked for on first use, when ``datasets`` below exists.
    blobs = blobs or open_blob_store(settings, keyring=lambda: datasets.keyring)
    mfa_keys = MfaKeys(
        settings.resolved_mfa_key_file,
        settings.mfa_key.get_secret_value() if settings.mfa_key else None,
    )
    logins = LoginService(db, clock, audit, settings, mfa_keys, password_hashing)
    checkpoints = CheckpointService(db, clock, audit, settings.audit_checkpoint_dir, check_rows)
    # Signatures are countersigned with the same Ed25519 key as audit checkpoints.
    lifecycle = LifecycleService(db, clock, audit, blobs, logins, checkpoints.key, followers)
    deployments = DeploymentService(db, clock, audit, lifecycle)
    lifecycle.rollback_hooks.append(deployments.end_trials)
    alerts = AlertService(db, clock, audit)
    slo = SloService(db, clock, audit, Prices.of(settings))
    # The SLOs' burn rates are signals of the alert rules; the alerts are the SLA report's
    # incidents.
    alerts.signal_sources.append(slo.observations)
    slo.incident_sources.append(incidents.from_alerts(alerts))
    registry = RegistryService(db, clock, audit, blobs)
    lineage = LineageService(db, clock, audit, settings)
    # A registration's pinned dataset versions become lineage edges in its transaction.
    registry.pin_hooks.append(lineage.on_registered)
    # The retention rule asks the lineage which model versions need a dataset version, and a
    # validation re-run reads its file from the dataset store (datasets import neither).
    datasets = DatasetService(db, clock, audit, settings, dependants=lineage.dependants)
    if isinstance(blobs, EncryptedBlobStore):
        datasets.blob_rewrap = blobs.rewrap_all  # `medops data keys rotate` covers blobs
    registry.data_reader = lambda ctx, ref, path, purpose: datasets.read_file(
        ctx, DatasetRef.parse(ref), path, purpose
    )
    training = TrainingService(db, clock, audit)
    # A change-control plan's signatures stand in for a version's approvals when a
    # within-plan candidate report covers the version (retraining/plans.py).
    plans = PlanService(db, clock, audit, logins, checkpoints.key)
    lifecycle.approval_sources.append(plans.cover)
    candidates = CandidateService(db, clock, audit, blobs, registry.data_reader)
    monitoring = MonitoringService(db, clock, audit, blobs)
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        blobs=blobs,
        audit=audit,
        refusals=RefusalTally(audit, clock),
        identity=IdentityService(db, clock, audit, settings, password_hashing),
        logins=logins,
        mfa=MfaService(db, clock, audit, logins, mfa_keys),
        mfa_secrets=MfaSecretStore(db, audit, mfa_keys),
        breakglass=BreakGlassService(db, clock, audit, settings),
        checkpoints=checkpoints,
        registry=registry,
        lifecycle=lifecycle,
        policy_changes=PolicyChangeService(db, clock, audit, logins, checkpoints.key, followers),
        deployments=deployments,
        outcomes=OutcomeService(db, clock, audit),
        explanations=ExplanationService(db, audit),
        monitoring=monitoring,
        monitoring_config=MonitoringConfigService(db, clock, audit),
        alerts=alerts,
        usage=UsageRecorder(clock, settings.replica_id or default_replica()),
        slo=slo,
        datasets=datasets,
        lineage=lineage,
        training=training,
        training_triggers=TriggerService(db, clock, audit, training),
        plans=plans,
        candidates=candidates,
        rollouts=RolloutService(db, clock, audit, lifecycle, deployments, monitoring),
        features=FeatureService(db, clock, audit),
        feature_online=FeatureOnlineService(
            db, clock, audit, settings, read_dataset=dataset_reader(datasets)
        ),
    )
