"""The Dagster code location: assets, checks, jobs, schedules and resources.

Built by a `@definitions` function so settings (schedule time and zone) are read
when the code location loads, not when this module is imported.
"""

from __future__ import annotations

import dagster as dg

from assets import identity, imports
from infra.settings import Settings, get_settings
from resources.stores import ExportsResource, Neo4jResource, RedisResource

ASSET_MODULES = [imports, identity]

refresh_all = dg.define_asset_job(
    "refresh_all",
    selection=dg.AssetSelection.all(),
    description="Materializes every asset: imports, graph load and figures.",
)


def build_definitions(settings: Settings) -> dg.Definitions:
    nightly = dg.ScheduleDefinition(
        name="nightly_refresh",
        job=refresh_all,
        cron_schedule=settings.nightly_cron,
        execution_timezone=settings.schedule_timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    return dg.Definitions(
        assets=dg.load_assets_from_modules(ASSET_MODULES),
        asset_checks=dg.load_asset_checks_from_modules(ASSET_MODULES),
        jobs=[refresh_all],
        schedules=[nightly],
        resources={
            "neo4j": Neo4jResource(),
            "redis": RedisResource(),
            "exports": ExportsResource(),
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(get_settings())
