"""Import assets: platform APIs and export folders into the normalized store, then Neo4j.

- `luma_api`, `eventbrite_api`: daily partitions (a partition is the UTC start day of
  the events it holds), one run per range (single-run backfill policy). Incremental by
  default (cursors in Redis); a backfill, or `full_refresh: true`, refetches the range.
- `luma_exports`, `eventbrite_exports`, `partiful_exports`: unpartitioned. An export
  folder is a snapshot whose files have no trustworthy day of their own, so each
  materialization replaces the source's `exports` entry in the store.
- `normalized_imports`: unpartitioned union of every source and day, read from the store
  through the landing resource (not the IO manager); `imported_graph` loads it into Neo4j.

Every import asset records input, normalized and quarantined counts and checks that they
reconcile, that ids are unique and that statuses are in the shared set.
"""

import warnings
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    Backoff,
    BetaWarning,
    Config,
    DailyPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from assets.metadata import masked_table, md_table
from domain.model import STATUSES
from domain.normalize.batch import NormalizedBatch
from infra.settings import Settings
from ingest.connectors.base import AuthError
from ingest.connectors.cursors import CursorStore
from ingest.connectors.sync import API_SOURCES, SyncReport
from ingest.exports import ExportImport
from resources.stores import (
    ExportsResource,
    LandingResource,
    Neo4jResource,
    PlatformsResource,
    RedisResource,
)
from services.imports import (
    EXPORT_SOURCES,
    NothingToImportError,
    combine,
    import_source,
    load,
    publish_guest_counts,
)
from services.syncs import sync_range

IMPORT_ASSETS = [f"{source}_api" for source in API_SOURCES] + [
    f"{source}_exports" for source in EXPORT_SOURCES
]
CHECKS = ("reconciles", "unique_ids", "statuses_allowed")
RETRY = RetryPolicy(max_retries=2, delay=15, backoff=Backoff.EXPONENTIAL)


def import_partitions(settings: Settings) -> DailyPartitionsDefinition:
    return DailyPartitionsDefinition(
        start_date=settings.imports_start_date,
        end_offset=settings.imports_lookahead_days,
        timezone="UTC",
    )


def field_issue_summary(batch: NormalizedBatch) -> list[dict[str, Any]]:
    """Field issues as counts per (field, reason): raw values stay in the store."""
    if batch.field_issues.height == 0:
        return []
    return (
        batch.field_issues.group_by("field", "reason")
        .len()
        .sort(["len", "field"], descending=[True, False])
        .rename({"len": "records"})
        .to_dicts()
    )


def batch_metadata(batch: NormalizedBatch) -> dict[str, Any]:
    reasons = (
        batch.quarantine.group_by("reason").len().sort("len", descending=True).to_dicts()
        if batch.quarantine.height
        else []
    )
    return {
        "input_records": batch.input_records,
        "events": batch.events.height,
        "observations": batch.observations.height,
        "quarantined": batch.quarantine.height,
        "field_issues": batch.field_issues.height,
        "reconciles": batch.reconciles,
        "quarantine_reasons": MetadataValue.json(reasons),
        "field_issue_reasons": MetadataValue.json(field_issue_summary(batch)),
        "preview": masked_table(batch.observations),
    }


def duplicate_ids(batch: NormalizedBatch) -> list[str]:
    dup = batch.observations.filter(pl.col("observation_id").is_duplicated())
    return sorted(set(dup["observation_id"].to_list()))


def bad_statuses(batch: NormalizedBatch) -> list[str]:
    values = set(batch.attendance["status"].drop_nulls().unique().to_list())
    nulls = batch.attendance["status"].null_count()
    return sorted(values - STATUSES) + (["<null>"] if nulls else [])


def check_results(
    asset_key: str, fetched: NormalizedBatch, stored: Sequence[NormalizedBatch]
) -> list[AssetCheckResult]:
    """Reconciliation on what came in; unique ids and statuses on what is stored."""
    dups = [entry for batch in stored for entry in duplicate_ids(batch)]
    statuses = sorted({entry for batch in stored for entry in bad_statuses(batch)})
    return [
        AssetCheckResult(
            asset_key=asset_key,
            check_name="reconciles",
            passed=fetched.reconciles,
            metadata={
                "input": fetched.input_records,
                "normalized": fetched.observations.height,
                "quarantined": fetched.quarantine.height,
                "field_issues": fetched.field_issues.height,
            },
        ),
        AssetCheckResult(
            asset_key=asset_key,
            check_name="unique_ids",
            passed=not dups,
            metadata={"duplicates": len(dups), "examples": MetadataValue.json(dups[:10])},
        ),
        AssetCheckResult(
            asset_key=asset_key,
            check_name="statuses_allowed",
            passed=not statuses,
            metadata={"unknown_statuses": MetadataValue.json(statuses)},
        ),
    ]


