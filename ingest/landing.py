"""Raw landing and the normalized store on disk.

Layout under DATA_DIR:

    raw/<source>/<YYYY-MM-DD>/<fetch id>/...      every page and file as received; the day
                                                    is the (UTC) day it was fetched, and each
                                                    fetch folder has a manifest.json
    normalized/<table>/<source>/<day>.parquet     one file per source and partition day;
                                                    export folders use the day key "exports"
    combined/<table>.parquet                       all sources unioned and deduplicated, the
                                                    input of identity resolution and the graph

Daily-partitioned imports write their day files; unpartitioned downstream assets read the
whole store through `DataStore` (via `resources.stores.LandingResource`), not through an IO manager, which is what
lets a partitioned upstream feed an unpartitioned downstream.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from domain.model import (
    ATTENDANCE_SCHEMA,
    EVENTS_SCHEMA,
    FIELD_ISSUES_SCHEMA,
    OBSERVATIONS_SCHEMA,
    QUARANTINE_SCHEMA,
    Role,
    conform,
)
from domain.normalize.batch import NormalizedBatch
from infra.crypto import KeyRing, RawLanding
from infra.erasure import TOMBSTONE_FILE, Tombstones
from infra.neo4j_store import GraphStore
from infra.settings import get_settings
from ingest.exports import ExportImport, FolderPlan, import_exports, plan_folder

TABLES: dict[str, dict[str, pl.DataType]] = {
    "events": EVENTS_SCHEMA,
    "observations": OBSERVATIONS_SCHEMA,
    "attendance": ATTENDANCE_SCHEMA,
    "quarantine": QUARANTINE_SCHEMA,
    "field_issues": FIELD_ISSUES_SCHEMA,
}
EXPORTS_DAY = "exports"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def new_fetch_id() -> str:
    """Sortable and unique: the fetch time plus a short random tail."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class RawFetch:
    """One fetch's folder of raw pages; `sink` is what connectors call for every page.

    Pages and files are encrypted under the newest key of `ring` when it has one (see
    `infra.crypto.RawLanding`); the manifest stays clear and records the key id, or says
    the fetch was written in clear.
    """

    def __init__(
        self, root: Path, source: str, fetch_id: str | None = None, ring: KeyRing | None = None
    ) -> None:
        self.fetch_id = fetch_id or new_fetch_id()
        self.day = self.fetch_id[:8]
        day = f"{self.day[:4]}-{self.day[4:6]}-{self.day[6:8]}"
        self.root = root
        self.landing = RawLanding(root, ring if ring is not None else KeyRing(()))
        self.folder = root / "raw" / source / day / self.fetch_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def sink(self, label: str, text: str) -> str:
        """Keeps the page text byte for byte; returns its path relative to DATA_DIR."""
        path = self.folder / f"{_SAFE.sub('_', label)}.json"
        self.landing.write(path, text.encode("utf-8"))
        self.count += 1
        return path.relative_to(self.root).as_posix()

    def copy_file(self, src: Path, relname: str) -> str:
        dest = self.folder / relname
        self.landing.write(dest, src.read_bytes())
        self.count += 1
        return dest.relative_to(self.root).as_posix()

    def manifest(self, **info: Any) -> None:
        body = {
            "fetch_id": self.fetch_id,
            "files": self.count,
            **info,
            **self.landing.manifest_fields(),
        }
        _atomic_write_bytes(
            self.folder / "manifest.json", json.dumps(body, indent=2, default=str).encode()
        )


