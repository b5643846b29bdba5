"""Analytics end to end: a seeded member graph in Neo4j -> Dagster assets -> Neo4j and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pytest

from assets import analytics
from infra.analytics_store import AnalyticsStore
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from resources.stores import Neo4jResource, RedisResource

# Two friend groups (a*, b*) that meet only through "hub"; "lurker" never attended.
GROUP_A = ["a1", "a2", "a3", "a4"]
GROUP_B = ["b1", "b2", "b3", "b4"]
EVENTS = {
    "ev:jan-a": (datetime(2026, 1, 10, 18, tzinfo=UTC), [*GROUP_A, "hub"]),
    "ev:jan-b": (datetime(2026, 1, 20, 18, tzinfo=UTC), GROUP_B),
    "ev:feb-a": (datetime(2026, 2, 12, 18, tzinfo=UTC), GROUP_A[:3]),
    "ev:feb-b": (datetime(2026, 2, 15, 18, tzinfo=UTC), [*GROUP_B, "hub"]),
    "ev:mar-a": (datetime(2026, 3, 5, 18, tzinfo=UTC), [*GROUP_A, "new1"]),
}
MEMBERS = [*GROUP_A, *GROUP_B, "hub", "new1", "lurker"]


def seed(graph: GraphStore) -> None:
    graph.run(
        "UNWIND $rows AS r MERGE (m:Member {member_id: r.id}) SET m.display_name = r.name",
        rows=[{"id": m, "name": m.upper()} for m in MEMBERS],
    )
    events = [{"id": e, "at": at} for e, (at, _) in EVENTS.items()]
    graph.run(
        "UNWIND $rows AS r MERGE (e:Event {event_id: r.id}) SET e.starts_at = r.at", rows=events
    )
    rows: list[dict[str, Any]] = []
    for event, (at, guests) in EVENTS.items():
        for i, member in enumerate(guests):
            rows.append(
                {
                    "obs": f"{event}:{member}",
                    "member": member,
                    "event": event,
                    # Every third guest only RSVP'd; the rest checked in.
                    "status": "going" if i % 3 == 2 else "attended",
                    "checked_in_at": None if i % 3 == 2 else at,
                    "registered_at": at,
                }
            )
    rows.append(
        {"obs": "ev:jan-a:declined", "member": "lurker", "event": "ev:jan-a", "status": "declined",
         "checked_in_at": None, "registered_at": datetime(2026, 1, 1, tzinfo=UTC)}
    )  # fmt: skip
    graph.run(
        """
        UNWIND $rows AS r
        MATCH (m:Member {member_id: r.member}), (e:Event {event_id: r.event})
        MERGE (i:Identity {observation_id: r.obs})
        MERGE (m)-[:HAS_IDENTITY]->(i)
        MERGE (i)-[a:ATTENDED]->(e)
        SET a.status = r.status, a.role = 'guest', a.checked_in_at = r.checked_in_at,
            a.registered_at = r.registered_at
        """,
        rows=rows,
    )


@pytest.fixture()
def seeded(graph: GraphStore, figures: FigureStore) -> Iterator[AnalyticsStore]:
    seed(graph)
    yield AnalyticsStore(graph, figures)


def materialize(assets: list[Any], partition: str | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        partition_key=partition,
        resources={"neo4j": Neo4jResource(), "redis": RedisResource()},
        instance=dg.DagsterInstance.ephemeral(),
    )


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_attendance_is_read_through_identities(seeded: AnalyticsStore) -> None:
    rows = seeded.read_attendance()
    assert len(rows) == sum(len(g) for _, g in EVENTS.values()) + 1
    hub = [r for r in rows if r.member_id == "hub"]
    assert {r.event_id for r in hub} == {"ev:jan-a", "ev:feb-b"}
    assert all(r.starts_at.tzinfo is not None for r in rows)
    assert len(seeded.read_attendance(end=datetime(2026, 2, 1, tzinfo=UTC))) == 10


def test_community_analytics_writes_members_and_summaries(seeded: AnalyticsStore) -> None:
    result = materialize([analytics.community_analytics])
    assert result.success
    evaluations = checks(result)
    assert evaluations["metrics_cover_members"].passed
    assert evaluations["diagrams_non_empty"].passed
    assert evaluations["tda_within_bounds"].passed

    hub = seeded.member_metrics("hub")
    assert hub is not None and hub["display_name"] == "HUB"
    assert hub["metrics"]["is_articulation"] is True
    everyone = [seeded.member_metrics(m) for m in MEMBERS]
    assert all(m is not None and m["metrics"]["pagerank"] is not None for m in everyone)
    top = max(everyone, key=lambda m: m["metrics"]["betweenness"])  # type: ignore[index]
    assert top is not None and top["member_id"] == "hub"
    lurker = seeded.member_metrics("lurker")
    assert lurker is not None and lurker["metrics"]["degree"] == 0  # declined: not there

    summary = seeded.community_summary()
    assert summary is not None
    assert summary["members"] == len(MEMBERS) and summary["isolated_members"] == 1
    assert summary["components"] == 2  # everyone who attended, plus the lurker alone
    assert summary["topology"]["complete"] and summary["topology"]["reading"]
    assert summary["topology"]["dimensions"][0]["essential"] == 1
    months = {a["month"]: a for a in summary["activity"]}
    assert months["2026-03"]["new"] == 1  # new1
    connectors, total = seeded.connectors(0, 10)
    assert total >= 1 and connectors[0]["member_id"] == "hub"
    communities = seeded.communities()
    assert communities and sum(c["size"] for c in communities) == len(MEMBERS)
    layout = seeded.layout()
    assert layout and {n["id"] for n in layout["nodes"]} == set(MEMBERS)
    co = seeded.graph.run("MATCH (:Member)-[r:CO_ATTENDED]->(:Member) RETURN count(r) AS n")[0]["n"]
    assert co == summary["edges"] > 0
    meta = result.asset_materializations_for_node("community_analytics")[0].metadata
    assert "data:image/png;base64," in meta["graph"].value  # type: ignore[operator]
    assert "data:image/png;base64," in meta["diagrams"].value  # type: ignore[operator]

    again = materialize([analytics.community_analytics])  # a rerun replaces, never duplicates
    assert again.success
    co2 = seeded.graph.run("MATCH (:Member)-[r:CO_ATTENDED]->(:Member) RETURN count(r) AS n")[0][
        "n"
    ]
    assert co2 == co


def test_monthly_snapshots_backfill_in_order_with_structural_change(
    seeded: AnalyticsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANALYTICS_PARTITIONS_START", "2026-01-01")
    snapshot_asset = analytics.build_snapshot_asset("2026-01-01")
    for month in ("2026-01-01", "2026-02-01", "2026-03-01"):
        assert materialize([snapshot_asset], partition=month).success
    assert seeded.snapshot_months() == ["2026-01", "2026-02", "2026-03"]
    jan, feb = seeded.snapshot("2026-01"), seeded.snapshot("2026-02")
    assert jan is not None and feb is not None
    assert jan["structural_change"] is None
    assert feb["compared_with"] == "2026-01" and feb["structural_change"]["score"] >= 0.0
    # January: two separate groups (a* + hub, b*); February: joined through hub.
    assert jan["topology"]["dimensions"][0]["essential"] == 2
    assert feb["topology"]["dimensions"][0]["essential"] == 2  # a1-a3 and b* + hub
    assert feb["structural_change"]["components"] == {"previous": 2, "current": 2}
    assert jan["network"]["members"] == 9 and feb["network"]["events"] == 2
    assert jan["activity"] == {
        "month": "2026-01",
        "active": 9,
        "new": 9,
        "returning": 0,
        "lapsed": 0,
    }
    mar = seeded.snapshot("2026-03")
    assert mar is not None and mar["activity"]["new"] == 1
    assert seeded.previous_snapshot("2026-03") == feb


def test_time_budget_hit_is_reported_not_fatal(
    seeded: AnalyticsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TDA_COMPUTATION_TIMEOUT", "0.01")
    result = materialize([analytics.community_analytics])
    assert result.success
    bound = checks(result)["tda_within_bounds"]
    assert not bound.passed and bound.severity == dg.AssetCheckSeverity.WARN
    assert bound.metadata["timed_out"].value is True
    summary = seeded.community_summary()
    assert summary is not None and summary["topology"]["status"] == "reduced"
    assert summary["topology"]["dimensions"][0]["features"] > 0  # H0 still there, labelled


def test_definitions_include_analytics(settings: Any) -> None:
    from orchestration.definitions import build_definitions

    defs = build_definitions(settings)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"community_analytics", "analytics_snapshot"} <= keys
    assert defs.resolve_job_def("refresh_all") is not None


def test_monthly_schedule_requests_month_to_date_and_the_month_just_ended(settings: Any) -> None:
    from datetime import UTC, datetime

    import dagster as dg

    from orchestration.definitions import build_definitions

    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("monthly_snapshot")
    assert schedule.cron_schedule == settings.snapshot_cron
    with dg.DagsterInstance.ephemeral() as instance:
        mid = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 11, 30, 5, tzinfo=UTC),
            repository_def=defs.get_repository_def(),
        )
        first = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 12, 1, 5, tzinfo=UTC),
            repository_def=defs.get_repository_def(),
        )
        mid_keys = [r.partition_key for r in schedule.evaluate_tick(mid).run_requests or []]
        first_keys = [r.partition_key for r in schedule.evaluate_tick(first).run_requests or []]
    assert mid_keys == ["2026-11-01"]
    assert first_keys == ["2026-11-01", "2026-12-01"]


def test_demo_snapshot_months_run_from_the_first_import_month(settings: Any) -> None:
    from datetime import date

    from cli.main import snapshot_months

    cfg = settings.model_copy(update={"imports_start_date": "2026-09-15"})
    assert snapshot_months(cfg, today=date(2026, 11, 30)) == [
        "2026-09-01",
        "2026-10-01",
        "2026-11-01",
    ]