def _specs(name: str) -> list[AssetCheckSpec]:
    return [AssetCheckSpec(check, asset=name) for check in CHECKS]


class ApiSyncConfig(Config):
    full_refresh: bool = False  # refetch everything in the range, ignoring cursors


def day_window(context: AssetExecutionContext) -> tuple[date, date]:
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def run_api_sync(
    context: AssetExecutionContext,
    source: str,
    config: ApiSyncConfig,
    landing: LandingResource,
    redis: RedisResource,
    platforms: PlatformsResource,
) -> MaterializeResult:
    start, end = day_window(context)
    backfill = context.run.tags.get("dagster/backfill") is not None
    full = config.full_refresh or backfill
    settings = platforms.settings()
    store = landing.store()
    figures = redis.figures()
    cursors: CursorStore | None = CursorStore(figures.r, redis.key_layout())
    if not figures.reachable():  # the cursors only save requests: fetch the window in full
        context.log.warning("%s: Redis unreachable; syncing the window without cursors", source)
        cursors = None
    try:
        report = sync_range(source, settings, store, cursors, start, end, full=full)
    except AuthError as exc:
        raise Failure(description=str(exc), allow_retries=False) from exc
    finally:
        figures.r.close()
    for item in report.incomplete:
        context.log.warning(
            "%s: %s incomplete (%s); stored guests kept, fetched again next run",
            source,
            item.event_id,
            item.reason,
        )
    context.log.info(
        "%s %s sync %s..%s: %s in, %s normalized, %s quarantined; %s",
        source,
        report.mode,
        start,
        end,
        report.input_records,
        report.normalized,
        report.quarantined,
        report.stats,
    )
    return api_result(f"{source}_api", report)


PER_DAY_SCHEMA: dict[str, pl.DataType] = {
    "day": pl.String(),
    "events_fetched": pl.Int64(),
    "events_skipped": pl.Int64(),
    "input": pl.Int64(),
    "quarantined": pl.Int64(),
    "stored": pl.Int64(),
}


def per_day_table(report: SyncReport) -> pl.DataFrame:
    """The days a sync touched, with what it fetched and what each day now holds."""
    rows = [
        {
            "day": day.day,
            "events_fetched": day.events_fetched,
            "events_skipped": day.events_skipped,
            "input": day.fetched.input_records,
            "quarantined": day.fetched.quarantine.height,
            "stored": day.stored.observations.height,
        }
        for day in report.days
        if day.events_fetched or day.events_skipped or day.stored.observations.height
    ]
    return pl.DataFrame(rows, schema=PER_DAY_SCHEMA)


def api_result(asset_key: str, report: SyncReport) -> MaterializeResult:
    stored = [day.stored for day in report.days]
    incomplete = [
        {"event_id": item.event_id, "day": item.day, "reason": item.reason}
        for item in report.incomplete
    ]
    meta = batch_metadata(report.fetched)
    meta.update(
        {
            # One run covers the whole range, so every partition shows the run's figures;
            # this table splits them by day.
            "per_day": md_table(per_day_table(report), limit=400),
            "mode": report.mode,
            "days": len(report.days),
            "events_fetched": report.events_fetched,
            "events_skipped": report.events_skipped,
            "stored_observations": sum(batch.observations.height for batch in stored),
            "fetch_id": report.fetch_id,
            "http": MetadataValue.json(report.stats),
            "notes": MetadataValue.json((report.notes + report.fetched.notes)[:50]),
            "incomplete_lists": MetadataValue.json(incomplete),
        }
    )
    checks = check_results(asset_key, report.fetched, stored)
    checks.append(
        AssetCheckResult(
            asset_key=asset_key,
            check_name="lists_complete",
            passed=not report.incomplete,
            metadata={
                "incomplete": len(incomplete),
                "events": MetadataValue.json([item["event_id"] for item in incomplete][:100]),
            },
        )
    )
    return MaterializeResult(metadata=meta, check_results=checks)


