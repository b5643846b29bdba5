"""The API's edge against the real services: size limits, one error shape, OpenAPI error
documentation, security headers, CORS and health figures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.auth_helpers import auth_headers, dev_settings


@pytest.fixture()
def app(services: Settings, figures: FigureStore) -> FastAPI:
    app = create_app(dev_settings(services))

    async def boom() -> None:
        raise RuntimeError("secret driver text: bolt://user:pw@db")

    app.add_api_route("/v1/boom", boom, include_in_schema=False)
    return app


@pytest.fixture()
def client(app: FastAPI, services: Settings) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def _viewer(services: Settings) -> dict[str, str]:
    return auth_headers(dev_settings(services), role="viewer")


def _organizer(services: Settings) -> dict[str, str]:
    return auth_headers(dev_settings(services), role="organizer")


def test_unexpected_errors_are_json_with_the_request_id(
    client: TestClient, services: Settings
) -> None:
    resp = client.get("/v1/boom", headers={**_viewer(services), "X-Request-ID": "req-123"})
    assert resp.status_code == 500
    assert resp.json() == {
        "error": "internal_error",
        "message": "an unexpected error occurred",
        "request_id": "req-123",
    }
    assert resp.headers["x-request-id"] == "req-123"
    assert "bolt" not in resp.text
    # A request id that is not a plain token is replaced, not echoed.
    odd = client.get("/v1/boom", headers={**_viewer(services), "X-Request-ID": "<script>"})
    assert odd.json()["request_id"] != "<script>" and len(odd.json()["request_id"]) == 32


@pytest.mark.parametrize(
    "params",
    [
        {"offset": 2**63 - 1},
        {"offset": 2**63},
        {"offset": 100_001},
        {"limit": 501},
        {"offset": -1},
    ],
)
@pytest.mark.parametrize(
    "path",
    ["/v1/events", "/v1/members", "/v1/analytics/members", "/v1/analytics/connectors"],
)
def test_paging_is_bounded(
    client: TestClient, services: Settings, path: str, params: dict[str, int]
) -> None:
    resp = client.get(path, params=params, headers=_viewer(services))
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == "invalid_request" and body["details"] and body["request_id"]


def test_size_limits_answer_before_any_work(client: TestClient, services: Settings) -> None:
    viewer = _viewer(services)
    assert client.get("/v1/members/" + "m" * 201, headers=viewer).status_code == 422
    long_query = client.get("/v1/members", params={"q": "x" * 3000}, headers=viewer)
    assert long_query.status_code == 414 and long_query.json()["error"] == "query_too_long"
    big_headers = client.get("/v1/events", headers={**viewer, "X-Junk": "y" * 9000})
    assert big_headers.status_code == 431
    body = {"kind": "must_link", "observation_id": "a", "other_observation_id": "b" * 70000}
    big = client.post("/v1/identity-decisions", json=body, headers=_organizer(services))
    assert big.status_code == 413 and big.json()["error"] == "body_too_large"
    # Authentication comes before any body work: no token, a broken body -> 401, not 422.
    anon = client.post(
        "/v1/identity-decisions",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert anon.status_code == 401

    # Streamed without a length, the body is cut off at the limit too.
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"x" * 1024

    streamed = client.post(
        "/v1/identity-decisions",
        content=chunks(),
        headers={**_organizer(services), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    too_many = {"observation_ids": [f"luma:{i}" for i in range(1001)]}
    capped = client.post("/v1/members/m/unmerge", json=too_many, headers=_organizer(services))
    assert capped.status_code == 422


def test_openapi_documents_the_error_shape_everywhere(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "ErrorBody" in spec["components"]["schemas"]
    operations = [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]
    assert len(operations) >= 19
    for path, method, op in operations:
        for code in ("401", "403", "422", "429", "500", "503"):
            ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorBody"), (path, method, code)
        if path == "/metrics":
            continue  # Prometheus text
        ok = next(c for c in op["responses"] if c.startswith("2"))
        schema = op["responses"][ok]["content"]["application/json"]["schema"]
        assert schema != {} and schema != {"type": "object"}, (path, method)


def test_security_headers_cors_and_health_figures(client: TestClient, services: Settings) -> None:
    resp = client.get(
        "/v1/events", headers={**_viewer(services), "Origin": "http://localhost:3000"}
    )
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    assert resp.headers["access-control-allow-origin"] == "http://localhost:3000"
    evil = client.get("/v1/events", headers={**_viewer(services), "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers
    pre = client.options(
        "/v1/events",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert pre.status_code == 200
    for _ in range(200):  # some work for the CPU figure
        client.get("/v1/events", headers=_viewer(services))
    health = client.get("/health").json()
    proc = health["process"]
    assert proc["memory_rss_mb"] > 10 and proc["threads"] >= 1 and proc["cpu_percent"] > 0
    assert proc["responses_sampled"] >= 2 and proc["response_ms_p50"] > 0
    assert proc["response_ms_p99"] >= proc["response_ms_p50"]
