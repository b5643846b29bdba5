"""Fixtures shared by the members and corrections API tests: the sample people resolved
into the test graph, the app as `create_app` builds it, and tokens per role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.auth_helpers import auth_headers, dev_settings
from tests.integration.test_identity_graph import load, run_identity


@pytest.fixture()
def api(graph: GraphStore, figures: FigureStore, services: Settings) -> Iterator[TestClient]:
    load(graph)
    run_identity(services)
    with TestClient(create_app(dev_settings(services))) as client:
        yield client


@pytest.fixture()
def organizer(services: Settings) -> dict[str, str]:
    return auth_headers(dev_settings(services), role="organizer", user_id="org_1")


@pytest.fixture()
def viewer(services: Settings) -> dict[str, str]:
    return auth_headers(dev_settings(services), role="viewer")
