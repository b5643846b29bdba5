"""Runtime settings, resolved from the environment when asked for, never at import time."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:  # the domain configs are imported where converted: settings stay light
    from domain.identity.pipeline import Thresholds
    from domain.network.coattendance import WeightConfig
    from domain.network.metrics import MetricsConfig
    from domain.topology.report import TdaConfig
    from infra.crypto import KeyRing

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# The test profile: its own ports and folders, so tests never touch the demo's data.
TEST_PROFILE_ENV: dict[str, str] = {
    "NEO4J_URI": "bolt://127.0.0.1:7688",
    "REDIS_URL": "redis://127.0.0.1:6380/0",
    "STATE_DIR": ".local/test",
    "DATA_DIR": ".local/test/data",
    "BACKUP_VERIFY_NEO4J_URI": "bolt://127.0.0.1:7690",
    "POSTGRES_PORT": "5433",
}


class Area(BaseModel):
    """One area's settings, read from the flat fields of `Settings`.

    The environment variables stay flat (`NEO4J_URI`, `LUMA_API_KEY`, …) and defaults and
    bounds are declared once, on `Settings`; an area is a typed view over its fields, with
    the conversion to its domain's config beside it. `prefix` maps a field `uri` to the flat
    `neo4j_uri`; a field named otherwise says so with `validation_alias`.
    """

    model_config = ConfigDict(frozen=True, from_attributes=True)

    @classmethod
    def of(cls, settings: Settings) -> Self:
        return cls.model_validate(settings, from_attributes=True)

    @classmethod
    def flat_names(cls) -> set[str]:
        """The `Settings` fields this area reads."""
        return {str(f.validation_alias or name) for name, f in cls.model_fields.items()}


def _prefixed(prefix: str) -> ConfigDict:
    return ConfigDict(
        frozen=True,
        from_attributes=True,
        alias_generator=AliasGenerator(validation_alias=lambda name: prefix + name),
    )


class Neo4jSettings(Area):
    model_config = _prefixed("neo4j_")

    uri: str
    user: str
    password: SecretStr
    database: str
    version: str
    java_home: str | None
    heap: str
    pagecache: str
    write_batch_size: int


class RedisSettings(Area):
    model_config = _prefixed("redis_")

    url: str
    key_prefix: str
    cache_ttl_seconds: int = Field(validation_alias="cache_ttl_seconds")


class FolderSettings(Area):
    state_dir: Path
    cache_dir: Path
    data_dir: Path
    samples_dir: Path


class ServeSettings(Area):
    """Where the API and the Dagster UI listen (`community demo`)."""

    api_host: str
    api_port: int
    dagster_host: str
    dagster_port: int


class ScheduleSettings(Area):
    timezone: str = Field(validation_alias="schedule_timezone")
    nightly_cron: str
    snapshot_cron: str
    backup_cron: str
    nightly_window_days: int


class AuthSettings(Area):
    mode: Literal["clerk", "dev"] = Field(validation_alias="auth_mode")
    clerk_jwks_url: str | None
    clerk_issuer: str | None
    clerk_authorized_parties: list[str]
    clerk_role_claim: str
    role_policy: dict[str, str] = Field(validation_alias="auth_role_policy")
    clerk_organization_ids: list[str]
    clerk_org_role_policy: dict[str, str]
    default_role: Literal["viewer", "organizer", "admin"] | None = Field(
        validation_alias="auth_default_role"
    )
    jwks_timeout_seconds: float
    jwks_cache_seconds: int
    jwks_refetch_interval_seconds: float
    dev_jwt_secret: SecretStr | None


class ApiSettings(Area):
    """Request limits and protections of the API."""

    rate_limit_per_minute: int
    rate_limit_anonymous_per_minute: int
    rate_limit_fail_open: bool
    redis_retry_seconds: float
    trusted_proxies: list[str]
    metrics_token: SecretStr | None
    ip_block_threshold: int
    ip_block_window_seconds: int
    ip_block_seconds: int
    cors_origins: list[str]
    max_body_bytes: int
    max_query_bytes: int
    max_header_bytes: int
    unmerge_max_decisions: int
    privacy_hash_key: SecretStr | None
    pipeline_stale_hours: float


class PlatformSettings(Area):
    """The platform API syncs: addresses, credentials, limits and the partitioned range."""

    luma_base_url: str
    luma_api_key: SecretStr
    luma_requests_per_minute: int
    luma_settle_days: int
    eventbrite_base_url: str
    eventbrite_token: SecretStr
    eventbrite_requests_per_minute: int
    sync_concurrency: int
    sync_page_size: int
    sync_timeout_seconds: float
    sync_max_attempts: int
    sync_backoff_seconds: float
    sync_backoff_max_seconds: float
    sync_max_retry_after_seconds: float
    imports_start_date: str
    imports_lookahead_days: int

    def public(self) -> dict[str, object]:
        """Everything but keys and tokens, by flat name: what may appear in run config."""
        return {
            name: value
            for name, value in self.model_dump().items()
            if not isinstance(value, SecretStr)
        }


class FakesSettings(Area):
    """The local imitations of the platform APIs the demo starts."""

    autostart: bool = Field(validation_alias="fakes_autostart")
    seed: int = Field(validation_alias="fakes_seed")
    luma_port: int = Field(validation_alias="fake_luma_port")
    eventbrite_port: int = Field(validation_alias="fake_eventbrite_port")


class IdentitySettings(Area):
    model_config = _prefixed("identity_")

    merge_threshold: float
    suggest_threshold: float
    merge_without_identifier_threshold: float
    common_name_min: int
    source_trust: list[str]

    def to_config(self) -> Thresholds:
        from domain.identity.pipeline import Thresholds

        return Thresholds(
            merge_at=self.merge_threshold,
            suggest_at=self.suggest_threshold,
            merge_without_identifier_at=self.merge_without_identifier_threshold,
            common_name_min=self.common_name_min,
        )


class AnalyticsSettings(Area):
    model_config = _prefixed("analytics_")

    checkin_weight: float
    rsvp_weight: float
    monthly_decay: float
    engine: Literal["igraph", "networkx"]
    betweenness_exact_max: int
    betweenness_samples: int
    community_resolution: float
    seed: int
    partitions_start: str
    lapse_months: int
    layout_max_nodes: int

    def weight_config(self) -> WeightConfig:
        from domain.network.coattendance import WeightConfig

        return WeightConfig(self.checkin_weight, self.rsvp_weight, self.monthly_decay)

    def metrics_config(self) -> MetricsConfig:
        from domain.network.metrics import MetricsConfig

        return MetricsConfig(
            engine=self.engine,
            betweenness_exact_max=self.betweenness_exact_max,
            betweenness_samples=self.betweenness_samples,
            community_resolution=self.community_resolution,
            seed=self.seed,
        )


class TdaSettings(Area):
    model_config = _prefixed("tda_")

    max_dimension: int
    max_points: int
    engine: Literal["ripser", "giotto", "gudhi"]
    computation_timeout: float
    memory_limit_mb: int
    image_scale: float
    image_pixels: int

    def to_config(self) -> TdaConfig:
        from domain.topology.report import TdaConfig

        return TdaConfig(
            max_dimension=self.max_dimension,
            max_points=self.max_points,
            engine=self.engine,
            timeout_s=self.computation_timeout,
            memory_bytes=self.memory_limit_mb * 2**20,
            image_scale=self.image_scale,
            image_pixels=self.image_pixels,
        )


class BackupSettings(Area):
    model_config = _prefixed("backup_")

    dir: Path
    keep: int
    verify: bool
    verify_neo4j_uri: str
    verify_heap: str
    encryption_keys: list[SecretStr] = Field(validation_alias="encryption_keys")


class PostgresSettings(Area):
    """The production Dagster instance's storage."""

    model_config = _prefixed("postgres_")

    host: str
    port: int
    user: str
    password: SecretStr
    db: str
    bin_dir: str | None