def merge_day(
    old: NormalizedBatch | None, new: NormalizedBatch, replaced_events: Iterable[str]
) -> NormalizedBatch:
    """A partition's stored state after a fetch.

    Events in `replaced_events` were refetched in full, so their old rows go; otherwise
    (incremental fetches) the new rows replace old ones with the same id and the rest stay.
    A record fetched again without the rest of its order (an incremental fetch of one
    changed attendee) keeps the plus-one link it had: orders do not change after purchase.
    """
    if old is None:
        return new
    replaced = list(replaced_events)
    new = _keep_plus_one_links(old, new, replaced)
    new_ids = new.observations["observation_id"].to_list()
    keep_obs = old.observations.filter(
        ~pl.col("event_id").is_in(replaced) & ~pl.col("observation_id").is_in(new_ids)
    )
    keep_att = old.attendance.filter(
        ~pl.col("event_id").is_in(replaced) & ~pl.col("observation_id").is_in(new_ids)
    )
    source_ids = [e.split(":", 1)[-1] for e in replaced]
    pattern = "|".join(re.escape(f"-{sid}-p") for sid in source_ids)
    keep_q = (
        old.quarantine.filter(~pl.col("origin").str.contains(pattern))
        if pattern
        else old.quarantine
    )
    keep_issues = old.field_issues.filter(
        pl.col("observation_id").is_in(keep_obs["observation_id"].implode())
    )
    kept = NormalizedBatch(0, old.events, keep_obs, keep_att, keep_q, field_issues=keep_issues)
    merged = NormalizedBatch.concat([kept, new])
    merged.quarantine = merged.quarantine.unique(
        subset=["source", "raw"], keep="last", maintain_order=True
    )
    merged.input_records = merged.observations.height + merged.quarantine.height
    return merged


def _keep_plus_one_links(
    old: NormalizedBatch, new: NormalizedBatch, replaced: list[str]
) -> NormalizedBatch:
    linked = old.attendance.filter(
        pl.col("plus_one_of").is_not_null() & ~pl.col("event_id").is_in(replaced)
    ).select("event_id", "observation_id", pl.col("plus_one_of").alias("_was"))
    if linked.height == 0 or new.attendance.height == 0:
        return new
    att = new.attendance.join(linked, on=["event_id", "observation_id"], how="left")
    lone = pl.col("plus_one_of").is_null() & pl.col("_was").is_not_null()
    new.attendance = att.with_columns(
        pl.when(lone).then(pl.lit(Role.PLUS_ONE.value)).otherwise(pl.col("role")).alias("role"),
        pl.when(lone).then(pl.col("_was")).otherwise(pl.col("plus_one_of")).alias("plus_one_of"),
    ).drop("_was")
    return new


def dedupe(batch: NormalizedBatch) -> NormalizedBatch:
    """Later rows win: the same record seen in an export and again through the API is one."""
    return NormalizedBatch(
        input_records=batch.input_records,
        events=batch.events.unique(subset="event_id", keep="last", maintain_order=True),
        observations=batch.observations.unique(
            subset="observation_id", keep="last", maintain_order=True
        ),
        attendance=batch.attendance.unique(
            subset=["event_id", "observation_id"], keep="last", maintain_order=True
        ),
        quarantine=batch.quarantine.unique(
            subset=["source", "origin", "record_index"], keep="last", maintain_order=True
        ),
        notes=batch.notes,
        field_issues=batch.field_issues.unique(maintain_order=True),
    )


def _latest_issues(batches: list[NormalizedBatch]) -> pl.DataFrame:
    """Field issues of the batch each observation was last seen in (the row `dedupe`
    keeps): a value fixed at the source leaves no stale issue behind."""
    seen = [
        b.observations.select("observation_id", pl.lit(i).alias("__b"))
        for i, b in enumerate(batches)
    ]
    issues = [b.field_issues.with_columns(pl.lit(i).alias("__b")) for i, b in enumerate(batches)]
    if not issues or not any(f.height for f in issues):
        return pl.DataFrame(schema=FIELD_ISSUES_SCHEMA)
    last = pl.concat(seen).group_by("observation_id").agg(pl.col("__b").max())
    return (
        pl.concat(issues)
        .join(last, on=["observation_id", "__b"], how="semi")
        .drop("__b")
        .unique(maintain_order=True)
    )


def _batch(frames: dict[str, pl.DataFrame]) -> NormalizedBatch:
    return NormalizedBatch(
        input_records=frames["observations"].height + frames["quarantine"].height,
        events=frames["events"],
        observations=frames["observations"],
        attendance=frames["attendance"],
        quarantine=frames["quarantine"],
        field_issues=frames["field_issues"],
    )


