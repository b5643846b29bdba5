"""Analytics refresh: network metrics and topology of the member graph.

`refresh_community` works on the whole history (decayed to `now`): per-member metrics
back to Neo4j, the summary, communities and layout to Redis. `refresh_snapshot` is one
calendar month, compared with the month before it (structural change). The Dagster
assets call these and turn the results into metadata and checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.network.coattendance import CoAttendanceGraph, build_graph
from domain.network.community import communities_report
from domain.network.layout import compute_layout
from domain.network.metrics import NetworkMetrics, compute_metrics
from domain.network.temporal import (
    active_months,
    activity_by_month,
    cohort_retention,
    month_from_index,
    month_index,
    month_key,
)
from domain.topology.report import TopologyReport, analyse_topology, change_between
from infra.analytics_store import AnalyticsStore
from infra.bounded import run_bounded
from infra.settings import Settings


@dataclass
class CommunityRefresh:
    """What one refresh of the whole community computed and stored."""

    graph: CoAttendanceGraph
    metrics: NetworkMetrics
    topology: TopologyReport
    summary: dict[str, Any]
    layout: dict[str, Any]
    members: int  # members in the graph
    with_metrics: int  # of them, those whose figures this refresh wrote


@dataclass
class SnapshotRefresh:
    """One month's snapshot as stored, with what the checks and metadata need."""

    month: str
    graph: CoAttendanceGraph
    topology: TopologyReport
    snapshot: dict[str, Any]
    previous_month: str


def activity(
    rows: list[Any], last_month: str, lapse_months: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Active, new and lapsed members per month up to `last_month`, and cohort retention."""
    active = active_months(rows)
    if not active:
        return [], []
    first = month_from_index(min(min(value) for value in active.values()))
    if month_index(first) > month_index(last_month):
        return [], []
    per_month = [
        left.as_dict() for left in activity_by_month(active, first, last_month, lapse_months)
    ]
    return per_month, cohort_retention(active, last_month)


def refresh_community(
    store: AnalyticsStore, settings: Settings, run_id: str, now: datetime | None = None
) -> CommunityRefresh:
    """Metrics of every member (stamped with this run), then topology, summary and layout."""
    now = now or datetime.now(UTC)
    stamp = f"{now.isoformat()}#{run_id}"
    rows = store.read_attendance(end=now)
    graph = build_graph(
        rows, end=now, cfg=settings.analytics.weight_config(), members=store.member_ids()
    )
    metrics = compute_metrics(graph, settings.analytics.metrics_config())
    store.write_member_metrics(metrics.member_rows(graph), stamp)
    store.replace_co_attendance(graph)
    members, covered = store.metrics_coverage(stamp)
    topology = analyse_topology(graph, settings.tda.to_config(), run_bounded)
    summary = _community_summary(store, settings, rows, graph, metrics, topology, now)
    layout = compute_layout(
        graph,
        metrics,
        max_nodes=settings.analytics_layout_max_nodes,
        seed=settings.analytics_seed,
    )
    store.put_community(
        summary,
        communities_report(graph, metrics),
        layout,
        {"computed_at": now.isoformat(), "run_id": run_id, "tda_status": topology.data["label"]},
    )
    return CommunityRefresh(graph, metrics, topology, summary, layout, members, covered)


def _community_summary(
    store: AnalyticsStore,
    settings: Settings,
    rows: list[Any],
    graph: CoAttendanceGraph,
    metrics: NetworkMetrics,
    topology: TopologyReport,
    now: datetime,
) -> dict[str, Any]:
    per_month, cohorts = activity(rows, month_key(now), settings.analytics_lapse_months)
    return {
        **metrics.summary(graph),
        "computed_at": now.isoformat(),
        "weights": {
            "checkin": settings.analytics_checkin_weight,
            "rsvp": settings.analytics_rsvp_weight,
            "monthly_decay": settings.analytics_monthly_decay,
        },
        "activity": per_month,
        "cohorts": cohorts,
        "topology": topology.data,
        "identity_review": store.review_load(),
    }


def month_window(partition_key: str) -> tuple[datetime, datetime, str]:
    """[start, end) of the month a partition key (its first day) names, and its key."""
    start = datetime.fromisoformat(partition_key).replace(tzinfo=UTC)
    nxt = month_from_index(month_index(month_key(start)) + 1)
    end = datetime.fromisoformat(f"{nxt}-01").replace(tzinfo=UTC)
    return start, end, month_key(start)


def refresh_snapshot(
    store: AnalyticsStore, settings: Settings, partition_key: str
) -> SnapshotRefresh:
    """One month's co-attendance graph, metrics, topology and change from the month before."""
    start, end, month = month_window(partition_key)
    rows = store.read_attendance(end=end)
    graph = build_graph(rows, start=start, end=end, cfg=settings.analytics.weight_config())
    metrics = compute_metrics(graph, settings.analytics.metrics_config())
    topology = analyse_topology(graph, settings.tda.to_config(), run_bounded)
    per_month, cohorts = activity(rows, month, settings.analytics_lapse_months)
    previous_month = month_from_index(month_index(month) - 1)
    previous = store.snapshot(previous_month)
    change = change_between(previous.get("topology") if previous else None, topology.data)
    if change is not None:
        topology.data["reading"] = [*topology.data["reading"], *change_reading(change)]
    snapshot = {
        "month": month,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "computed_at": datetime.now(UTC).isoformat(),
        "network": metrics.summary(graph),
        "activity": next((left for left in per_month if left["month"] == month), None),
        "cohorts": cohorts,
        "topology": topology.data,
        "structural_change": change,
        "compared_with": previous_month if change is not None else None,
    }
    store.put_snapshot(month, snapshot)
    return SnapshotRefresh(month, graph, topology, snapshot, previous_month)


def change_reading(change: dict[str, Any]) -> list[str]:
    score = change["score"]
    comps = change["components"]
    return [
        f"Structural change from last month: {score:.2f} (largest bottleneck distance); "
        + ("the shape barely moved." if score < 0.5 else "the shape changed noticeably."),
        f"Separate groups went from {comps['previous']} to {comps['current']}.",
    ]
