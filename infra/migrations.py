"""Versioned migrations of the graph schema and of the Redis document layout.

Each part records its version (graph: a `SchemaVersion` node; Redis: `<prefix>:ops:schema_version`).
`community migrate` applies what is pending, in order; `community migrate --to N` runs the
`down` steps back to N (the rollback of a release, after restoring nothing: a migration
whose `down` cannot undo it says so and refuses). The API and the code location check at
start-up and refuse a version they do not know (a newer release wrote it) or an older one
(run `community migrate` first).

To change the schema: add the statements to infra/graph_schema.py and a new `Migration`
at the end of GRAPH_MIGRATIONS whose `up` runs them (renames: copy, then remove, in
batches) and whose `down` reverses them. To change a Redis document: change its model in
infra/documents.py, raise its version, and add a `RedisMigration` that rewrites the stored
documents (and one whose `down` writes them back).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from neo4j import Driver

from infra import graph_schema as gs
from infra.redis_keys import RedisKeys


class SchemaMismatchError(RuntimeError):
    """The stored schema is not the one this release knows."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    up: tuple[str, ...]
    down: tuple[str, ...] | None = ()  # None: cannot be undone (restore the backup instead)


@dataclass(frozen=True)
class RedisMigration:
    version: int
    description: str
    up: Callable[[redis.Redis, RedisKeys], None]
    down: Callable[[redis.Redis, RedisKeys], None] | None = None


GRAPH_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "constraints and indexes of the member graph",
        up=(*gs.CONSTRAINTS, *gs.INDEXES, *gs.API_CONSTRAINTS),
        down=None,
    ),
)


def _noop(client: redis.Redis, keys: RedisKeys) -> None:
    return None


def _analytics_documents(client: redis.Redis, keys: RedisKeys) -> list[str]:
    """The keys of the JSON documents modelled in infra/documents.py (summary, layout, snapshots)."""
    months = [str(month) for month in client.zrange(keys.snapshots_index(), 0, -1)]
    return [keys.community_summary(), keys.graph_layout(), *(keys.snapshot(m) for m in months)]


def _rewrite(client: redis.Redis, key: str, change: Callable[[Any], Any]) -> None:
    raw = client.get(key)
    if raw is not None:
        client.set(key, json.dumps(change(json.loads(str(raw)))))


def _stamp(value: Any) -> Any:
    if isinstance(value, dict) and "schema_version" not in value:
        return {**value, "schema_version": 1}
    return value


def _unstamp(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "schema_version"}
    return value


def _wrap_items(value: Any) -> Any:
    return {"schema_version": 1, "items": value} if isinstance(value, list) else value


def _unwrap_items(value: Any) -> Any:
    return value.get("items", []) if isinstance(value, dict) else value


def _versioned_documents_up(client: redis.Redis, keys: RedisKeys) -> None:
    """Documents written before they carried a version are version 1 as they stand;
    the communities list becomes an object so it can carry one too."""
    for key in _analytics_documents(client, keys):
        _rewrite(client, key, _stamp)
    _rewrite(client, keys.communities(), _wrap_items)
    client.incr(keys.cache_generation())  # cached answers were built from the old shape


def _versioned_documents_down(client: redis.Redis, keys: RedisKeys) -> None:
    for key in _analytics_documents(client, keys):
        _rewrite(client, key, _unstamp)
    _rewrite(client, keys.communities(), _unwrap_items)
    client.incr(keys.cache_generation())


REDIS_MIGRATIONS: tuple[RedisMigration, ...] = (
    RedisMigration(
        1, "figures, analytics, sync cursors and tombstones as of the first release", _noop, _noop
    ),
    RedisMigration(
        2,
        "analytics documents carry schema_version; communities stored as {schema_version, items}",
        _versioned_documents_up,
        _versioned_documents_down,
    ),
)


def latest(migrations: Sequence[Migration] | Sequence[RedisMigration]) -> int:
    return max((m.version for m in migrations), default=0)


# --------------------------------------------------------------------------- graph


def graph_version(driver: Driver, database: str) -> int | None:
    records, _, _ = driver.execute_query(gs.GET_SCHEMA_VERSION, name="graph", database_=database)
    return int(records[0]["version"]) if records else None


def _has_data(driver: Driver, database: str) -> bool:
    records, _, _ = driver.execute_query(
        f"MATCH (n) WHERE NOT n:{gs.TEST_INSTANCE_MARKER} AND NOT n:{gs.SCHEMA_VERSION} "
        "RETURN count(n) > 0 AS any",
        database_=database,
    )
    return bool(records[0]["any"])


