"""The analytics routes over what the pipeline stored in Neo4j and Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.analytics import router
from assets import analytics
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.auth_helpers import auth_headers, dev_settings
from tests.integration.test_analytics import MEMBERS, materialize, seed


def app_with_analytics(settings: Settings) -> FastAPI:
    app = create_app(settings)
    paths = {getattr(r, "path", "") for r in app.routes}
    if "/v1/analytics/summary" not in paths:  # until the app includes the router itself
        app.include_router(router)
    return app


@pytest.fixture()
def api_settings(services: Settings) -> Settings:
    return dev_settings(services, cache_ttl_seconds=0)


@pytest.fixture()
def client(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(app_with_analytics(api_settings)) as c:
        c.headers.update(auth_headers(api_settings))
        yield c


@pytest.fixture()
def computed(graph: GraphStore, figures: FigureStore) -> None:
    seed(graph)
    assert materialize([analytics.community_analytics]).success
    snap = analytics.build_snapshot_asset("2026-01-01")
    for month in ("2026-01-01", "2026-02-01"):
        assert materialize([snap], partition=month).success


def test_not_computed_yet_is_a_clear_404(
    graph: GraphStore, figures: FigureStore, client: TestClient
) -> None:
    for path in ("/v1/analytics/summary", "/v1/analytics/communities", "/v1/analytics/layout"):
        resp = client.get(path)
        assert resp.status_code == 404, path
        assert resp.json()["error"] == "not_computed"
    assert client.get("/v1/analytics/snapshots").json() == {
        "items": [],
        "total": 0,
        "limit": 24,
        "offset": 0,
    }


def test_requires_a_token(api_settings: Settings) -> None:
    with TestClient(app_with_analytics(api_settings)) as anonymous:
        assert anonymous.get("/v1/analytics/summary").status_code == 401


def test_summary_members_connectors_communities_layout(computed: None, client: TestClient) -> None:
    summary = client.get("/v1/analytics/summary").json()
    assert summary["members"] == len(MEMBERS)
    assert summary["identity_review"] == {
        "open_suggestions": 0,
        "members": len(MEMBERS),
        "open_suggestions_per_100_members": 0.0,
    }
    assert "diagrams" not in summary["topology"] and summary["topology"]["reading"]
    detailed = client.get("/v1/analytics/summary", params={"topology_detail": True}).json()
    assert len(detailed["topology"]["diagrams"]) == detailed["topology"]["max_dimension"] + 1

    hub = client.get("/v1/analytics/members/hub")
    assert hub.status_code == 200 and hub.json()["metrics"]["is_articulation"] is True
    missing = client.get("/v1/analytics/members/nobody")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"

    top = client.get("/v1/analytics/members", params={"sort": "betweenness", "limit": 3}).json()
    assert top["items"][0]["member_id"] == "hub" and len(top["items"]) == 3
    bad = client.get("/v1/analytics/members", params={"sort": "shoe_size", "limit": 0})
    assert bad.status_code == 422

    conn = client.get("/v1/analytics/connectors").json()
    assert conn["items"][0]["member_id"] == "hub" and conn["total"] >= 1
    comm = client.get("/v1/analytics/communities").json()
    assert comm["total"] >= 2 and comm["modularity"] > 0
    lay = client.get("/v1/analytics/layout").json()
    assert {n["id"] for n in lay["nodes"]} == set(MEMBERS)


def test_snapshots_and_month_validation(computed: None, client: TestClient) -> None:
    listed = client.get("/v1/analytics/snapshots").json()
    assert [i["month"] for i in listed["items"]] == ["2026-01", "2026-02"]
    assert listed["items"][0]["structural_change"] is None
    assert listed["items"][1]["compared_with"] == "2026-01"
    assert listed["total"] == 2
    # Paged: only the months asked for are loaded.
    page = client.get("/v1/analytics/snapshots", params={"limit": 1, "offset": 1}).json()
    assert [i["month"] for i in page["items"]] == ["2026-02"] and page["total"] == 2
    feb = client.get("/v1/analytics/snapshots/2026-02").json()
    assert feb["structural_change"]["per_dimension"]["H0"]["bottleneck"] >= 0
    assert feb["topology"]["diagrams"]
    slim = client.get("/v1/analytics/snapshots/2026-02", params={"diagrams": False}).json()
    assert "diagrams" not in slim["topology"]
    assert client.get("/v1/analytics/snapshots/2025-12").status_code == 404
    assert client.get("/v1/analytics/snapshots/2026-13").status_code == 422
    assert client.get("/v1/analytics/snapshots/feb").status_code == 422
