"""Dagster resources over the shared Neo4j and Redis stores.

Fields left empty fall back to `Settings`, read when a run starts, not at import. The
stores (and their drivers) are imported when a resource opens one, so loading the code
location does not pay for the Neo4j driver (which pulls in pandas) or the Redis client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource

from infra.settings import Settings, get_settings

if TYPE_CHECKING:
    from infra.neo4j_store import GraphStore
    from infra.redis_keys import RedisKeys
    from infra.redis_store import FigureStore
    from ingest.landing import DataStore


class Neo4jResource(ConfigurableResource):
    uri: str | None = None
    user: str | None = None
    password: str | None = None
    database: str | None = None

    def _settings(self) -> Settings:
        overrides = {
            k: v
            for k, v in {
                "neo4j_uri": self.uri,
                "neo4j_user": self.user,
                "neo4j_password": self.password,
                "neo4j_database": self.database,
            }.items()
            if v is not None
        }
        return get_settings(**overrides)

    def settings(self) -> Settings:
        """The settings a run reads (with this resource's connection), for the assets."""
        return self._settings()

    @contextmanager
    def store(self) -> Iterator[GraphStore]:
        from infra.migrations import check_graph_known
        from infra.neo4j_store import GraphStore

        store = GraphStore.from_settings(self._settings())
        try:
            check_graph_known(store.driver, store.database)
            yield store
        finally:
            store.close()


class RedisResource(ConfigurableResource):
    url: str | None = None
    key_prefix: str | None = None

    def figures(self) -> FigureStore:
        from infra.redis_store import FigureStore

        overrides = {
            k: v
            for k, v in {"redis_url": self.url, "redis_key_prefix": self.key_prefix}.items()
            if v is not None
        }
        settings = get_settings(**overrides)
        return FigureStore.from_settings(settings)

    def key_layout(self) -> RedisKeys:
        from infra.redis_keys import RedisKeys

        return RedisKeys(self.key_prefix or get_settings().redis.key_prefix)


class ExportsResource(ConfigurableResource):
    """Where export files (CSV) are read from; defaults to the bundled samples."""

    folder: str | None = None

    def root(self) -> Path:
        return Path(self.folder) if self.folder else get_settings().folders.samples_dir


class PlatformsResource(ConfigurableResource):
    """Settings of the platform API syncs (base URLs, limits, keys).

    `values` is the platform area of the settings the code location was built with, keys
    and tokens left out (`PlatformSettings.public`), so they never show in run config or
    the UI: those are read from the environment when a run starts. Empty: all of it is.
    """

    values: dict[str, Any] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PlatformsResource:
        return cls(values=settings.platforms.public())

    def settings(self) -> Settings:
        return get_settings(**(self.values or {}))


class LandingResource(ConfigurableResource):
    """Where raw pages and normalized tables live; defaults to the DATA_DIR setting."""

    data_dir: str | None = None

    def store(self) -> DataStore:
        from ingest.landing import DataStore

        root = Path(self.data_dir) if self.data_dir else get_settings().data_path
        root.mkdir(parents=True, exist_ok=True)
        return DataStore(root)
