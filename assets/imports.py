"""Import assets: export files and APIs into the normalized schema, then into Neo4j."""

from typing import Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from assets.metadata import md_table
from domain.normalize.batch import NormalizedBatch
from domain.normalize.luma import normalize_luma_csv
from resources.exports import read_luma_folder
from resources.stores import ExportsResource, Neo4jResource, RedisResource


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
        "reconciles": batch.reconciles,
        "quarantine_reasons": MetadataValue.json(reasons),
        "preview": md_table(batch.observations),
    }


@asset(group_name="imports", compute_kind="polars")
def luma_exports(
    context: AssetExecutionContext, exports: ExportsResource
) -> Output[NormalizedBatch]:
    """Luma guest-export CSVs, normalized; unreadable records are quarantined with a reason."""
    batches = [
        normalize_luma_csv(frame, event, origin)
        for event, frame, origin in read_luma_folder(exports.root())
    ]
    batch = NormalizedBatch.concat(batches)
    context.log.info(
        "luma exports: %s in, %s normalized, %s quarantined",
        batch.input_records,
        batch.observations.height,
        batch.quarantine.height,
    )
    return Output(batch, metadata=batch_metadata(batch))


@asset_check(asset=luma_exports, blocking=True)
def luma_exports_reconcile(luma_exports: NormalizedBatch) -> AssetCheckResult:
    """Every input record is either normalized or quarantined."""
    return AssetCheckResult(
        passed=luma_exports.reconciles,
        metadata={
            "input": luma_exports.input_records,
            "normalized": luma_exports.observations.height,
            "quarantined": luma_exports.quarantine.height,
        },
    )


@asset(group_name="graph", compute_kind="neo4j")
def imported_graph(luma_exports: NormalizedBatch, neo4j: Neo4jResource) -> MaterializeResult:
    """Events, identities and attendance upserted into Neo4j in batched MERGE transactions."""
    with neo4j.store() as store:
        store.ensure_schema()
        written = store.upsert_imports(
            luma_exports.events, luma_exports.observations, luma_exports.attendance
        )
        counts = store.counts()
    return MaterializeResult(metadata={**written, **{f"graph_{k}": v for k, v in counts.items()}})


@asset(group_name="figures", compute_kind="redis", deps=[imported_graph])
def event_guest_counts(
    context: AssetExecutionContext, neo4j: Neo4jResource, redis: RedisResource
) -> MaterializeResult:
    """Guests per event, read back from the graph and published to Redis for the API."""
    with neo4j.store() as store:
        rows, _ = store.list_events(skip=0, limit=1_000_000)
    counts = {r["event_id"]: int(r["guests"]) for r in rows}
    redis.figures().put_event_guest_counts(counts, run_id=context.run.run_id)
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
