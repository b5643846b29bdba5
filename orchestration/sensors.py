"""Sensors: analytics follow organizer corrections instead of waiting for the night.

A correction flags the members it changed (`metrics_stale`); this sensor requests one
analytics run per new flag, so the figures the API shows as stale are soon fresh again.
"""

from __future__ import annotations

import dagster as dg

from orchestration.executors import IN_PROCESS
from orchestration.operations import job_tags
from resources.stores import Neo4jResource

ANALYTICS_KEY = dg.AssetKey("community_analytics")
STALE_CHECK_SECONDS = 60

analytics_refresh = dg.define_asset_job(
    "analytics_refresh",
    selection=dg.AssetSelection.assets(ANALYTICS_KEY),
    description="Network metrics and topology again, after corrections changed members.",
    tags=job_tags("analytics_refresh", 2),  # a Neo4j writer: queued with the others
    executor_def=IN_PROCESS,  # one step: a process of its own would isolate nothing
)


@dg.sensor(
    name="stale_member_metrics",
    job=analytics_refresh,
    minimum_interval_seconds=STALE_CHECK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def stale_member_metrics(
    context: dg.SensorEvaluationContext, neo4j: Neo4jResource
) -> dg.RunRequest | dg.SkipReason:
    """One run per latest stale flag (its time is the run key): retries never pile up."""
    from infra.identity_store import IdentityStore

    with neo4j.store() as graph:
        count, since = IdentityStore(graph).stale_metrics()
    if count == 0 or since is None:
        return dg.SkipReason("no member waits for fresh figures")
    return dg.RunRequest(run_key=f"stale@{since}", tags={"reason": "corrections"})
