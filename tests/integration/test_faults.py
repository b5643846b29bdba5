"""Faults injected into real services: Neo4j killed in the middle of a graph load, Redis
stopped under the API and under the pipeline (with its own launcher, on the test profile's
port), and a platform sync through every kind of failure at once."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from assets import analytics
from assets.imports import import_partitions
from devtools.services import RedisLocal
from infra.backup import graph_digest
from infra.neo4j_server import Neo4jLocal
from infra.neo4j_store import GraphStore
from infra.processes import pid_alive
from infra.redis_store import FigureStore
from infra.settings import Settings
from orchestration.definitions import build_definitions, partition_range_tags
from resources.stores import Neo4jResource, RedisResource
from tests.auth_helpers import auth_headers, dev_settings
from tests.integration.test_analytics import materialize
from tests.integration.test_identity_graph import run_identity
from tests.integration.test_slice import API_ASSETS, IMPORT_CHAIN, run_refresh, start_fakes

# Each load stamps what it writes with a fresh id; everything else must be equal.
VOLATILE = frozenset({"import_stamp"})


def test_neo4j_killed_mid_load_then_retried_run_gives_the_same_graph(
    graph: GraphStore,
    figures: FigureStore,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = Neo4jLocal(settings)
    pid = pid_alive(local.pid_file)
    assert pid is not None, "the test profile's Neo4j must have been started by this checkout"
    # One row per transaction, so the load lasts long enough to be interrupted.
    monkeypatch.setenv("NEO4J_WRITE_BATCH_SIZE", "1")

    assert run_refresh(settings, data_dir=tmp_path / "undisturbed").success
    undisturbed = graph_digest(graph.driver, graph.database, VOLATILE)
    counts = figures.event_guest_counts()
    assert undisturbed["labels"]["Identity"] > 0

    graph.delete_all()
    graph.ensure_schema()
    figures.flush_test_db()
    killed = threading.Event()

    def kill_when_loading() -> None:
        watcher = GraphStore.from_settings(settings)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                n = watcher.run("MATCH (i:Identity) RETURN count(i) AS n")[0]["n"]
                if n > 0:
                    os.kill(pid, signal.SIGKILL)
                    killed.set()
                    return
                time.sleep(0.02)
        finally:
            watcher.close()

    thread = threading.Thread(target=kill_when_loading)
    thread.start()
    try:
        try:
            interrupted_ok = run_refresh(settings, data_dir=tmp_path / "disturbed").success
        except Exception:  # the step's error surfaces from the in-process run
            interrupted_ok = False
    finally:
        thread.join()
        # Restart it (the killed process may linger as a zombie: ask the server, not the pid).
        if local.probe(timeout=2.0)[0] != "up":
            local.pid_file.unlink(missing_ok=True)
            local.up(log=lambda _: None)
    assert killed.is_set()
    assert not interrupted_ok
    partial = graph_digest(graph.driver, graph.database, VOLATILE)
    assert partial["content_hash"] != undisturbed["content_hash"]  # the load was cut short

    # The retry (a new run of the same job over the same store) completes the graph.
    monkeypatch.setenv("NEO4J_WRITE_BATCH_SIZE", "5000")
    retried = run_refresh(settings, data_dir=tmp_path / "disturbed")
    assert retried.success
    assert graph_digest(graph.driver, graph.database, VOLATILE) == undisturbed
    assert figures.event_guest_counts() == counts


@pytest.fixture()
def redis_local(services: Settings) -> Iterator[RedisLocal]:
    """The test profile's own Redis, started again whatever the test did to it."""
    local = RedisLocal(services)
    assert pid_alive(local.pid_file) is not None, "the test profile's Redis must be ours"
    yield local
    if local.probe()[0] != "up":
        local.pid_file.unlink(missing_ok=True)
        local.up(log=lambda _: None)


def _stop(local: RedisLocal) -> None:
    assert local.down()
    assert local.probe()[0] == "down"


def test_api_serves_reads_while_redis_is_stopped_and_resumes_when_it_returns(
    graph: GraphStore, figures: FigureStore, services: Settings, redis_local: RedisLocal
) -> None:
    """Without Redis: reads answer 200 (uncached, unlimited), the analytics document last
    served comes from process memory, /health says degraded. Back: caching, rate limiting
    and /health recover without a restart."""
    assert run_refresh(services).success
    run_identity(services)
    assert materialize([analytics.community_analytics]).success
    cfg = dev_settings(services, rate_limit_per_minute=30, redis_retry_seconds=1.0)
    with TestClient(create_app(cfg)) as c:
        c.headers.update(auth_headers(cfg))
        assert c.get("/health").json()["status"] == "ok"
        summary = c.get("/v1/analytics/summary")
        assert summary.status_code == 200, summary.text
        events = c.get("/v1/events", params={"limit": 5})
        assert events.headers["x-cache"] == "miss" and "x-ratelimit-limit" in events.headers

        _stop(redis_local)
        health = c.get("/health").json()
        assert health["status"] == "degraded"
        assert health["dependencies"]["redis"]["status"] == "down"
        for _ in range(40):  # past the per-minute limit: the limiter fails open
            for path, params in (
                ("/v1/events", {"limit": 5}),
                ("/v1/members", {"limit": 5}),
                ("/v1/analytics/summary", {}),
            ):
                resp = c.get(path, params=params)
                assert resp.status_code == 200, (path, resp.status_code, resp.text)
                assert "x-ratelimit-limit" not in resp.headers
        assert c.get("/v1/analytics/summary").json() == summary.json()
        assert c.get("/v1/events", params={"limit": 5}).json() == events.json()

        redis_local.up(log=lambda _: None)
        assert c.get("/health").json()["status"] == "ok"
        time.sleep(1.1)  # past REDIS_RETRY_SECONDS: the API tries Redis again
        first = c.get("/v1/members", params={"limit": 3})
        assert first.status_code == 200 and "x-ratelimit-limit" in first.headers
        assert c.get("/v1/members", params={"limit": 3}).headers["x-cache"] == "hit"
        statuses = [c.get("/v1/events", params={"limit": 5}).status_code for _ in range(40)]
        assert 429 in statuses  # the per-user limit applies again
        assert set(statuses) <= {200, 429}


