"""Community analytics assets: network metrics and persistent homology of the member graph.

`community_analytics` works on the whole history (decayed to today), writes per-member
metrics back to Neo4j and the community summary, communities and layout to Redis.
`analytics_snapshot` is one month per partition (backfill history from
`analytics_partitions_start`); each snapshot is compared with the month before it
(structural change), which is why every partition depends on the previous one.

The partitioned asset needs its start month from the settings; reading settings at
import is not allowed, so `build_snapshot_asset` is called by the code location's
`build_definitions(settings)`. The current month is a partition too (month to date).
"""

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    MonthlyPartitionsDefinition,
    TimeWindowPartitionMapping,
    asset,
)

from domain.network.coattendance import CoAttendanceGraph, build_graph
from domain.network.community import communities_report
from domain.network.layout import compute_layout
from domain.network.metrics import NetworkMetrics, compute_metrics
from domain.network.plots import betti_png, diagrams_png, graph_png, markdown_image
from domain.network.temporal import (
    active_months,
    activity_by_month,
    cohort_retention,
    month_from_index,
    month_index,
    month_key,
)
from domain.topology.report import TopologyReport, analyse_topology, change_between
from infra.analytics_store import AnalyticsStore, metrics_config, tda_config, weight_config
from infra.bounded import run_bounded
from infra.settings import get_settings
from resources.stores import Neo4jResource, RedisResource

UPSTREAM = AssetKey("member_graph")
SNAPSHOT_KEY = "analytics_snapshot"


