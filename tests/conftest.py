"""Shared fixtures. Integration tests use the real Neo4j and Redis of the test profile."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import TEST_PROFILE_ENV, Settings, get_settings

for _key, _value in TEST_PROFILE_ENV.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def services(settings: Settings) -> Settings:
    """Fails (never skips) when the services are down: `./run test` starts them."""
    from infra.local_services import Neo4jLocal, RedisLocal

    for svc in (Neo4jLocal(settings), RedisLocal(settings)):
        state, _, detail = svc.probe()
        if state != "up":
            pytest.fail(
                f"{type(svc).__name__} is {state} at its test address ({detail}); "
                "start the test services with `./run test` or `community services up` "
                "under the test profile."
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
    store.r.flushdb()
    yield store
    store.r.close()
