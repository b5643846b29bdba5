"""The production Dagster instance (deploy/dagster.yaml) on a real PostgreSQL started by
`community services up`: storage, run queue limits, retries, and the run sensors that
feed /health and the alert hook."""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
import psycopg2
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from devtools.services import PostgresLocal
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import PROJECT_ROOT, Settings
from orchestration.operations import record_run_failure, record_run_success, record_success
from tests.auth_helpers import dev_settings


@pytest.fixture()
def instance(
    services: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """An instance from the production dagster.yaml, on a database of its own."""
    pg = PostgresLocal(services)
    state, _, detail = pg.probe()
    if state != "up":
        pytest.fail(f"PostgreSQL is {state} ({detail}); start it with `community services up`")
    db = f"dagster_test_{uuid.uuid4().hex[:8]}"
    admin = pg._connect(services.postgres_db)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db}"')
    for key, value in {
        "POSTGRES_HOST": services.postgres_host,
        "POSTGRES_PORT": str(services.postgres_port),
        "POSTGRES_USER": services.postgres_user,
        "POSTGRES_PASSWORD": services.postgres_password.get_secret_value(),
        "POSTGRES_DB": db,
    }.items():
        monkeypatch.setenv(key, value)
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    inst = dg.DagsterInstance.from_config(str(tmp_path))
    yield inst
    inst.dispose()
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
    admin.close()


@dg.op
def fine() -> int:
    return 1


@dg.op
def broken() -> None:
    raise ConnectionError("the graph went away")


@dg.job(name="refresh_all", tags={"neo4j_writer": "graph"})
def small_refresh() -> None:
    fine()


@dg.job(name="analytics_snapshots")
def failing() -> None:
    broken()


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_runs_live_in_postgres_and_feed_health(
    instance: dg.DagsterInstance,
    graph: GraphStore,
    figures: FigureStore,
    services: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kinds = {
        type(instance.run_storage).__name__,
        type(instance.event_log_storage).__name__,
        type(instance.schedule_storage).__name__,
    }
    assert kinds == {"PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"}
    coordinator = instance.run_coordinator
    assert type(coordinator).__name__ == "QueuedRunCoordinator"
    limits = {x["key"]: x for x in coordinator.get_run_queue_config().tag_concurrency_limits}
    assert limits["neo4j_writer"]["limit"] == 1 and limits["community/job"]["limit"] == 1
    assert instance.run_retries_enabled and instance.run_monitoring_enabled

    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    _Hook.received.clear()
    try:
        ok = small_refresh.execute_in_process(instance=instance)
        bad = failing.execute_in_process(instance=instance, raise_on_error=False)
        assert ok.success and not bad.success
        # Both runs are rows in PostgreSQL, not SQLite files.
        conn = psycopg2.connect(
            host=services.postgres_host,
            port=services.postgres_port,
            user=services.postgres_user,
            password=services.postgres_password.get_secret_value(),
            dbname=os.environ["POSTGRES_DB"],
        )
        with conn, conn.cursor() as cur:
            cur.execute("SELECT run_id, status FROM runs")
            stored = dict(cur.fetchall())
        conn.close()
        assert stored == {ok.run_id: "SUCCESS", bad.run_id: "FAILURE"}

        # The sensors, evaluated against the stored runs.
        for result, sensor, kind in (
            (ok, record_run_success, dg.DagsterEventType.RUN_SUCCESS),
            (bad, record_run_failure, dg.DagsterEventType.RUN_FAILURE),
        ):
            run = instance.get_run_by_id(result.run_id)
            assert run is not None
            event = instance.all_logs(result.run_id, of_type=kind)[-1].dagster_event
            assert event is not None
            context = dg.build_run_status_sensor_context(
                sensor_name=sensor.name,
                dagster_instance=instance,
                dagster_run=run,
                dagster_event=event,
            )
            sensor(
                context.for_run_failure() if kind == dg.DagsterEventType.RUN_FAILURE else context
            )
    finally:
        server.shutdown()

    assert [h["job"] for h in _Hook.received] == ["analytics_snapshots"]
    assert _Hook.received[0]["run_id"] == bad.run_id
    record_success(services, "refresh_all", ok.run_id, {"luma_api", "partiful_exports", "x"})
    api = dev_settings(services).model_copy(
        update={"metrics_token": SecretStr("scrape-secret-0123456789")}
    )
    with TestClient(create_app(api)) as client:
        body = client.get("/health").json()
        metrics = client.get(
            "/metrics", headers={"Authorization": "Bearer scrape-secret-0123456789"}
        ).text
    lines = {
        ln.split(" ")[0]: float(ln.split(" ")[1]) for ln in metrics.splitlines() if ln[:1] != "#"
    }
    assert lines["community_members"] == 0
    assert lines["community_open_merge_suggestions"] == 0
    assert 0 <= lines['community_job_last_success_age_seconds{job="refresh_all"}'] < 60
    assert lines['community_job_failing{job="analytics_snapshots"}'] == 1
    assert {k for k in lines if k.startswith("community_source_last_sync_age")} == {
        'community_source_last_sync_age_seconds{source="luma"}',
        'community_source_last_sync_age_seconds{source="partiful"}',
    }
    pipeline = body["pipeline"]
    assert pipeline["known"] and not pipeline["stale"]
    assert pipeline["last_success"]["run_id"] == ok.run_id
    assert 0 <= pipeline["last_success"]["age_seconds"] < 60
    assert [(f["job"], f["run_id"]) for f in pipeline["last_failures"]] == [
        ("analytics_snapshots", bad.run_id)
    ]
    # No message text (it could hold personal data): the error's class only.
    assert "graph went away" not in json.dumps(pipeline)
