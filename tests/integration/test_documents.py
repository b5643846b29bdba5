"""The analytics documents in Redis: written through the store as their models, read back
validated, refused clearly when their version or shape is unknown, and migrated."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api.app import create_app
from infra.analytics_store import AnalyticsStore
from infra.documents import (
    DOCUMENT_VERSION,
    CommunitiesDocument,
    Community,
    CommunitySummary,
    DocumentError,
    Layout,
    LayoutDocument,
    Snapshot,
    SnapshotDocument,
    SummaryDocument,
)
from infra.migrations import REDIS_MIGRATIONS, latest, migrate_redis, redis_version
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.auth_helpers import auth_headers, dev_settings


def example(model: type[BaseModel]) -> dict[str, Any]:
    """The first OpenAPI example of a model (so the examples are checked too)."""
    extra = model.model_config.get("json_schema_extra")
    assert isinstance(extra, dict)
    examples = extra["examples"]
    assert isinstance(examples, list)
    return json.loads(json.dumps(examples[0]))


SUMMARY = example(CommunitySummary)
LAYOUT = example(Layout)
SNAPSHOT = example(Snapshot)
COMMUNITIES = [
    {
        "community": 0,
        "size": 31,
        "internal_edges": 120,
        "density": 0.258,
        "top_members": ["mem_01", "mem_07"],
        "connectors": ["mem_01"],
    },
    {
        "community": 1,
        "size": 2,
        "internal_edges": 1,
        "density": 1.0,
        "top_members": ["mem_02", "mem_03"],
        "connectors": [],
    },
]


@pytest.fixture()
def store(graph: GraphStore, figures: FigureStore) -> AnalyticsStore:
    return AnalyticsStore(graph, figures)


def _stored(figures: FigureStore, key: str) -> Any:
    return json.loads(str(figures.r.get(key)))


def _put_community(store: AnalyticsStore) -> None:
    store.put_community(SUMMARY, COMMUNITIES, LAYOUT, {"run_id": "r1"})


# (name, write, read the model back, expected model, Redis key)
Case = tuple[
    Callable[[AnalyticsStore], None],
    Callable[[AnalyticsStore], BaseModel | None],
    BaseModel,
    Callable[[FigureStore], str],
]
CASES: dict[str, Case] = {
    "summary": (
        _put_community,
        AnalyticsStore.summary_document,
        SummaryDocument.model_validate(SUMMARY),
        lambda f: f.keys.community_summary(),
    ),
    "communities": (
        _put_community,
        AnalyticsStore.communities_document,
        CommunitiesDocument(items=[Community.model_validate(c) for c in COMMUNITIES]),
        lambda f: f.keys.communities(),
    ),
    "layout": (
        _put_community,
        AnalyticsStore.layout_document,
        LayoutDocument.model_validate(LAYOUT),
        lambda f: f.keys.graph_layout(),
    ),
    "snapshot": (
        lambda s: s.put_snapshot("2026-02", SNAPSHOT),
        lambda s: s.snapshot_document("2026-02"),
        SnapshotDocument.model_validate(SNAPSHOT),
        lambda f: f.keys.snapshot("2026-02"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_document_round_trip(name: str, store: AnalyticsStore, figures: FigureStore) -> None:
    write, read, expected, key = CASES[name]
    write(store)
    stored = _stored(figures, key(figures))
    assert stored["schema_version"] == DOCUMENT_VERSION
    got = read(store)
    assert got == expected
    assert got is not None and got.model_dump(mode="json") == stored


@pytest.mark.parametrize("name", list(CASES))
def test_unknown_version_is_refused(name: str, store: AnalyticsStore, figures: FigureStore) -> None:
    write, read, _, key = CASES[name]
    write(store)
    for version in (DOCUMENT_VERSION + 1, None):  # newer release, or written before versions
        value = _stored(figures, key(figures))
        if version is None:
            del value["schema_version"]
        else:
            value["schema_version"] = version
        figures.r.set(key(figures), json.dumps(value))
        with pytest.raises(DocumentError) as refused:
            read(store)
        assert refused.value.reason == "unknown_version"
        assert refused.value.version == version


def test_a_document_of_the_wrong_shape_is_refused_without_its_values(
    store: AnalyticsStore, figures: FigureStore
) -> None:
    _put_community(store)
    key = figures.keys.graph_layout()
    value = _stored(figures, key)
    value["nodes"][0]["x"] = "ada@example.com"
    figures.r.set(key, json.dumps(value))
    with pytest.raises(DocumentError) as refused:
        store.layout()
    assert refused.value.reason == "invalid"
    assert "nodes.0.x (float_parsing)" in str(refused.value)
    assert "ada@example.com" not in str(refused.value)


def test_the_writer_refuses_a_malformed_document_and_keeps_the_old_one(
    store: AnalyticsStore, figures: FigureStore
) -> None:
    _put_community(store)
    before = figures.r.get(figures.keys.community_summary())
    broken = {**SUMMARY, "members": -1}
    with pytest.raises(DocumentError, match="members"):
        store.put_community(broken, COMMUNITIES, LAYOUT, {})
    unknown_field = {**SUMMARY, "shoe_size": 44}
    with pytest.raises(DocumentError, match="shoe_size"):
        store.put_community(unknown_field, COMMUNITIES, LAYOUT, {})
    with pytest.raises(ValueError, match="stored as 2026-03"):
        store.put_snapshot("2026-03", SNAPSHOT)
    assert figures.r.get(figures.keys.community_summary()) == before
    assert store.snapshot_months() == []


def test_the_api_answers_503_for_an_unreadable_document(
    store: AnalyticsStore, figures: FigureStore, services: Settings
) -> None:
    _put_community(store)
    store.put_snapshot("2026-02", SNAPSHOT)
    for key in (figures.keys.community_summary(), figures.keys.snapshot("2026-02")):
        value = _stored(figures, key)
        figures.r.set(key, json.dumps({**value, "schema_version": 7}))
    cfg = dev_settings(services, cache_ttl_seconds=0)
    with TestClient(create_app(cfg)) as client:
        client.headers.update(auth_headers(cfg))
        for path, document in (
            ("/v1/analytics/summary", "community summary"),
            ("/v1/analytics/communities", "community summary"),  # the modularity comes from it
            ("/v1/analytics/snapshots", "snapshot"),
            ("/v1/analytics/snapshots/2026-02", "snapshot"),
        ):
            resp = client.get(path)
            assert resp.status_code == 503, (path, resp.text)
            body = resp.json()
            assert body["error"] == "analytics_unreadable"
            assert f"stored {document} is in a form this release does not read" in body["message"]
            assert "rerun the analytics" in body["message"]
            assert body["request_id"] == resp.headers["x-request-id"]
        # The layout is still readable: one bad document does not take the others down.
        layout = client.get("/v1/analytics/layout")
        assert layout.status_code == 200
        assert layout.json() == LAYOUT


def test_redis_migration_2_versions_documents_written_before_it(
    store: AnalyticsStore, figures: FigureStore
) -> None:
    """Documents as the first release wrote them (no version, communities a bare list)
    read after `community migrate`, and go back to that shape on a rollback."""
    keys = figures.keys
    figures.r.set(keys.community_summary(), json.dumps(SUMMARY))
    figures.r.set(keys.communities(), json.dumps(COMMUNITIES))
    figures.r.set(keys.graph_layout(), json.dumps(LAYOUT))
    figures.r.set(keys.snapshot("2026-02"), json.dumps(SNAPSHOT))
    figures.r.zadd(keys.snapshots_index(), {"2026-02": 202602})
    figures.r.set(keys.schema_version(), 1)
    with pytest.raises(DocumentError):
        store.community_summary()

    done = migrate_redis(figures.r, keys)
    assert done == [f"up 2: {REDIS_MIGRATIONS[1].description}"]
    assert redis_version(figures.r, keys) == latest(REDIS_MIGRATIONS) == 2
    assert store.community_summary() == SummaryDocument.model_validate(SUMMARY).model_dump(
        mode="json", exclude={"schema_version"}
    )
    assert store.communities() == COMMUNITIES
    assert store.layout() == LAYOUT
    snapshot = store.snapshot_document("2026-02")
    assert snapshot is not None and snapshot.compared_with == "2026-01"
    assert migrate_redis(figures.r, keys) == []  # nothing pending

    migrate_redis(figures.r, keys, target=1)
    assert redis_version(figures.r, keys) == 1
    assert _stored(figures, keys.communities()) == COMMUNITIES
    assert _stored(figures, keys.graph_layout()) == LAYOUT
    assert "schema_version" not in _stored(figures, keys.snapshot("2026-02"))

    # Forward again: the rollback is repeatable, and the database is left at this release.
    assert migrate_redis(figures.r, keys) == [f"up 2: {REDIS_MIGRATIONS[1].description}"]
    assert store.communities() == COMMUNITIES
