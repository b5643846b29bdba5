"""Shared fixtures. Integration tests use the real Neo4j and Redis of the test profile.

The test profile's addresses are defaults: exported values win (so several checkouts
can run side by side). Tests only ever wipe a database carrying the test marker, placed
on an empty database, or on one this checkout's test profile started itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import PROJECT_ROOT, TEST_PROFILE_ENV, Settings, get_settings

for _key, _value in TEST_PROFILE_ENV.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


def _owned_by_test_profile(managed: bool, settings: Settings) -> bool:
    test_state = (PROJECT_ROOT / TEST_PROFILE_ENV["STATE_DIR"]).resolve()
    return managed and settings.state_path.resolve() == test_state


@pytest.fixture(scope="session")
def services(settings: Settings) -> Settings:
    """Fails (never skips) when the services are down or are not the tests' own."""
    from devtools.services import RedisLocal
    from infra.neo4j_server import Neo4jLocal

    for svc in (Neo4jLocal(settings), RedisLocal(settings)):
        state, _, detail = svc.probe()
        if state != "up":
            pytest.fail(
                f"{type(svc).__name__} is {state} at its test address ({detail}); "
                "start the test services with `./run test` or `community services up` "
                "under the test profile."
            )
    graph = GraphStore.from_settings(settings)
    figures = FigureStore.from_settings(settings)
    try:
        owned = {
            "neo4j": _owned_by_test_profile(Neo4jLocal(settings).status().managed, settings),
            "redis": _owned_by_test_profile(RedisLocal(settings).status().managed, settings),
        }
        marked = {
            "neo4j": graph.mark_test_instance(owned=owned["neo4j"]),
            "redis": figures.mark_test_instance(owned=owned["redis"]),
        }
    finally:
        graph.close()
        figures.r.close()
    for name, ok in marked.items():
        if not ok:
            pytest.fail(
                f"{name} at {settings.neo4j_uri if name == 'neo4j' else settings.redis_url} "
                "holds data and has no test marker: refusing to run tests that would wipe it. "
                "Point the test settings at the test profile's own services."
            )
    return settings


@pytest.fixture()
def graph(services: Settings) -> Iterator[GraphStore]:
    """An emptied test database."""
    store = GraphStore.from_settings(services)
    store.delete_all()
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture()
def figures(services: Settings) -> Iterator[FigureStore]:
    store = FigureStore.from_settings(services)
    store.flush_test_db()
    yield store
    store.r.close()