def test_pipeline_with_redis_stopped_completes_the_graph_and_a_rerun_publishes(
    graph: GraphStore,
    figures: FigureStore,
    services: Settings,
    redis_local: RedisLocal,
    tmp_path: Path,
) -> None:
    """Redis away for a run: imports, the graph load and identity resolution complete;
    the steps that publish to Redis fail with the connection error (the run fails, and is
    retried by the job's run retries); once Redis is back a rerun publishes the figures."""
    apis = start_fakes()
    try:
        assert run_refresh(services, apis=apis, data_dir=tmp_path / "undisturbed").success
        undisturbed = graph_digest(graph.driver, graph.database, VOLATILE)
        counts = figures.event_guest_counts()
        assert counts
        graph.delete_all()
        graph.ensure_schema()
        figures.flush_test_db()

        _stop(redis_local)
        data = tmp_path / "disturbed"
        run_settings = apis.settings(services.model_copy(update={"data_dir": data}))
        job = build_definitions(run_settings).resolve_job_def("refresh_all")
        cfg = apis.world.config
        end = date.fromordinal(cfg.start.toordinal() + cfg.days - 1)
        result = job.execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            tags=partition_range_tags(import_partitions(run_settings), cfg.start, end),
            asset_selection=[dg.AssetKey(n) for n in (*IMPORT_CHAIN, *API_ASSETS)],
            raise_on_error=False,
        )
        assert not result.success
        failed = {e.step_key for e in result.all_events if e.is_step_failure}
        assert failed == {"event_guest_counts"}
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        assert "ConnectionError" in str(failure.event_specific_data)
        done = {
            e.asset_key.path[-1] for e in result.get_asset_materialization_events() if e.asset_key
        }
        # The API syncs run without their cursors (the whole window), the graph loads.
        assert {"luma_api", "eventbrite_api", "normalized_imports", "imported_graph"} <= done
        assert graph_digest(graph.driver, graph.database, VOLATILE) == undisturbed
        run_identity(services)  # the member graph needs only Neo4j
        members = graph.run("MATCH (m:Member) RETURN count(m) AS n")[0]["n"]
        assert members > 0
        stopped = dg.materialize(
            [analytics.community_analytics],
            resources={"neo4j": Neo4jResource(), "redis": RedisResource()},
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
        assert not stopped.success
        (failure,) = [e for e in stopped.all_events if e.is_step_failure]
        assert "ConnectionError" in str(failure.event_specific_data)

        redis_local.up(log=lambda _: None)
        assert run_refresh(services, apis=apis, data_dir=data).success
        assert figures.event_guest_counts() == counts
        assert materialize([analytics.community_analytics]).success
        assert figures.r.exists(figures.keys.community_summary())
    finally:
        apis.luma_server.stop()
        apis.eventbrite_server.stop()


def test_sync_through_every_platform_fault_loses_and_duplicates_nothing() -> None:
    """429s, 5xx, timeouts, a truncated page and a repeated page in one sync of every
    guest list: the records are exactly the platform's, each once."""
    from fakes.data import build_world
    from fakes.luma import LumaFake
    from ingest.connectors.luma import guest_id
    from tests.integration.ingest.test_connectors import WORLD, luma_client

    world = build_world(WORLD)
    fake = LumaFake(world)
    server = fake.serve()
    try:
        fake.state.set_faults(
            throttle_first=2,
            retry_after=0.05,
            stall_first=2,
            stall_seconds=3.0,
            fail_first=1,
            error_rate=0.1,
            malformed_page=1,
            malformed_kind="truncated",
            malformed_times=1,
            repeat_page=0,
        )
        with luma_client(server, max_attempts=10, timeout_seconds=1.0) as client:
            for ev in world.luma_events:
                eid = str(ev["api_id"])
                listing = client.get_guests(eid)
                got = [guest_id(r) for r in listing.records]
                assert not listing.broken
                assert got == [guest_id(g) for g in world.luma_guests[eid]]
                assert len(set(got)) == len(got)
        statuses = fake.state.stats.statuses
        assert statuses.get(429, 0) == 2 and sum(n for c, n in statuses.items() if c >= 500) >= 1
        assert fake.state.stats.stalled == 2  # two requests timed out on the client side
        assert client.stats.repeated_pages >= 1 and client.stats.retries >= 2 + 2 + 1
    finally:
        server.stop()
