"""The API against the real services, and against a Redis that goes away."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.auth_helpers import auth_headers, dev_settings
from tests.integration.test_slice import run_refresh


@pytest.fixture()
def api_settings(services: Settings) -> Settings:
    return dev_settings(services)


@pytest.fixture()
def client(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings)) as c:
        c.headers.update(auth_headers(api_settings))
        yield c


def test_health_reports_both_services(client: TestClient) -> None:
    resp = client.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok"
    assert set(body["dependencies"]) == {"neo4j", "redis"}
    for dep in body["dependencies"].values():
        assert dep["status"] == "up" and dep["latency_ms"] >= 0


def test_events_are_served_from_neo4j(
    graph: GraphStore, figures: FigureStore, settings: Settings, client: TestClient
) -> None:
    assert run_refresh(settings).success
    resp = client.get("/v1/events", params={"limit": 3})
    assert resp.status_code == 200
    body = resp.json()
    # The samples hold 3 Luma, 3 Eventbrite and 3 Partiful events; newest first.
    assert body["total"] == 9 and len(body["items"]) == 3
    assert [i["event_id"] for i in body["items"]] == [
        "partiful:pfFriendsgiving26",
        "eventbrite:1010000000003",
        "luma:evt-founders-nov",
    ]
    # 6 guests each: a record with one unreadable field (email, date) is kept with it empty.
    assert body["items"][1]["guests"] == 6 and body["items"][1]["attended"] == 3
    assert body["items"][2]["guests"] == 6 and body["items"][2]["attended"] == 4
    assert body["items"][2]["starts_at"].startswith("2026-11-12T15:00:00")


def test_bad_paging_is_a_clear_4xx(client: TestClient) -> None:
    resp = client.get("/v1/events", params={"limit": 0, "offset": "x"})
    assert resp.status_code == 422
    fields = {d["field"] for d in resp.json()["details"]}
    assert fields == {"limit", "offset"}


def test_metrics_need_the_metrics_token(api_settings: Settings) -> None:
    cfg = api_settings.model_copy(update={"metrics_token": SecretStr("scrape-secret-0123456789")})
    with TestClient(create_app(cfg)) as c:
        c.get("/health")
        refused = c.get("/metrics")
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        wrong = c.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        text = c.get("/metrics", headers={"Authorization": "Bearer scrape-secret-0123456789"}).text
    assert 'http_requests_total{method="GET",route="/health"' in text
    # No token configured: only direct loopback callers (the test client is not one).
    with TestClient(create_app(api_settings)) as c:
        assert c.get("/metrics").status_code == 403


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_redis_stopping_degrades_health_and_reads_keep_working(
    graph: GraphStore, figures: FigureStore, services: Settings, tmp_path: Path
) -> None:
    port = _free_port()
    binary = shutil.which("redis-server")
    assert binary, "redis-server is installed by ./run"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        settings = dev_settings(services, redis_url=url)
        with TestClient(create_app(settings)) as c:
            c.headers.update(auth_headers(settings))
            assert c.get("/health").json()["status"] == "ok"
            assert c.get("/v1/events").headers["x-cache"] == "miss"
            assert c.get("/v1/events").headers["x-cache"] == "hit"
            proc.terminate()
            proc.wait(timeout=10)
            resp = c.get("/health")
            assert resp.status_code == 200
            body = resp.json()
            assert body["status"] == "degraded"
            assert body["dependencies"]["redis"] == {
                "status": "down",
                "latency_ms": None,
                "error": "unreachable",
            }
            assert body["dependencies"]["neo4j"]["status"] == "up"
            # Reads pass through: no rate limit headers, no cache, no server error.
            for params in ({}, {"limit": 2}, {"offset": 1}):
                read = c.get("/v1/events", params=params)
                assert read.status_code == 200, read.text
                assert "x-ratelimit-limit" not in read.headers
            # Failing closed instead: 503 with Retry-After, never a 500.
            closed = dev_settings(services, redis_url=url, rate_limit_fail_open=False)
        with TestClient(create_app(closed)) as c:
            resp = c.get("/v1/events", headers=auth_headers(closed))
            assert resp.status_code == 503 and resp.headers["retry-after"] == "5"
            assert resp.json()["error"] == "unavailable"
    finally:
        if proc.poll() is None:
            proc.kill()