class DataStore:
    """Reads and writes the landing zone under one DATA_DIR.

    `ring` encrypts the raw landing; without one, `ENCRYPTION_KEYS` decides (read when the
    store is first used, not at import)."""

    def __init__(self, root: Path, ring: KeyRing | None = None) -> None:
        self.root = root
        self._ring = ring

    @property
    def ring(self) -> KeyRing:
        if self._ring is None:
            self._ring = get_settings().key_ring()
        return self._ring

    def raw(self) -> RawLanding:
        """Reads landed files whether they were written encrypted or in clear."""
        return RawLanding(self.root, self.ring)

    def raw_fetch(self, source: str) -> RawFetch:
        return RawFetch(self.root, source, ring=self.ring)

    def _table_file(self, table: str, source: str, day: str) -> Path:
        return self.root / "normalized" / table / source / f"{day}.parquet"

    def _without_erased(self, batch: NormalizedBatch) -> dict[str, pl.DataFrame]:
        """The batch's tables minus people erased for privacy (their tombstones)."""
        tables = {t: getattr(batch, t) for t in TABLES}
        if not (self.root / TOMBSTONE_FILE).exists():
            return tables
        return Tombstones.load(self.root, get_settings().privacy_key()).drop_erased(tables)

    def write_day(self, source: str, day: str, batch: NormalizedBatch) -> None:
        tables = self._without_erased(batch)
        for table, schema in TABLES.items():
            frame = conform(tables[table], schema)
            path = self._table_file(table, source, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            frame.write_parquet(tmp)
            tmp.replace(path)

    def has_day(self, source: str, day: str) -> bool:
        return self._table_file("observations", source, day).exists()

    def read_day(self, source: str, day: str) -> NormalizedBatch | None:
        if not self._table_file("observations", source, day).exists():
            return None
        frames = {
            t: conform(pl.read_parquet(self._table_file(t, source, day)), s)
            if self._table_file(t, source, day).exists()
            else pl.DataFrame(schema=s)
            for t, s in TABLES.items()
        }
        return _batch(frames)

    def days(self, source: str) -> list[str]:
        folder = self.root / "normalized" / "observations" / source
        if not folder.is_dir():
            return []
        keys = [p.stem for p in folder.glob("*.parquet")]
        return sorted(keys, key=lambda k: (k != EXPORTS_DAY, k))  # exports first, then days

    def sources(self) -> list[str]:
        folder = self.root / "normalized" / "observations"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def read_all(self, sources: Iterable[str] | None = None) -> NormalizedBatch:
        """Every source and day in the store, unioned; later days win on the same id."""
        batches = []
        for source in sources if sources is not None else self.sources():
            for day in self.days(source):
                day_batch = self.read_day(source, day)
                if day_batch is not None:
                    batches.append(day_batch)
        combined = dedupe(NormalizedBatch.concat(batches))
        combined.field_issues = _latest_issues(batches)
        return combined

    def write_combined(self, batch: NormalizedBatch) -> None:
        tables = self._without_erased(batch)
        for table, schema in TABLES.items():
            path = self.root / "combined" / f"{table}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            conform(tables[table], schema).write_parquet(tmp)
            tmp.replace(path)

    def read_combined(self) -> NormalizedBatch:
        """What `normalized_imports` last wrote; empty tables when it has not run yet."""
        frames = {}
        for table, schema in TABLES.items():
            path = self.root / "combined" / f"{table}.parquet"
            frames[table] = (
                conform(pl.read_parquet(path), schema)
                if path.exists()
                else pl.DataFrame(schema=schema)
            )
        return _batch(frames)


def import_export_folder(
    store: DataStore, root: Path, source: str, plan: FolderPlan | None = None
) -> ExportImport:
    """Lands a source's export files raw, normalizes them, and replaces the source's
    `exports` entry in the store (an export folder is a snapshot, not a day)."""
    plan = plan or plan_folder(root)
    raw = store.raw_fetch(source)
    side = root / source / "events.json"
    for path in [*plan.for_source(source), *([side] if side.is_file() else [])]:
        raw.copy_file(path, "exports/" + path.relative_to(root).as_posix())
    result = import_exports(root, source, plan)
    batch = result.batch
    raw.manifest(
        source=source,
        kind="exports",
        folder=str(root),
        files=result.files,
        skipped=[{"path": s.path, "reason": s.reason} for s in result.skipped],
        input=batch.input_records,
    )
    store.write_day(source, EXPORTS_DAY, batch)
    return result


def load_graph(graph: GraphStore, batch: NormalizedBatch) -> dict[str, int]:
    """Schema first, then the graph's imported part made equal to `batch` (the whole
    store): batched MERGEs, then what the sources no longer hold is removed."""
    graph.ensure_schema()
    return graph.replace_imports(batch.events, batch.observations, batch.attendance)