class OperationsSettings(Area):
    """Run outcomes, alerts, TLS material and logging: what operators set per deployment."""

    alert_webhook_url: str | None
    tls_ca_file: str | None
    tls_cert_file: str | None
    tls_key_file: str | None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]


# Every field of `Settings` belongs to exactly one area (a unit test holds this).
AREAS: dict[str, type[Area]] = {
    "neo4j": Neo4jSettings,
    "redis": RedisSettings,
    "folders": FolderSettings,
    "serve": ServeSettings,
    "schedules": ScheduleSettings,
    "auth": AuthSettings,
    "api": ApiSettings,
    "platforms": PlatformSettings,
    "fakes": FakesSettings,
    "identity": IdentitySettings,
    "analytics": AnalyticsSettings,
    "tda": TdaSettings,
    "backup": BackupSettings,
    "postgres": PostgresSettings,
    "operations": OperationsSettings,
}


class Settings(BaseSettings):
    """Every knob of the platform; `.env.example` documents each one."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Neo4j
    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("community-local-pw")
    neo4j_database: str = "neo4j"
    neo4j_version: str = "5.26.30"
    neo4j_java_home: str | None = None
    neo4j_heap: str = "1g"
    neo4j_pagecache: str = "256m"
    neo4j_write_batch_size: int = Field(default=5000, ge=1)

    # Redis
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "cp"
    cache_ttl_seconds: int = Field(default=300, ge=0)

    # Folders (relative paths are taken from the project root)
    state_dir: Path = Path(".local")
    cache_dir: Path = Path(".cache")
    data_dir: Path = Path(".local/data")
    samples_dir: Path = PROJECT_ROOT / "samples"

    # Processes
    api_host: str = "127.0.0.1"
    api_port: int = 3000
    dagster_host: str = "127.0.0.1"
    dagster_port: int = 3001

    # Schedules
    schedule_timezone: str = "UTC"
    nightly_cron: str = "0 3 * * *"
    snapshot_cron: str = "0 5 * * *"  # monthly analytics snapshot (month to date)

    # API authentication (Clerk session JWTs) and the role policy
    auth_mode: Literal["clerk", "dev"] = "clerk"  # dev: HS256 tokens, loopback only
    clerk_jwks_url: str | None = None  # https://<frontend-api>/.well-known/jwks.json
    clerk_issuer: str | None = None  # https://<frontend-api>; required in clerk mode
    clerk_authorized_parties: list[str] = []  # allowed `azp` origins; required in clerk mode
    clerk_role_claim: str = "role"  # the one session claim roles are read from
    # claim value -> platform role; a value not listed here grants nothing
    auth_role_policy: dict[str, str] = {
        "viewer": "viewer",
        "organizer": "organizer",
        "admin": "admin",
    }
    # organization roles count only inside these organizations (empty: organization roles ignored)
    clerk_organization_ids: list[str] = []
    clerk_org_role_policy: dict[str, str] = {
        "org:admin": "admin",
        "org:organizer": "organizer",
        "org:member": "viewer",
    }
    auth_default_role: Literal["viewer", "organizer", "admin"] | None = None  # off: 403
    jwks_timeout_seconds: float = Field(default=3.0, gt=0)
    jwks_cache_seconds: int = Field(default=600, ge=1)  # keys expire from the cache after this
    jwks_refetch_interval_seconds: float = Field(default=30.0, ge=0)  # unknown `kid` refetch
    dev_jwt_secret: SecretStr | None = None  # unset: generated once per install (state dir)

    # API protection
    rate_limit_per_minute: int = Field(default=120, ge=1)
    rate_limit_anonymous_per_minute: int = Field(default=30, ge=1)  # failed authentication
    rate_limit_fail_open: bool = True  # Redis down: serve (true) or answer 503 (false)
    redis_retry_seconds: float = Field(default=5.0, gt=0)  # Redis down: next attempt after
    trusted_proxies: list[str] = []  # addresses/CIDRs whose X-Forwarded-For is believed
    metrics_token: SecretStr | None = None  # bearer for /metrics; unset: loopback callers only
    ip_block_threshold: int = Field(default=60, ge=1)  # failures or 429s within the window
    ip_block_window_seconds: int = Field(default=300, ge=1)
    ip_block_seconds: int = Field(default=900, ge=1)
    cors_origins: list[str] = ["http://localhost:3000"]
    max_body_bytes: int = Field(default=65536, ge=1024)
    max_query_bytes: int = Field(default=2048, ge=64)
    max_header_bytes: int = Field(default=8192, ge=1024)
    unmerge_max_decisions: int = Field(default=2000, ge=1)  # split x rest pairs per request
    privacy_hash_key: SecretStr | None = None  # erasure tombstones; unset: per install

    # Platform APIs (defaults point at the local fakes the demo starts, `python -m fakes serve`)
    luma_base_url: str = "http://127.0.0.1:8711/v1"  # real: https://public-api.luma.com/v1
    luma_api_key: SecretStr = SecretStr("luma-local-key")
    luma_requests_per_minute: int = Field(default=200, ge=1)
    luma_settle_days: int = Field(default=3, ge=0)  # guest lists this long after an event are final
    eventbrite_base_url: str = "http://127.0.0.1:8712/v3"  # real: https://www.eventbriteapi.com/v3
    eventbrite_token: SecretStr = SecretStr("eventbrite-local-token")
    eventbrite_requests_per_minute: int = Field(default=1000, ge=1)
    sync_concurrency: int = Field(default=5, ge=1)
    sync_page_size: int = Field(default=100, ge=1)
    sync_timeout_seconds: float = Field(default=30.0, gt=0)
    sync_max_attempts: int = Field(default=5, ge=1)
    sync_backoff_seconds: float = Field(default=0.5, ge=0)
    sync_backoff_max_seconds: float = Field(default=30.0, ge=0)
    sync_max_retry_after_seconds: float = Field(default=120.0, ge=0)
    imports_start_date: str = "2026-09-01"  # first daily partition of the API imports
    imports_lookahead_days: int = Field(default=45, ge=0)  # future partitions (upcoming events)
    nightly_window_days: int = Field(default=14, ge=0)  # past days the nightly sync revisits
    fakes_autostart: bool = True  # the demo starts the platform fakes in the background
    fakes_seed: int = 7
    fake_luma_port: int = 8711
    fake_eventbrite_port: int = 8712

    # Identity resolution
    identity_merge_threshold: float = Field(default=0.95, gt=0, lt=1)  # merge at or above
    identity_suggest_threshold: float = Field(default=0.9, gt=0, lt=1)  # review between the two
    # merges resting on names and co-attendance alone (no shared address, phone or handle)
    identity_merge_without_identifier_threshold: float = Field(default=0.95, gt=0, lt=1)
    identity_common_name_min: int = Field(default=5, ge=2)  # people sharing a name => common
    identity_source_trust: list[str] = ["luma", "eventbrite", "meetup", "partiful"]

    # Community analytics (co-attendance network)
    analytics_checkin_weight: float = Field(default=1.0, gt=0)  # an attendance with a check-in
    analytics_rsvp_weight: float = Field(default=0.5, ge=0)  # an RSVP without a check-in
    analytics_monthly_decay: float = Field(default=0.10, ge=0, lt=1)  # weight lost per month
    analytics_engine: Literal["igraph", "networkx"] = "igraph"  # networkx: the slow reference
    analytics_betweenness_exact_max: int = Field(default=5000, ge=3)  # sampled above this
    analytics_betweenness_samples: int = Field(default=500, ge=10)  # source members sampled
    analytics_community_resolution: float = Field(default=1.0, gt=0)
    analytics_seed: int = 7
    analytics_partitions_start: str = "2025-01-01"  # first monthly snapshot partition
    analytics_lapse_months: int = Field(default=3, ge=1)  # absent this long => lapsed
    analytics_layout_max_nodes: int = Field(default=2000, ge=10)

    # Topological data analysis (persistent homology of the member graph)
    tda_max_dimension: int = Field(default=2, ge=0, le=3)  # H0..H<max_dimension>
    tda_max_points: int = Field(default=1000, ge=16)  # landmarks (greedy max-min) above this
    tda_engine: Literal["ripser", "giotto", "gudhi"] = "giotto"  # fastest here (bench.analytics)
    tda_computation_timeout: float = Field(default=300.0, gt=0)  # seconds, whole computation
    tda_memory_limit_mb: int = Field(default=4096, ge=64)  # cap on the child's resident memory
    tda_image_scale: float = Field(default=10.0, gt=0)  # persistence image covers [0, scale]
    tda_image_pixels: int = Field(default=10, ge=2)  # image is pixels² values per dimension

    # Backups (graph, normalized store, Redis documents), verified by a restore
    backup_dir: Path = Path(".local/backups")
    backup_keep: int = Field(default=7, ge=1)  # newest verified backups kept
    backup_cron: str = "30 2 * * *"
    backup_verify: bool = True  # restore each backup into an empty Neo4j and compare
    backup_verify_neo4j_uri: str = "bolt://127.0.0.1:7689"  # started for the purpose
    backup_verify_heap: str = "512m"

    # PostgreSQL: the production Dagster instance's storage (deploy/dagster.yaml)
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "dagster"
    postgres_password: SecretStr = SecretStr("dagster-local-pw")
    postgres_db: str = "dagster"
    postgres_bin_dir: str | None = None  # default: the newest /usr/lib/postgresql/*/bin

    # Run outcomes and alerts
    alert_webhook_url: str | None = None  # POSTed a JSON body for every failed run
    pipeline_stale_hours: float = Field(default=36.0, gt=0)  # /health: last success older

    # Encryption in transit: TLS follows the address (neo4j+s://, bolt+s://, rediss://)
    tls_ca_file: str | None = None  # a private CA the clients trust; unset: the system's CAs
    tls_cert_file: str | None = None  # the local servers' certificate (PEM), when TLS is on
    tls_key_file: str | None = None  # and its key; `community services tls-cert` makes both

    # Encryption at rest (raw landing, backups): url-safe base64 32-byte keys, newest first
    encryption_keys: list[SecretStr] = []

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Areas: typed views over the fields above, each with its conversion to its domain's
    # config beside it (`settings.identity.to_config()`). Built on each access, so a
    # `model_copy(update=...)` of these settings is always reflected.

    @field_validator("metrics_token", "dev_jwt_secret", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        """`METRICS_TOKEN=` in a .env or compose file must not become a token that an
        empty bearer matches: a blank secret means unset."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def neo4j(self) -> Neo4jSettings:
        return Neo4jSettings.of(self)

    @property
    def redis(self) -> RedisSettings:
        return RedisSettings.of(self)

    @property
    def folders(self) -> FolderSettings:
        return FolderSettings.of(self)

    @property
    def serve(self) -> ServeSettings:
        return ServeSettings.of(self)

    @property
    def schedules(self) -> ScheduleSettings:
        return ScheduleSettings.of(self)

    @property
    def auth(self) -> AuthSettings:
        return AuthSettings.of(self)

    @property
    def api(self) -> ApiSettings:
        return ApiSettings.of(self)

    @property
    def platforms(self) -> PlatformSettings:
        return PlatformSettings.of(self)

    @property
    def fakes(self) -> FakesSettings:
        return FakesSettings.of(self)

    @property
    def identity(self) -> IdentitySettings:
        return IdentitySettings.of(self)

    @property
    def analytics(self) -> AnalyticsSettings:
        return AnalyticsSettings.of(self)

    @property
    def tda(self) -> TdaSettings:
        return TdaSettings.of(self)

    @property
    def backup(self) -> BackupSettings:
        return BackupSettings.of(self)

    @property
    def postgres(self) -> PostgresSettings:
        return PostgresSettings.of(self)

    @property
    def operations(self) -> OperationsSettings:
        return OperationsSettings.of(self)

    def path(self, value: Path) -> Path:
        """Anchors a relative folder setting at the project root."""
        return value if value.is_absolute() else PROJECT_ROOT / value

    @property
    def state_path(self) -> Path:
        return self.path(self.state_dir)

    @property
    def cache_path(self) -> Path:
        return self.path(self.cache_dir)

    @property
    def data_path(self) -> Path:
        return self.path(self.data_dir)

    def install_secret(self, name: str) -> str:
        """A random secret generated once per install (state folder, mode 0600).

        Secrets never have defaults in the code: a published default is no secret.
        """
        path = self.state_path / "secrets" / name
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(value)
        return value

    def key_ring(self) -> KeyRing:
        from infra.crypto import KeyRing

        return KeyRing.from_texts([k.get_secret_value() for k in self.encryption_keys])

    def dev_secret(self) -> str:
        if self.dev_jwt_secret is not None:
            return self.dev_jwt_secret.get_secret_value()
        return self.install_secret("dev-jwt-secret")

    def privacy_key(self) -> bytes:
        if self.privacy_hash_key is not None:
            return self.privacy_hash_key.get_secret_value().encode()
        return self.install_secret("privacy-hash-key").encode()


def get_settings(**overrides: object) -> Settings:
    """Builds settings now, from the current environment and `.env`."""
    return Settings(**overrides)  # type: ignore[arg-type]
