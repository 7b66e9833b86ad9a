"""Settings: read once from ``MEDOPS_*`` environment variables and passed explicitly.

Every setting is documented in docs/configuration.md (a test keeps the two in step).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from medops.core.permissions import Role
from medops.core.windows import WINDOW_PATTERN, count_size
from medops.errors import ConfigurationError, InvalidInputError

ENV_PREFIX = "MEDOPS_"
ROLE_NAMES = tuple(role.value for role in Role)
SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")


class Settings(BaseSettings):
    """The process-wide configuration of one medops installation."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    home: Path = Field(
        default=Path(".medops"),
        description="Folder that holds the SQLite database, the blob store and local credentials.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the database; default: SQLite file medops.db in the home.",
    )
    url: str | None = Field(
        default=None,
        description="Base URL of a remote medops server; unset means the SDK and CLI run embedded.",
    )
    token: str | None = Field(
        default=None,
        description="API token used by the SDK and CLI; overrides the one saved by `medops login`.",
    )
    profile: str | None = Field(
        default=None,
        description=(
            "Which saved login the SDK and CLI use (`medops login` keeps one per user); "
            "default: the last one logged in. `medops --as USER` sets it for one command."
        ),
    )
    admin_password: SecretStr | None = Field(
        default=None,
        description="Password `medops init` gives the first admin; unset: generated, shown once.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level written to the JSON log on stderr."
    )
    session_idle_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="A login (CLI, SDK or browser session) unused this long expires.",
    )
    auth_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="How long a server reuses what the database said about a token (0: never). "
        "Its own changes (revocation, logout, disabling, grants) apply at once; those made by "
        "another process within this time.",
    )
    session_max_hours: int = Field(
        default=12,
        ge=1,
        le=24 * 30,
        description="A login expires this long after it began, however active.",
    )
    mfa_required_roles: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("admin", "ml_engineer"),
        description=(
            "Comma-separated roles that must use TOTP; until enrolled, they can only enroll."
        ),
    )
    login_address_failures: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Failed logins from one client address within the address window that "
        "block the address (429 with Retry-After).",
    )
    login_address_window_seconds: int = Field(
        default=600, ge=1, le=7 * 24 * 3600, description="The window those failures count in."
    )
    login_address_block_seconds: int = Field(
        default=900, ge=1, le=7 * 24 * 3600, description="How long a blocked address is refused."
    )
    login_delay_after: int = Field(
        default=3,
        ge=0,
        le=1000,
        description="Failed logins on an account (existing or not) before each further attempt "
        "on it waits before it is judged.",
    )
    login_delay_base_seconds: float = Field(
        default=1.0, ge=0, le=60, description="The first wait; each further failure doubles it."
    )
    login_delay_max_seconds: float = Field(
        default=8.0, ge=0, le=60, description="Longest wait before a login attempt is judged."
    )
    lockout_threshold: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Failed re-authentications in a row (password change, signatures, MFA "
        "enrollment) that lock the account's re-authentication.",
    )
    lockout_base_seconds: int = Field(
        default=60,
        ge=1,
        description="First re-authentication lockout; each further one doubles it.",
    )
    lockout_max_seconds: int = Field(
        default=3600, ge=1, description="Longest re-authentication lockout."
    )
    mfa_key_file: Path | None = Field(
        default=None,
        description="AES-256 key(s) encrypting TOTP secrets at rest; default mfa-secrets.key in "
        "the home.",
    )
    mfa_key: SecretStr | None = Field(
        default=None,
        description="The TOTP encryption key(s) themselves (base64, comma-separated, current "
        "first), e.g. from a Kubernetes secret; set, the key file is not used.",
    )
    breakglass_max_minutes: int = Field(
        default=240, ge=1, le=24 * 60, description="Longest break-glass grant."
    )
    audit_key_file: Path | None = Field(
        default=None,
        description="Ed25519 key signing audit checkpoints; default audit-signing.key in the home.",
    )
    audit_checkpoint_dir: Path | None = Field(
        default=None,
        description="Second location where each signed audit checkpoint is also written.",
    )
    audit_checkpoint_seconds: int = Field(
        default=10, ge=5, description="How often the server signs a checkpoint of new records."
    )
    audit_checkpoint_records: int = Field(
        default=1_000,
        ge=1,
        description="Sign a checkpoint sooner once this many records await one (checked each 1 s).",
    )
    cookie_secure: bool = Field(
        default=True,
        description="Mark the browser session cookie Secure (sent over HTTPS and localhost only).",
    )
    api_token_max_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description="Longest lifetime `medops tokens create --expires` may give an API token.",
    )
    max_request_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest request body the server accepts; larger ones get 413.",
    )
    onnx_providers: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("CPUExecutionProvider",),
        description="ONNX Runtime execution providers in order of preference, comma-separated "
        "(e.g. TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider); those "
        "this installation of ONNX Runtime lacks are skipped with a warning.",
    )
    serving_threads: int = Field(
        default=1, ge=1, le=64, description="ONNX Runtime intra-op threads per served model."
    )
    serving_max_batch_size: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description="Most records the micro-batcher puts in one ONNX Runtime call.",
    )
    serving_max_delay_ms: float = Field(
        default=2.0,
        ge=0,
        le=1000,
        description="Longest the oldest queued request waits for others to join its batch "
        "(only while requests come faster than one per this delay).",
    )
    serving_deadline_ms: float = Field(
        default=400.0,
        gt=0,
        le=60_000,
        description="A request whose projected queue and inference time exceeds this is shed "
        "with 503 and Retry-After.",
    )
    serving_max_records: int = Field(
        default=1000, ge=1, le=100_000, description="Most records one predict request may hold."
    )
    alert_evaluate_seconds: float = Field(
        default=15.0,
        ge=0,
        le=24 * 3600,
        description="How often the server evaluates alert rules and queues the notifications "
        "that are due, under a lease so one replica runs each tick (0: never; run `medops "
        "alerts evaluate` from a scheduler instead).",
    )
    monitor_interval_seconds: float = Field(
        default=3600.0,
        ge=0,
        le=7 * 24 * 3600,
        description="How often the server computes the monitoring windows that are due "
        "(0: never; run `medops monitor run` from a scheduler, e.g. a Kubernetes CronJob).",
    )
    monitor_window: str = Field(
        default="day",
        pattern=WINDOW_PATTERN,
        description="The window kind the server's scheduled runs compute: hour, day or week "
        "(UTC), or count:N (windows of N consecutive predictions, 10 to 10,000,000).",
    )
    serving_fast_lane: bool = Field(
        default=True,
        description="Answer predict requests whose bearer token is good and permitted without "
        "the web framework's routing and dependency layers (same checks, same answers; off: "
        "every request takes the framework's path).",
    )
    serving_refresh_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often a server checks the database for deployment and alias changes "
        "made by other processes (its own changes apply at once).",
    )
    # -- explanations --
    explain_top: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="How many feature contributions (largest first) an explained prediction "
        "shows; the prediction log keeps all of them.",
    )
    explain_background_rows: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Rows of the version's validation data (a fixed-seed sample) that make "
        "the explainer's background: the base value and what each feature is compared with.",
    )
    request_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Timeout of one SDK/CLI request to a remote server.",
    )
    # -- alert notifications (alerting/dispatch.py, alerting/links.py) --
    public_url: str | None = Field(
        default=None,
        description="The address people reach this server at (e.g. https://medops.example.org); "
        "notifications link to the console and to signed acknowledge/resolve pages under it.",
    )
    alert_link_key: SecretStr | None = Field(
        default=None,
        description="Key (at least 32 characters) signing the acknowledge/resolve links in "
        "notifications; default: the key file alert-links.key in the home, made on first use.",
    )
    alert_link_hours: int = Field(
        default=72, ge=1, le=30 * 24, description="How long a signed alert link stays valid."
    )
    alert_dispatch_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="How often the server sends the queued alert notifications that are due "
        "(0: never; run `medops alerts dispatch` from a scheduler instead).",
    )
    replica_id: str | None = Field(
        default=None,
        max_length=64,
        description="This server process's name in the serving usage it records (one row per "
        "deployment, minute and replica); default: host name and process id.",
    )
    price_cpu_hour: float = Field(
        default=0.0, ge=0, description="Price of one CPU-hour, for cost reports (0: no price)."
    )
    price_gb_hour: float = Field(
        default=0.0,
        ge=0,
        description="Price of one GB-hour of memory, for cost reports (0: no price).",
    )
    price_gpu_hour: float = Field(
        default=0.0, ge=0, description="Price of one GPU-hour, for cost reports (0: no price)."
    )
    price_currency: str = Field(
        default="EUR",
        pattern=r"^[A-Z]{3}$",
        description="Currency of the prices (ISO 4217 code), shown in cost reports.",
    )
    data_dir: Path | None = Field(
        default=None,
        description="Where the dataset store keeps its encrypted objects on this machine; "
        "default data/ in the home.",
    )
    data_kek_file: Path | None = Field(
        default=None,
        description="The data key-encryption keys (a keyring file, current key first); default "
        "data-kek.key in the home, made on first use.",
    )
    data_kek: SecretStr | None = Field(
        default=None,
        description="The data key-encryption keys themselves (id:base64, comma-separated, current "
        "first), e.g. from a Kubernetes secret; set, the key file is not used.",
    )
    data_remote: str | None = Field(
        default=None,
        max_length=1024,
        description="Where `medops data push` sends dataset versions and `pull` fetches them: "
        "s3://bucket/prefix or a folder path.",
    )
    data_s3_endpoint_url: str | None = Field(
        default=None,
        max_length=1024,
        description="Endpoint of an S3-compatible server (MinIO, Ceph, a cloud's); credentials "
        "come from the usual AWS_* variables or files.",
    )
    data_s3_region: str | None = Field(
        default=None, max_length=64, description="Region of the S3 bucket, where it needs one."
    )
    data_hash_workers: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Threads that hash and encrypt dataset files (0: one per CPU core).",
    )
    openlineage_url: str | None = Field(
        default=None,
        max_length=1024,
        description="Where lineage events go in OpenLineage format: an http(s) endpoint "
        "(POSTed as JSON) or file:///path (JSON lines); unset, none are sent.",
    )
    # -- TLS (medops server) --
    tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate chain `medops server` serves HTTPS with (with "
        "MEDOPS_TLS_KEY_FILE); unset: plain HTTP, for a proxy or ingress that terminates TLS.",
    )
    tls_key_file: Path | None = Field(
        default=None,
        description="PEM private key of MEDOPS_TLS_CERT_FILE (keep it mode 0600).",
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM bundle of the certificate authorities the SDK and CLI trust for an "
        "https MEDOPS_URL (a hospital's private CA); default: the system's.",
    )
    # -- the registry blob store (storage/) --
    blob_url: str | None = Field(
        default=None,
        max_length=1024,
        description="Where the registry keeps model artifacts and reports, encrypted with the "
        "data KEK: a folder path or s3://bucket/prefix (endpoint and region from "
        "MEDOPS_DATA_S3_ENDPOINT_URL and MEDOPS_DATA_S3_REGION); default: blobs/ in the home.",
    )

    @field_validator("blob_url")
    @classmethod
    def _blob_url_is_supported(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value.strip() == "":
            return None
        from medops.storage.location import parse_blob_url  # no boto3: a light parse

        location = parse_blob_url(value)  # raises ValueError naming what is wrong
        if location.is_s3 and not (info.data.get("data_kek") or info.data.get("data_kek_file")):
            # A key file made per pod would be a different key on every replica.
            msg = (
                "is an S3 bucket shared by replicas: give them one data KEK, set "
                "MEDOPS_DATA_KEK (a secret) or MEDOPS_DATA_KEK_FILE (a mounted secret)"
            )
            raise ValueError(msg)
        return value.strip()

    # -- retraining (retraining/jobs.py, triggers.py, k8s.py) --
    training_trigger_seconds: float = Field(
        default=60.0,
        ge=0,
        le=24 * 3600,
        description="How often the server evaluates the retraining triggers, under a lease so "
        "one replica runs each tick (0: never; run `medops train evaluate` from a scheduler).",
    )
    training_image: str = Field(
        default="medops",
        max_length=300,
        description="The container image of a training Job when the model's spec names none: "
        "the server's own image (the kustomize base's `medops`, set by the overlay).",
    )
    training_namespace: str = Field(
        default="medops",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="The Kubernetes namespace of training Jobs.",
    )
    training_token_secret: str = Field(
        default="medops-training-token",
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
        description="The Kubernetes secret (key `token`) holding the API token a training Job "
        "runs with (a person's or service account's with training:run, models:register and "
        "data:read).",
    )

    # -- retraining rollouts (retraining/rollout.py) --
    rollout_interval_seconds: float = Field(
        default=60.0,
        ge=0,
        le=24 * 3600,
        description="How often the server advances the rollouts change-control plans allow "
        "(shadow, canary steps, promotion, aborts), under a lease so one replica runs each "
        "tick (0: never; run `medops plans tick` from a scheduler instead).",
    )

    # -- feature store, online side (features/online/, features/materialize.py) --
    feature_online_url: str | None = Field(
        default=None,
        description="The online feature store: sqlite:///path (embedded), redis://host:port/db "
        "or postgresql://...; default features-online.db (SQLite) in the home.",
    )
    feature_online_namespace: str = Field(
        default="medops",
        pattern=r"^[a-z_][a-z0-9_]{0,40}$",
        description="Prefix of the online store's Redis keys and name of its PostgreSQL table "
        "(<namespace>_feature_online): installations sharing one Redis or database differ.",
    )
    feature_materialize_seconds: float = Field(
        default=0,
        ge=0,
        description="How often the server materializes every feature view served by a "
        "deployment into the online store (one replica per period); 0: only on request "
        "(`medops features materialize`, a CronJob).",
    )
    feature_binding_refresh_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often a server re-reads which deployments serve from feature views "
        "(a change made through this process applies at once).",
    )

    # -- backups (backup/) --
    backup_targets: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Where `medops backup create` writes: folder paths or s3://bucket/prefix "
        "URLs, comma-separated (endpoint from MEDOPS_DATA_S3_ENDPOINT_URL); each is a "
        "repository of its own.",
    )
    backup_key_file: Path | None = Field(
        default=None,
        description="The backup key(s) (base64, one per line, current first) that encrypt "
        "and sign backups; default backup.key in the home, made on first use. Keep a copy "
        "apart from the backups.",
    )
    backup_key: SecretStr | None = Field(
        default=None,
        description="The backup key(s) themselves (base64, comma-separated, current first), "
        "e.g. from a Kubernetes secret; set, the key file is not used.",
    )
    backup_keep_daily: int = Field(
        default=7, ge=0, le=3660, description="Retention: the newest backup of this many days."
    )
    backup_keep_weekly: int = Field(
        default=4, ge=0, le=520, description="Retention: the newest backup of this many weeks."
    )
    backup_keep_monthly: int = Field(
        default=12,
        ge=0,
        le=1200,
        description="Retention: the newest backup of this many months.",
    )
    backup_min_copies: int = Field(
        default=3,
        ge=1,
        le=20,
        description="3-2-1 rule: copies of the data, the live one included (live + targets).",
    )
    backup_min_media: int = Field(
        default=2,
        ge=1,
        le=20,
        description="3-2-1 rule: kinds of media (local disk; S3-compatible object storage).",
    )
    backup_min_offsite: int = Field(
        default=1,
        ge=0,
        le=20,
        description="3-2-1 rule: copies away from this site (s3:// targets count as offsite).",
    )
    backup_pg_bin_dir: Path | None = Field(
        default=None,
        description="Folder of pg_dump and pg_restore; default: PostgreSQL's own for the "
        "server's major version (/usr/lib/postgresql/<major>/bin), else the PATH.",
    )

    @field_validator("url", "public_url")
    @classmethod
    def _url_is_http(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            msg = "must start with http:// or https://"
            raise ValueError(msg)
        return value.rstrip("/")

    @field_validator("monitor_window")
    @classmethod
    def _window_kind(cls, value: str) -> str:
        try:
            count_size(value)
        except InvalidInputError as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("onnx_providers", mode="before")
    @classmethod
    def _providers_list(cls, value: object) -> tuple[str, ...]:
        providers = _comma_list(value)
        if not providers:
            msg = "name at least one execution provider"
            raise ValueError(msg)
        return providers

    @field_validator("backup_targets", mode="before")
    @classmethod
    def _targets_list(cls, value: object) -> tuple[str, ...]:
        return _comma_list(value)

    @field_validator("mfa_required_roles", mode="before")
    @classmethod
    def _roles_list(cls, value: object) -> tuple[str, ...]:
        roles = _comma_list(value)
        unknown = [r for r in roles if r not in ROLE_NAMES]
        if unknown:
            msg = f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLE_NAMES)}"
            raise ValueError(msg)
        return roles

    @field_validator("database_url")
    @classmethod
    def _database_is_supported(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        from sqlalchemy.engine import make_url  # only when a URL is set: the CLI starts light
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError:
            url = None
        if url is not None and url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        if url is None or url.drivername not in SUPPORTED_DRIVERS:
            msg = "must be a sqlite:///path or postgresql://user@host/db URL"
            raise ValueError(msg)
        return url.render_as_string(hide_password=False)

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the setting, or the SQLite file in the home."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'medops.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        """Where the local content-addressed blob store keeps its objects."""
        return self.home / "blobs"

    @property
    def resolved_feature_online_url(self) -> str:
        """The online feature store's URL (SQLite in the home unless set)."""
        return self.feature_online_url or f"sqlite:///{self.home / 'features-online.db'}"

    @property
    def resolved_data_dir(self) -> Path:
        """Where the local dataset store keeps its encrypted objects."""
        return self.data_dir or self.home / "data"

    @property
    def resolved_data_kek_file(self) -> Path:
        return self.data_kek_file or self.home / "data-kek.key"

    @property
    def resolved_audit_key_file(self) -> Path:
        return self.audit_key_file or self.home / "audit-signing.key"

    @property
    def resolved_mfa_key_file(self) -> Path:
        return self.mfa_key_file or self.home / "mfa-secrets.key"

    @property
    def resolved_backup_key_file(self) -> Path:
        return self.backup_key_file or self.home / "backup.key"

    @property
    def alert_link_key_file(self) -> Path:
        """Where the alert link key is kept when MEDOPS_ALERT_LINK_KEY is not set."""
        return self.home / "alert-links.key"

    @property
    def secrets_dir(self) -> Path:
        """Receivers' secrets by name (MEDOPS_ALERT_SECRET_<NAME> wins over a file here)."""
        return self.home / "secrets"

    @property
    def credentials_file(self) -> Path:
        """Where `medops login` saves the access token (mode 0600)."""
        return self.home / "credentials.json"

    @property
    def session_idle(self) -> timedelta:
        return timedelta(minutes=self.session_idle_minutes)

    @property
    def session_max(self) -> timedelta:
        return timedelta(hours=self.session_max_hours)


def _comma_list(value: object) -> tuple[str, ...]:
    """A comma-separated setting (or a sequence) as its non-empty, stripped items."""
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return tuple(str(item).strip() for item in items if str(item).strip())


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment; a bad value raises one clear ConfigurationError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        variable = ENV_PREFIX + field.upper()
        raise ConfigurationError(f"invalid setting {variable}: {first['msg']}") from None
