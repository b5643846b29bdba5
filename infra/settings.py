"""Runtime settings, resolved from the environment when asked for, never at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# The test profile: its own ports and folders, so tests never touch the demo's data.
TEST_PROFILE_ENV: dict[str, str] = {
    "NEO4J_URI": "bolt://127.0.0.1:7688",
    "REDIS_URL": "redis://127.0.0.1:6380/0",
    "STATE_DIR": ".local/test",
    "DATA_DIR": ".local/test/data",
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

    # API authentication (Clerk session JWTs) and protection
    auth_mode: Literal["clerk", "dev"] = "clerk"
    clerk_jwks_url: str | None = None  # https://<frontend-api>/.well-known/jwks.json
    clerk_issuer: str | None = None  # https://<frontend-api>
    clerk_authorized_parties: list[str] = []  # allowed `azp` origins; empty = any
    clerk_role_claim: str = "role"  # custom session claim holding viewer/organizer/admin
    dev_jwt_secret: SecretStr = SecretStr("dev-only-secret-change-me-0123456789")
    rate_limit_per_minute: int = Field(default=120, ge=1)
    rate_limit_anonymous_per_minute: int = Field(default=30, ge=1)

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


def get_settings(**overrides: object) -> Settings:
    """Builds settings now, from the current environment and `.env`."""
    return Settings(**overrides)  # type: ignore[arg-type]
