"""Importing export folders: land raw, normalize, then publish the store to the graph.

`community import` and the export assets call the same functions, so a CLI import and a
materialization leave the same store and the same graph:

- `import_source` (an export asset) / `import_folder` (the CLI): land a source's files
  raw and replace its `exports` entry in the normalized store;
- `combine` (`normalized_imports`) then `load` (`imported_graph`), or both at once with
  `publish` (the CLI): the union of every source and day, loaded into Neo4j;
- `publish_guest_counts` (`event_guest_counts`): guests per event, for the API.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from domain.normalize.batch import NormalizedBatch
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from ingest.exports import EXPECTED, ExportImport, FolderPlan, Skipped, plan_folder
from ingest.landing import DataStore, import_export_folder, load_graph

EXPORT_SOURCES = ("luma", "eventbrite", "partiful")

Progress = Callable[[str, int, int], None]  # label, done, total


class NothingToImportError(ValueError):
    """A folder (or a source's folder) holds files but no export this platform reads."""

    def __init__(self, message: str, skipped: Sequence[Skipped] = ()) -> None:
        super().__init__(message)
        self.skipped = list(skipped)


@dataclass
class FolderImport:
    """What one import of an export folder did, per source."""

    folder: Path
    plan: FolderPlan
    results: dict[str, ExportImport] = field(default_factory=dict)

    @property
    def batches(self) -> list[NormalizedBatch]:
        return [row.batch for row in self.results.values()]

    @property
    def reconciles(self) -> bool:
        return all(batch.reconciles for batch in self.batches)


def _skipped_text(skipped: Sequence[Skipped], limit: int = 5) -> str:
    return "; ".join(f"{entry.path}: {entry.reason}" for entry in skipped[:limit])


def import_source(
    store: DataStore, root: Path, source: str, plan: FolderPlan | None = None
) -> ExportImport:
    """One source's exports from `root`, landed raw and normalized into the store.

    Refused when the folder holds files but none is this source's export: either its own
    `<source>/` folder, or the whole folder when nothing in it is importable.
    """
    plan = plan or plan_folder(root)
    folder = root / source
    own_files = folder.is_dir() and any(part.is_file() for part in folder.rglob("*"))
    found_any = any(plan.files.values())
    if (own_files and not plan.for_source(source)) or (plan.total_files and not found_any):
        where = f"{folder}" if own_files else f"{root}"
        raise NothingToImportError(
            f"{source} exports: {where} holds files but none is a "
            f"{source.title()} export ({len(plan.skipped)} skipped: "
            + _skipped_text(plan.skipped)
            + f"); {EXPECTED}",
            plan.skipped,
        )
    return import_export_folder(store, root, source, plan)


def wanted_sources(folder: Path, plan: FolderPlan, only: Sequence[str] = ()) -> list[str]:
    """The sources to import: those asked for, else every one found in the folder."""
    unknown = sorted(set(only) - set(EXPORT_SOURCES))
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; known: {EXPORT_SOURCES}")
    found = [
        entry for entry in EXPORT_SOURCES if plan.for_source(entry) or (folder / entry).is_dir()
    ]
    wanted = list(only) or found
    if not any(plan.for_source(entry) for entry in wanted):
        what = "is empty" if plan.total_files == 0 else f"holds {plan.total_files} files but"
        raise NothingToImportError(
            f"{folder} {what} no export of {', '.join(wanted or EXPORT_SOURCES)} was found; "
            f"{EXPECTED}",
            plan.skipped,
        )
    return wanted


def import_folder(
    store: DataStore,
    folder: Path,
    only: Sequence[str] = (),
    progress: Progress | None = None,
) -> FolderImport:
    """Every wanted source of an export folder, as the export assets import each one."""
    plan = plan_folder(folder)
    wanted = wanted_sources(folder, plan, only)
    done = FolderImport(folder, plan)
    for count, source in enumerate(wanted):
        if progress is not None:
            progress(f"{source} exports", count, len(wanted))
        done.results[source] = import_export_folder(store, folder, source, plan)
    if progress is not None:
        progress("exports", len(wanted), len(wanted))
    return done


def combine(store: DataStore) -> NormalizedBatch:
    """Every source and day of the store in one set of tables (later wins), kept on disk."""
    batch = store.read_all()
    store.write_combined(batch)
    return batch


def load(store: DataStore, graph: GraphStore) -> dict[str, int]:
    """The combined tables loaded into Neo4j; what the sources no longer hold is removed."""
    return load_graph(graph, store.read_combined())


def publish(store: DataStore, graph: GraphStore) -> tuple[NormalizedBatch, dict[str, int]]:
    """`combine` then the load, as `normalized_imports` and `imported_graph` run them."""
    combined = combine(store)
    return combined, load_graph(graph, combined)


def publish_guest_counts(
    graph: GraphStore, figures: FigureStore, run_id: str | None = None
) -> dict[str, int]:
    """Guests per event, read back from the graph and published to Redis."""
    rows, _ = graph.list_events(skip=0, limit=1_000_000)
    counts = {row["event_id"]: int(row["guests"]) for row in rows}
    figures.put_event_guest_counts(counts, run_id=run_id)
    return counts
