"""Runtime settings, resolved from the environment when asked for, never at import time."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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
