"""Versioned migrations against the real graph and Redis: apply, roll back, and refuse to
start against a schema this release does not know."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.migrations import (
    GRAPH_MIGRATIONS,
    REDIS_MIGRATIONS,
    Migration,
    SchemaMismatchError,
    check_graph,
    check_graph_known,
    graph_version,
    latest,
    migrate_graph,
    migrate_redis,
    redis_version,
)
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.auth_helpers import dev_settings

RENAME = Migration(
    latest(GRAPH_MIGRATIONS) + 1,
    "Event.city becomes Event.place",
    up=(
        "MATCH (e:Event) WHERE e.city IS NOT NULL "
        "CALL (e) { SET e.place = e.city REMOVE e.city } IN TRANSACTIONS OF 1000 ROWS",
    ),
    down=(
        "MATCH (e:Event) WHERE e.place IS NOT NULL "
        "CALL (e) { SET e.city = e.place REMOVE e.place } IN TRANSACTIONS OF 1000 ROWS",
    ),
)
NEXT = (*GRAPH_MIGRATIONS, RENAME)


def test_migrate_roll_back_and_refuse_unknown_versions(
    graph: GraphStore, figures: FigureStore, services: Settings
) -> None:
    assert graph_version(graph.driver, graph.database) == latest(GRAPH_MIGRATIONS)
    graph.run("CREATE (:Event {event_id: 'e1', city: 'Berlin'})")

    # A newer release's migration: applied in order, recorded.
    done = migrate_graph(graph.driver, graph.database, migrations=NEXT)
    assert done == [f"up {RENAME.version}: {RENAME.description}"]
    assert graph.run("MATCH (e:Event) RETURN e.place AS p, e.city AS c") == [
        {"p": "Berlin", "c": None}
    ]
    # This release does not know that version: the API and the code location refuse it.
    with pytest.raises(SchemaMismatchError, match="knows up to"):
        check_graph(graph.driver, graph.database)
    with pytest.raises(SchemaMismatchError):
        check_graph_known(graph.driver, graph.database)
    with pytest.raises(SchemaMismatchError), TestClient(create_app(dev_settings(services))):
        pass
    with pytest.raises(SchemaMismatchError, match="knows up to"):
        graph.ensure_schema()

    # Roll back: the down steps restore the old shape and version; the API starts again.
    migrate_graph(graph.driver, graph.database, target=latest(GRAPH_MIGRATIONS), migrations=NEXT)
    assert graph.run("MATCH (e:Event) RETURN e.place AS p, e.city AS c") == [
        {"p": None, "c": "Berlin"}
    ]
    with TestClient(create_app(dev_settings(services))) as client:
        assert client.get("/health").status_code == 200
    # The first migration cannot be undone: a rollback past it is refused.
    with pytest.raises(SchemaMismatchError, match="restore the backup"):
        migrate_graph(graph.driver, graph.database, target=0)

    # A graph with data but no recorded version (before migrations existed) must be migrated.
    graph.run("MATCH (v:SchemaVersion) DELETE v")
    with pytest.raises(SchemaMismatchError, match="community migrate"):
        graph.ensure_schema()
    migrate_graph(graph.driver, graph.database)
    graph.ensure_schema()

    # Redis documents: versioned the same way.
    assert migrate_redis(figures.r, figures.keys)
    assert redis_version(figures.r, figures.keys) == latest(REDIS_MIGRATIONS)
    figures.r.set(figures.keys.schema_version(), 99)
    with pytest.raises(SchemaMismatchError), TestClient(create_app(dev_settings(services))):
        pass


def test_the_demo_migrates_a_graph_an_older_release_left(
    graph: GraphStore, figures: FigureStore, services: Settings
) -> None:
    from cli.main import _migrate_local_stores

    # An older local graph: data, but no version recorded (before migrations existed).
    graph.run("MATCH (v:SchemaVersion) DETACH DELETE v")
    graph.run("CREATE (:Event {event_id: 'e1'})")
    with pytest.raises(SchemaMismatchError, match="no schema version"):
        check_graph(graph.driver, graph.database)

    _migrate_local_stores(services)

    assert graph_version(graph.driver, graph.database) == latest(GRAPH_MIGRATIONS)
    assert redis_version(figures.r, figures.keys) == latest(REDIS_MIGRATIONS)
    check_graph(graph.driver, graph.database)  # the pipeline now accepts it
    assert graph.run("MATCH (e:Event) RETURN e.event_id AS id") == [{"id": "e1"}]