def api_assets(settings: Settings) -> list[AssetsDefinition]:
    """The partitioned API assets; built per code location so the start date is a setting."""
    partitions = import_partitions(settings)

    def build(source: str) -> AssetsDefinition:
        name = f"{source}_api"
        # Single-run backfills are deliberate (one sync covers a range of days); dagster
        # marks the parameter beta and would warn on every load of the code location.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BetaWarning)

            @asset(
                name=name,
                group_name="imports",
                compute_kind="api",
                partitions_def=partitions,
                backfill_policy=BackfillPolicy.single_run(),
                retry_policy=RETRY,
                check_specs=[*_specs(name), AssetCheckSpec("lists_complete", asset=name)],
                description=f"{source.title()} API: events starting on each day and their guest "
                "lists, landed raw and normalized into the store (incremental unless backfilled). "
                "A list whose paging failed part-way keeps its stored guests and is fetched again.",
            )
            def _api(
                context: AssetExecutionContext,
                config: ApiSyncConfig,
                landing: LandingResource,
                redis: RedisResource,
                platforms: PlatformsResource,
            ) -> MaterializeResult:
                return run_api_sync(context, source, config, landing, redis, platforms)

        return _api

    return [build(entry) for entry in API_SOURCES]


def _export_asset(source: str) -> AssetsDefinition:
    name = f"{source}_exports"

    @asset(
        name=name,
        group_name="imports",
        compute_kind="polars",
        retry_policy=RETRY,
        check_specs=[*_specs(name), AssetCheckSpec("files_understood", asset=name)],
        description=f"{source.title()} export files (as downloaded, or in {source}/), landed "
        "raw and normalized; unreadable fields are nulled and listed, records that name no "
        "person or event are quarantined with a reason, files not understood are reported.",
    )
    def _exports(
        context: AssetExecutionContext, exports: ExportsResource, landing: LandingResource
    ) -> MaterializeResult:
        try:
            result = import_source(landing.store(), exports.root(), source)
        except NothingToImportError as exc:
            raise Failure(description=str(exc), allow_retries=False) from exc
        _log_export(context, source, result)
        return export_result(name, result)

    return _exports


def _log_export(context: AssetExecutionContext, source: str, result: ExportImport) -> None:
    batch = result.batch
    context.log.info(
        "%s exports: %s files, %s skipped; %s in, %s normalized, %s quarantined, %s field issues",
        source,
        len(result.files),
        len(result.skipped),
        batch.input_records,
        batch.observations.height,
        batch.quarantine.height,
        batch.field_issues.height,
    )
    for skipped in result.skipped:
        context.log.warning("%s exports: skipped %s (%s)", source, skipped.path, skipped.reason)


def export_result(name: str, result: ExportImport) -> MaterializeResult:
    batch = result.batch
    meta = batch_metadata(batch)
    meta["files"] = MetadataValue.json(result.files[:200])
    meta["files_imported"] = len(result.files)
    meta["files_skipped"] = len(result.skipped)
    meta["skipped"] = MetadataValue.json(
        [{"path": entry.path, "reason": entry.reason} for entry in result.skipped[:200]]
    )
    meta["notes"] = MetadataValue.json(batch.notes[:50])
    checks = check_results(name, batch, [batch])
    checks.append(
        AssetCheckResult(
            asset_key=name,
            check_name="files_understood",
            passed=not result.skipped,
            severity=AssetCheckSeverity.WARN,
            metadata={"skipped": len(result.skipped)},
        )
    )
    return MaterializeResult(metadata=meta, check_results=checks)


luma_exports = _export_asset("luma")
eventbrite_exports = _export_asset("eventbrite")
partiful_exports = _export_asset("partiful")


def dangling(batch: NormalizedBatch) -> dict[str, int]:
    obs = batch.observations["observation_id"].to_list()
    events = batch.events["event_id"].to_list()
    att = batch.attendance
    return {
        "attendance_without_identity": att.filter(~pl.col("observation_id").is_in(obs)).height,
        "attendance_without_event": att.filter(~pl.col("event_id").is_in(events)).height,
        "plus_one_of_unknown": att.filter(
            pl.col("plus_one_of").is_not_null() & ~pl.col("plus_one_of").is_in(obs)
        ).height,
    }


