"""The vertical slice end to end: sample export -> Dagster -> Neo4j -> Redis."""

from __future__ import annotations

import dagster as dg

from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from orchestration.definitions import build_definitions


def run_refresh(settings: Settings) -> dg.ExecuteInProcessResult:
    defs = build_definitions(settings)
    job = defs.resolve_job_def("refresh_all")
    return job.execute_in_process(instance=dg.DagsterInstance.ephemeral())


def test_definitions_load_with_schedule(settings: Settings) -> None:
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("nightly_refresh")
    assert schedule.cron_schedule == settings.nightly_cron
    assert schedule.execution_timezone == settings.schedule_timezone
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"luma_exports", "imported_graph", "event_guest_counts"} <= keys


def test_refresh_twice_is_idempotent(
    graph: GraphStore, figures: FigureStore, settings: Settings
) -> None:
    first = run_refresh(settings)
    assert first.success
    counts_once = graph.counts()
    figures_once = figures.event_guest_counts()
    second = run_refresh(settings)
    assert second.success
    assert graph.counts() == counts_once
    assert figures.event_guest_counts() == figures_once
    # 3 events, 17 valid guest records of 20 (3 are quarantined), 17 ATTENDED edges.
    assert counts_once == {"nodes": 20, "relationships": 17}
    assert figures_once == {
        "luma:evt-founders-oct": 6,
        "luma:evt-ai-night-oct": 6,
        "luma:evt-founders-nov": 5,
    }


def test_reconciliation_is_recorded(
    graph: GraphStore, figures: FigureStore, settings: Settings
) -> None:
    result = run_refresh(settings)
    mats = result.asset_materializations_for_node("luma_exports")
    meta = mats[0].metadata
    assert meta["input_records"].value == 20
    assert meta["observations"].value + meta["quarantined"].value == 20
    assert meta["quarantined"].value == 3
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)


def test_attendance_properties_in_graph(
    graph: GraphStore, figures: FigureStore, settings: Settings
) -> None:
    assert run_refresh(settings).success
    rows = graph.run(
        "MATCH (i:Identity {observation_id: 'luma:gst-a1'})-[a:ATTENDED]->(e:Event) "
        "RETURN i.email AS email, a.status AS status, a.raw_status AS raw, e.name AS event"
    )
    assert rows == [
        {
            "email": "bob@gmail.com",
            "status": "attended",
            "raw": "approved",
            "event": "Founders Breakfast — October",
        }
    ]