def _headline(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("members", "edges", "events", "density", "components", "communities", "modularity")
    return {k: summary[k] for k in keys}


def _topology_metadata(report: TopologyReport) -> dict[str, Any]:
    data = report.data
    curves = [d["betti_curve"] for d in data["dimensions"]]
    return {
        "tda_status": data["label"],
        "tda_seconds": data["seconds"],
        "tda_points": data["points"],
        "tda_bounds_hit": MetadataValue.json(data["bounds_hit"]),
        "diagrams": MetadataValue.md(markdown_image(diagrams_png(report.diagrams), "diagrams")),
        "betti_curves": MetadataValue.md(markdown_image(betti_png(data["grid"], curves), "betti")),
        "reading": MetadataValue.md("\n".join(f"- {line}" for line in data["reading"])),
    }


def _topology_checks(
    asset_key: str, g: CoAttendanceGraph, report: TopologyReport
) -> list[AssetCheckResult]:
    data = report.data
    h0 = len(report.diagrams[0]) if report.diagrams else 0
    expect = data["members_in_cloud"] > 0
    return [
        AssetCheckResult(
            asset_key=asset_key,
            check_name="diagrams_non_empty",
            passed=(h0 > 0) if expect else True,
            metadata={"h0_features": h0, "members_in_cloud": data["members_in_cloud"]},
        ),
        AssetCheckResult(
            asset_key=asset_key,
            check_name="tda_within_bounds",
            # A reduced result is valid and labelled; the warning makes the bound visible.
            passed=bool(data["complete"]),
            severity=AssetCheckSeverity.WARN,
            metadata={
                "status": data["status"],
                "label": data["label"],
                "bounds_hit": MetadataValue.json(data["bounds_hit"]),
                "timed_out": any("timeout" in b for b in data["bounds_hit"]),
                "memory_capped": any("memory" in b for b in data["bounds_hit"]),
            },
            description=None if data["complete"] else "a bound was hit: " + data["label"],
        ),
    ]


def _activity(
    rows: list[Any], last_month: str, lapse_months: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    active = active_months(rows)
    if not active:
        return [], []
    first = month_from_index(min(min(v) for v in active.values()))
    if month_index(first) > month_index(last_month):
        return [], []
    per_month = [a.as_dict() for a in activity_by_month(active, first, last_month, lapse_months)]
    return per_month, cohort_retention(active, last_month)


@asset(
    group_name="analytics",
    compute_kind="igraph",
    deps=[UPSTREAM],
    check_specs=[
        AssetCheckSpec("metrics_cover_members", asset="community_analytics"),
        AssetCheckSpec("diagrams_non_empty", asset="community_analytics"),
        AssetCheckSpec("tda_within_bounds", asset="community_analytics"),
    ],
)
def community_analytics(
    context: AssetExecutionContext, neo4j: Neo4jResource, redis: RedisResource
) -> MaterializeResult:
    """Network metrics and topology of the whole member graph; metrics back on each Member."""
    settings = get_settings()
    now = datetime.now(UTC)
    stamp = f"{now.isoformat()}#{context.run.run_id}"
    figures = redis.figures()
    with neo4j.store() as graph_store:
        store = AnalyticsStore(graph_store, figures)
        rows = store.read_attendance(end=now)
        g = build_graph(rows, end=now, cfg=weight_config(settings), members=store.member_ids())
        metrics: NetworkMetrics = compute_metrics(g, metrics_config(settings))
        store.write_member_metrics(metrics.member_rows(g), stamp)
        store.replace_co_attendance(g)
        members, covered = store.metrics_coverage(stamp)
        review = store.review_load()
    report = analyse_topology(g, tda_config(settings), run_bounded)
    activity, cohorts = _activity(rows, month_key(now), settings.analytics_lapse_months)
    summary = {
        **metrics.summary(g),
        "computed_at": now.isoformat(),
        "weights": {
            "checkin": settings.analytics_checkin_weight,
            "rsvp": settings.analytics_rsvp_weight,
            "monthly_decay": settings.analytics_monthly_decay,
        },
        "activity": activity,
        "cohorts": cohorts,
        "topology": report.data,
        "identity_review": review,
    }
    layout = compute_layout(
        g, metrics, max_nodes=settings.analytics_layout_max_nodes, seed=settings.analytics_seed
    )
    store.put_community(
        summary,
        communities_report(g, metrics),
        layout,
        {
            "computed_at": now.isoformat(),
            "run_id": context.run.run_id,
            "tda_status": report.data["label"],
        },
    )
    context.log.info(
        "community analytics: %s members, %s edges; %s", g.n, g.m, report.data["label"]
    )
    checks = [
        AssetCheckResult(
            asset_key="community_analytics",
            check_name="metrics_cover_members",
            passed=covered == members,
            metadata={"members": members, "with_metrics": covered},
        ),
        *_topology_checks("community_analytics", g, report),
    ]
    return MaterializeResult(
        metadata={
            **_headline(summary),
            "betweenness": f"{metrics.betweenness.method} (±{metrics.betweenness.error:.3f} at 95 %)",
            "engine": metrics.engine,
            "timings_s": MetadataValue.json({k: round(v, 4) for k, v in metrics.timings.items()}),
            "graph": MetadataValue.md(markdown_image(graph_png(layout), "co-attendance graph")),
            **_topology_metadata(report),
        },
        check_results=checks,
    )


def month_window(partition_key: str) -> tuple[datetime, datetime, str]:
    start = datetime.fromisoformat(partition_key).replace(tzinfo=UTC)
    nxt = month_from_index(month_index(month_key(start)) + 1)
    end = datetime.fromisoformat(f"{nxt}-01").replace(tzinfo=UTC)
    return start, end, month_key(start)


@lru_cache(maxsize=4)
def build_snapshot_asset(start_date: str) -> AssetsDefinition:
    partitions = MonthlyPartitionsDefinition(start_date=start_date, end_offset=1)

    @asset(
        name=SNAPSHOT_KEY,
        group_name="analytics",
        compute_kind="ripser",
        partitions_def=partitions,
        deps=[
            UPSTREAM,
            AssetDep(
                SNAPSHOT_KEY,
                partition_mapping=TimeWindowPartitionMapping(start_offset=-1, end_offset=-1),
            ),
        ],
        check_specs=[
            AssetCheckSpec("diagrams_non_empty", asset=SNAPSHOT_KEY),
            AssetCheckSpec("tda_within_bounds", asset=SNAPSHOT_KEY),
        ],
    )
    def analytics_snapshot(
        context: AssetExecutionContext, neo4j: Neo4jResource, redis: RedisResource
    ) -> MaterializeResult:
        """One month of the community: its co-attendance graph, metrics, topology and change."""
        settings = get_settings()
        start, end, month = month_window(context.partition_key)
        figures = redis.figures()
        with neo4j.store() as graph_store:
            store = AnalyticsStore(graph_store, figures)
            rows = store.read_attendance(end=end)
        g = build_graph(rows, start=start, end=end, cfg=weight_config(settings))
        metrics = compute_metrics(g, metrics_config(settings))
        report = analyse_topology(g, tda_config(settings), run_bounded)
        activity, cohorts = _activity(rows, month, settings.analytics_lapse_months)
        previous_month = month_from_index(month_index(month) - 1)
        previous = store.snapshot(previous_month)
        change = change_between(previous.get("topology") if previous else None, report.data)
        if change is not None:
            report.data["reading"] = [*report.data["reading"], *_change_reading(change)]
        network = metrics.summary(g)
        snapshot = {
            "month": month,
            "window": {"start": start.isoformat(), "end": end.isoformat()},
            "computed_at": datetime.now(UTC).isoformat(),
            "network": network,
            "activity": next((a for a in activity if a["month"] == month), None),
            "cohorts": cohorts,
            "topology": report.data,
            "structural_change": change,
            "compared_with": previous_month if change is not None else None,
        }
        store.put_snapshot(month, snapshot)
        return MaterializeResult(
            metadata={
                "month": month,
                **_headline(network),
                "structural_change": None if change is None else round(change["score"], 4),
                "compared_with": previous_month if change is not None else "none stored",
                **_topology_metadata(report),
            },
            check_results=_topology_checks(SNAPSHOT_KEY, g, report),
        )

    return analytics_snapshot


def _change_reading(change: dict[str, Any]) -> list[str]:
    score = change["score"]
    comps = change["components"]
    return [
        f"Structural change from last month: {score:.2f} (largest bottleneck distance); "
        + ("the shape barely moved." if score < 0.5 else "the shape changed noticeably."),
        f"Separate groups went from {comps['previous']} to {comps['current']}.",
    ]