def migrate_graph(
    driver: Driver,
    database: str,
    target: int | None = None,
    migrations: Sequence[Migration] = GRAPH_MIGRATIONS,
) -> list[str]:
    """Brings the graph to `target` (default: the latest); returns what ran."""
    driver.execute_query(gs.SCHEMA_VERSION_CONSTRAINT, database_=database)
    current = graph_version(driver, database) or 0
    goal = latest(migrations) if target is None else target
    if current > latest(migrations):
        raise SchemaMismatchError(
            f"the graph is at schema version {current}, newer than this release knows "
            f"({latest(migrations)})"
        )
    done: list[str] = []
    with driver.session(database=database) as session:
        if goal >= current:
            for m in sorted(migrations, key=lambda m: m.version):
                if current < m.version <= goal:
                    for statement in m.up:
                        session.run(statement).consume()
                    _record(session, m.version, f"up {m.version}: {m.description}")
                    done.append(f"up {m.version}: {m.description}")
        else:
            for m in sorted(migrations, key=lambda m: -m.version):
                if goal < m.version <= current:
                    if m.down is None:
                        raise SchemaMismatchError(
                            f"migration {m.version} ({m.description}) cannot be undone; "
                            "restore the backup taken before the upgrade"
                        )
                    for statement in m.down:
                        session.run(statement).consume()
                    _record(session, m.version - 1, f"down {m.version}: {m.description}")
                    done.append(f"down {m.version}: {m.description}")
    return done


def _record(session: object, version: int, what: str) -> None:
    entry = f"{datetime.now(UTC).isoformat()} {what}"
    session.run(gs.SET_SCHEMA_VERSION, name="graph", version=version, entry=entry).consume()  # type: ignore[attr-defined]


def ensure_graph_schema(
    driver: Driver, database: str, migrations: Sequence[Migration] = GRAPH_MIGRATIONS
) -> None:
    """What the pipeline runs before writing: a new, empty graph gets the whole schema;
    a graph at this release's version is left as is; anything else is refused (an older
    graph is migrated by `community migrate`, deliberately, after a backup)."""
    driver.execute_query(gs.SCHEMA_VERSION_CONSTRAINT, database_=database)
    version = graph_version(driver, database)
    if version is None and not _has_data(driver, database):
        migrate_graph(driver, database, migrations=migrations)
        return
    check_graph(driver, database, migrations)


def set_graph_version(driver: Driver, database: str, version: int, why: str) -> None:
    entry = f"{datetime.now(UTC).isoformat()} set {version}: {why}"
    driver.execute_query(
        gs.SET_SCHEMA_VERSION, name="graph", version=version, entry=entry, database_=database
    )


def check_graph(
    driver: Driver, database: str, migrations: Sequence[Migration] = GRAPH_MIGRATIONS
) -> None:
    """Raises unless the graph is at this release's version (or is new and empty)."""
    version = graph_version(driver, database)
    known = latest(migrations)
    if version is None:
        if _has_data(driver, database):
            raise SchemaMismatchError(
                "the graph holds data but no schema version: run `community migrate`"
            )
        return
    if version > known:
        raise SchemaMismatchError(
            f"the graph is at schema version {version}; this release knows up to {known}. "
            "Run the release that wrote it, or roll the graph back (`community migrate --to`)."
        )
    if version < known:
        raise SchemaMismatchError(
            f"the graph is at schema version {version}; this release needs {known}: "
            "run `community migrate`"
        )


def check_graph_known(
    driver: Driver, database: str, migrations: Sequence[Migration] = GRAPH_MIGRATIONS
) -> None:
    """The code location's check when it opens the graph: a version written by a newer
    release is refused before anything reads or writes."""
    version = graph_version(driver, database)
    if version is not None and version > latest(migrations):
        raise SchemaMismatchError(
            f"the graph is at schema version {version}; this release knows up to "
            f"{latest(migrations)}"
        )


# --------------------------------------------------------------------------- Redis


def redis_version(client: redis.Redis, keys: RedisKeys) -> int | None:
    raw = client.get(keys.schema_version())
    return None if raw is None else int(str(raw))


def migrate_redis(
    client: redis.Redis,
    keys: RedisKeys,
    target: int | None = None,
    migrations: Sequence[RedisMigration] = REDIS_MIGRATIONS,
) -> list[str]:
    current = redis_version(client, keys) or 0
    goal = latest(migrations) if target is None else target
    if current > latest(migrations):
        raise SchemaMismatchError(
            f"Redis documents are at version {current}, newer than this release knows"
        )
    done: list[str] = []
    if goal >= current:
        for step in sorted(migrations, key=lambda m: m.version):
            if current < step.version <= goal:
                step.up(client, keys)
                client.set(keys.schema_version(), step.version)
                done.append(f"up {step.version}: {step.description}")
    else:
        for step in sorted(migrations, key=lambda m: -m.version):
            if goal < step.version <= current:
                if step.down is None:
                    raise SchemaMismatchError(f"Redis migration {step.version} cannot be undone")
                step.down(client, keys)
                client.set(keys.schema_version(), step.version - 1)
                done.append(f"down {step.version}: {step.description}")
    return done


def check_redis(
    client: redis.Redis, keys: RedisKeys, migrations: Sequence[RedisMigration] = REDIS_MIGRATIONS
) -> None:
    version = redis_version(client, keys)
    if version is not None and version != latest(migrations):
        raise SchemaMismatchError(
            f"Redis documents are at version {version}; this release knows {latest(migrations)}"
            + (": run `community migrate`" if version < latest(migrations) else "")
        )


def current_graph_version(settings: object) -> int | None:
    """The graph's recorded version (for backup manifests)."""
    from infra.neo4j_store import GraphStore

    graph = GraphStore.from_settings(settings)  # type: ignore[arg-type]
    try:
        return graph_version(graph.driver, graph.database)
    finally:
        graph.close()
