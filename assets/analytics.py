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

from domain.network.coattendance import CoAttendanceGraph
from domain.network.plots import betti_png, diagrams_png, graph_png, markdown_image
from domain.topology.report import TopologyReport
from infra.analytics_store import AnalyticsStore
from resources.stores import Neo4jResource, RedisResource
from services.analytics import CommunityRefresh, refresh_community, refresh_snapshot

UPSTREAM = AssetKey("member_graph")
SNAPSHOT_KEY = "analytics_snapshot"


def _headline(summary: dict[str, Any]) -> dict[str, Any]:
    keys = ("members", "edges", "events", "density", "components", "communities", "modularity")
    return {key: summary[key] for key in keys}


def _topology_metadata(report: TopologyReport) -> dict[str, Any]:
    data = report.data
    curves = [entry["betti_curve"] for entry in data["dimensions"]]
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
    asset_key: str, graph: CoAttendanceGraph, report: TopologyReport
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
                "timed_out": any("timeout" in batch for batch in data["bounds_hit"]),
                "memory_capped": any("memory" in batch for batch in data["bounds_hit"]),
            },
            description=None if data["complete"] else "a bound was hit: " + data["label"],
        ),
    ]


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
    with neo4j.store() as graph_store:
        store = AnalyticsStore(graph_store, redis.figures())
        done = refresh_community(store, neo4j.settings(), context.run.run_id)
    context.log.info(
        "community analytics: %s members, %s edges; %s",
        done.graph.n,
        done.graph.m,
        done.topology.data["label"],
    )
    return community_result(done)


def community_result(done: CommunityRefresh) -> MaterializeResult:
    metrics, report = done.metrics, done.topology
    checks = [
        AssetCheckResult(
            asset_key="community_analytics",
            check_name="metrics_cover_members",
            passed=done.with_metrics == done.members,
            metadata={"members": done.members, "with_metrics": done.with_metrics},
        ),
        *_topology_checks("community_analytics", done.graph, report),
    ]
    graph_md = markdown_image(graph_png(done.layout), "co-attendance graph")
    return MaterializeResult(
        metadata={
            **_headline(done.summary),
            "betweenness": f"{metrics.betweenness.method} (±{metrics.betweenness.error:.3f} at 95 %)",
            "engine": metrics.engine,
            "timings_s": MetadataValue.json(
                {key: round(value, 4) for key, value in metrics.timings.items()}
            ),
            "graph": MetadataValue.md(graph_md),
            **_topology_metadata(report),
        },
        check_results=checks,
    )


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
        with neo4j.store() as graph_store:
            store = AnalyticsStore(graph_store, redis.figures())
            done = refresh_snapshot(store, neo4j.settings(), context.partition_key)
        change = done.snapshot["structural_change"]
        network = done.snapshot["network"]
        compared = (
            f"no snapshot of {done.previous_month} to compare with"
            if change is None
            else f"structural change from {done.previous_month}: {change['score']:.3f}"
        )
        context.log.info(
            "analytics snapshot %s: %s members, %s edges; %s",
            done.month,
            network["members"],
            network["edges"],
            compared,
        )
        return MaterializeResult(
            metadata={
                "month": done.month,
                **_headline(done.snapshot["network"]),
                "structural_change": None if change is None else round(change["score"], 4),
                "compared_with": done.previous_month if change is not None else "none stored",
                **_topology_metadata(done.topology),
            },
            check_results=_topology_checks(SNAPSHOT_KEY, done.graph, done.topology),
        )

    return analytics_snapshot
