"""API syncs: one platform's events and guest lists over a range of event days.

`community sync` and the partitioned API assets call `sync_range`, so a sync behaves the
same wherever it is started (the fetching, landing and merging is `ingest.connectors.sync`).
The CLI then publishes the store to the graph with `services.imports.publish`; the
pipeline does it in its `normalized_imports` and `imported_graph` assets.
"""

from __future__ import annotations

from datetime import date

from infra.settings import Settings
from ingest.connectors.cursors import CursorStore
from ingest.connectors.sync import API_SOURCES, Progress, SyncReport, sync_source
from ingest.landing import DataStore


class SyncRequestError(ValueError):
    """A sync asked for a source without an API, or for an empty range."""


def check_request(source: str, start: date, end: date) -> None:
    if source not in API_SOURCES:
        raise SyncRequestError(f"no API sync for {source!r}; known: {', '.join(API_SOURCES)}")
    if end < start:
        raise SyncRequestError(f"the range ends ({end}) before it starts ({start})")


def sync_range(
    source: str,
    settings: Settings,
    store: DataStore,
    cursors: CursorStore | None,
    start: date,
    end: date,
    *,
    full: bool = False,
    progress: Progress | None = None,
) -> SyncReport:
    """Syncs [start, end] (inclusive event days): incremental by the cursors unless `full`.

    Raises `SyncRequestError` for a bad request, and the connectors' `SourceError`
    (`AuthError` for a rejected key) when the platform refuses.
    """
    check_request(source, start, end)
    return sync_source(source, settings, store, cursors, start, end, full=full, progress=progress)