@asset(
    group_name="imports",
    compute_kind="polars",
    deps=[AssetKey(key) for key in IMPORT_ASSETS],
    check_specs=[
        AssetCheckSpec("unique_ids", asset="normalized_imports"),
        AssetCheckSpec("statuses_allowed", asset="normalized_imports"),
        AssetCheckSpec("references_resolve", asset="normalized_imports"),
    ],
)
def normalized_imports(
    context: AssetExecutionContext, landing: LandingResource
) -> MaterializeResult:
    """Every source and day of the normalized store in one set of tables (later wins)."""
    batch = combine(landing.store())
    per_source = (
        batch.observations.group_by("source").len().rename({"len": "normalized"})
        if batch.observations.height
        else pl.DataFrame(schema={"source": pl.String, "normalized": pl.UInt32})
    )
    quarantined = (
        batch.quarantine.group_by("source").len().rename({"len": "quarantined"})
        if batch.quarantine.height
        else pl.DataFrame(schema={"source": pl.String, "quarantined": pl.UInt32})
    )
    issues = (
        batch.field_issues.group_by("source").len().rename({"len": "field_issues"})
        if batch.field_issues.height
        else pl.DataFrame(schema={"source": pl.String, "field_issues": pl.UInt32})
    )
    table = (
        per_source.join(quarantined, on="source", how="full", coalesce=True)
        .join(issues, on="source", how="full", coalesce=True)
        .sort("source")
    )
    refs = dangling(batch)
    dups = duplicate_ids(batch)
    statuses = bad_statuses(batch)
    context.log.info("normalized store: %s", table.to_dicts())
    return MaterializeResult(
        metadata={
            "events": batch.events.height,
            "observations": batch.observations.height,
            "attendance": batch.attendance.height,
            "quarantined": batch.quarantine.height,
            "field_issues": batch.field_issues.height,
            "field_issue_reasons": MetadataValue.json(field_issue_summary(batch)),
            "by_source": md_table(table, limit=20),
            **refs,
        },
        check_results=[
            AssetCheckResult(check_name="unique_ids", passed=not dups, metadata={"n": len(dups)}),
            AssetCheckResult(
                check_name="statuses_allowed",
                passed=not statuses,
                metadata={"unknown": MetadataValue.json(statuses)},
            ),
            AssetCheckResult(
                check_name="references_resolve",
                passed=not any(refs.values()),
                metadata=dict(refs),
            ),
        ],
    )


@asset(group_name="graph", compute_kind="neo4j", deps=[normalized_imports])
def imported_graph(
    context: AssetExecutionContext, landing: LandingResource, neo4j: Neo4jResource
) -> MaterializeResult:
    """Events, identities, attendance and plus-one links upserted into Neo4j."""
    with neo4j.store() as store:
        written = load(landing.store(), store)
        counts = store.counts()
    context.log.info(
        "imported graph: %s events, %s identities, %s attendance; no longer at the source: "
        "%s attendance, %s identities, %s events removed",
        written["events"],
        written["identities"],
        written["attendance"],
        written["removed_attendance"],
        written["removed_identities"],
        written["removed_events"],
    )
    return MaterializeResult(
        metadata={**written, **{f"graph_{key}": value for key, value in counts.items()}}
    )


@asset(group_name="figures", compute_kind="redis", deps=[imported_graph])
def event_guest_counts(
    context: AssetExecutionContext, neo4j: Neo4jResource, redis: RedisResource
) -> MaterializeResult:
    """Guests per event, read back from the graph and published to Redis for the API."""
    with neo4j.store() as store:
        counts = publish_guest_counts(store, redis.figures(), context.run.run_id)
    context.log.info(
        "event guest counts: %s events, %s guests published", len(counts), sum(counts.values())
    )
    table = pl.DataFrame(
        {"event_id": list(counts), "guests": list(counts.values())},
        schema={"event_id": pl.String, "guests": pl.Int64},
    )
    return MaterializeResult(
        metadata={
            "events": len(counts),
            "guests_total": sum(counts.values()),
            "table": md_table(table, limit=50),
        }
    )
