"""Faults injected into real services: Neo4j killed in the middle of a graph load."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from infra.backup import graph_digest
from infra.neo4j_server import Neo4jLocal
from infra.neo4j_store import GraphStore
from infra.processes import pid_alive
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.integration.test_slice import run_refresh

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


def test_sync_through_every_platform_fault_loses_and_duplicates_nothing() -> None:
    """429s, 5xx, a truncated page and a repeated page in one sync of every
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
            fail_first=1,
            error_rate=0.1,
            malformed_page=1,
            malformed_kind="truncated",
            malformed_times=1,
            repeat_page=0,
        )
        with luma_client(server, max_attempts=10, timeout_seconds=2.0) as client:
            for ev in world.luma_events:
                eid = str(ev["api_id"])
                listing = client.get_guests(eid)
                got = [guest_id(r) for r in listing.records]
                assert not listing.broken
                assert got == [guest_id(g) for g in world.luma_guests[eid]]
                assert len(set(got)) == len(got)
        statuses = fake.state.stats.statuses
        assert statuses.get(429, 0) == 2 and sum(n for c, n in statuses.items() if c >= 500) >= 1
        assert client.stats.repeated_pages >= 1 and client.stats.retries >= 2
    finally:
        server.stop()
