"""The Dagster code location: assets, checks, jobs, schedules and resources.

Built by a `@definitions` function so settings (schedule time and zone) are read
when the code location loads, not when this module is imported.

Loading it stays cheap (`bench/import_time.py`, `tests/unit/test_import_cost.py`): the
Neo4j driver (which imports pandas), networkx, scipy and the TDA libraries are imported
by the functions that use them, so neither the UI nor a run pays for them before a step
needs them.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from assets import analytics, identity, imports
from assets.analytics import SNAPSHOT_KEY, build_snapshot_asset
from assets.imports import api_assets, import_partitions
from infra.settings import Settings, get_settings
from orchestration.executors import IN_PROCESS, STEP_PROCESSES
from orchestration.operations import (
    backup_job,
    backup_schedule,
    job_tags,
    record_run_failure,
    record_run_success,
)
from orchestration.sensors import analytics_refresh, stale_member_metrics
from resources.stores import (
    ExportsResource,
    LandingResource,
    Neo4jResource,
    PlatformsResource,
    RedisResource,
)

ASSET_MODULES = [imports, identity, analytics]

refresh_all = dg.define_asset_job(
    "refresh_all",
    # Monthly analytics snapshots have their own partitions; they are backfilled apart.
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(SNAPSHOT_KEY),
    description="Materializes every asset: imports, graph load and figures.",
    tags=job_tags("refresh_all", 2),
    executor_def=STEP_PROCESSES,
)

analytics_snapshots = dg.define_asset_job(
    "analytics_snapshots",
    selection=dg.AssetSelection.assets(SNAPSHOT_KEY),
    description="One month's co-attendance snapshot, topology and structural change.",
    tags=job_tags("analytics_snapshots", 2),
    executor_def=IN_PROCESS,
)


def partition_range_tags(
    partitions: dg.DailyPartitionsDefinition, start: date, end: date
) -> dict[str, str]:
    """Run tags that make one run materialize every daily partition in [start, end]."""
    keys = partitions.get_partition_keys()
    lo = max(start.isoformat(), keys[0])
    hi = min(end.isoformat(), keys[-1])
    return {
        "dagster/asset_partition_range_start": lo,
        "dagster/asset_partition_range_end": max(lo, hi),
    }


def refresh_tags(settings: Settings) -> dict[str, str]:
    """Every partition from the first import day to the last look-ahead day (the demo)."""
    partitions = import_partitions(settings)
    keys = partitions.get_partition_keys()
    return partition_range_tags(
        partitions, date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])
    )


def build_definitions(settings: Settings) -> dg.Definitions:
    """The code location for these settings: the one way settings reach definitions.

    Schedules and partitions take their area of `settings`; the resources get theirs
    (the landing folder, the platform area without its secrets) and read the rest when a
    run starts.
    """
    partitions = import_partitions(settings)

    @dg.schedule(
        name="nightly_refresh",
        job=refresh_all,
        cron_schedule=settings.schedules.nightly_cron,
        execution_timezone=settings.schedules.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """Incremental API sync over the days whose guest lists can still change."""
        day = context.scheduled_execution_time.date()
        start = day - timedelta(days=settings.schedules.nightly_window_days)
        end = day + timedelta(days=settings.platforms.imports_lookahead_days)
        return dg.RunRequest(tags=partition_range_tags(partitions, start, end))

    @dg.schedule(
        name="monthly_snapshot",
        job=analytics_snapshots,
        cron_schedule=settings.schedules.snapshot_cron,
        execution_timezone=settings.schedules.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def monthly(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        """Month to date after each nightly refresh; on the 1st, the month just ended too."""
        day = context.scheduled_execution_time.date()
        months = [day.replace(day=1)]
        if day.day == 1:
            months.insert(0, (day - timedelta(days=1)).replace(day=1))
        return [
            dg.RunRequest(run_key=f"{m.isoformat()}@{day.isoformat()}", partition_key=m.isoformat())
            for m in months
        ]

    return dg.Definitions(
        assets=[
            *dg.load_assets_from_modules(ASSET_MODULES),
            *api_assets(settings),
            build_snapshot_asset(settings.analytics.partitions_start),
        ],
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[refresh_all, analytics_snapshots, analytics_refresh, backup_job],
        schedules=[nightly, monthly, backup_schedule(settings)],
        sensors=[stale_member_metrics, record_run_failure, record_run_success],
        resources={
            "neo4j": Neo4jResource(),
            "redis": RedisResource(),
            "exports": ExportsResource(),
            "landing": LandingResource(data_dir=str(settings.data_path)),
            "platforms": PlatformsResource.from_settings(settings),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(get_settings())


def job_for_run(name: str) -> dg.JobDefinition:
    """A job of the code location, rebuilt from the environment's settings in each process
    of a run launched from Python (`community demo`; see `dg.build_reconstructable_job`)."""
    return build_definitions(get_settings()).resolve_job_def(name)
