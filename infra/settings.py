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

    # API authentication (Clerk session JWTs) and protection
    auth_mode: Literal["clerk", "dev"] = "clerk"
    clerk_jwks_url: str | None = None  # https://<frontend-api>/.well-known/jwks.json
    clerk_issuer: str | None = None  # https://<frontend-api>
    clerk_authorized_parties: list[str] = []  # allowed `azp` origins; empty = any
    clerk_role_claim: str = "role"  # custom session claim holding viewer/organizer/admin
    dev_jwt_secret: SecretStr = SecretStr("dev-only-secret-change-me-0123456789")
    rate_limit_per_minute: int = Field(default=120, ge=1)
    rate_limit_anonymous_per_minute: int = Field(default=30, ge=1)

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
