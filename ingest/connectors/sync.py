"""An API sync over a range of days: fetch, land raw, normalize, merge into the day files.

The Dagster assets and the `community sync` command both call `sync_source`, so a sync
behaves the same wherever it is started. A day is the UTC start date of an event: the
partition `2026-11-12` holds the events starting that day and their guest lists.

Modes:
- full: every event in the range is fetched in full and replaces what the day held
  (backfills, first runs, `--full`);
- incremental: Eventbrite asks only for attendees changed since the event's cursor and
  merges them in; Luma refetches only guest lists that may still change (the event had
  not ended `luma_settle_days` before the last fetch).

A list whose paging broke part-way (a page that stayed unreadable) is *incomplete*: what
did arrive is merged in like an incremental fetch, so no stored guest is deleted on the
strength of a partial list; its cursor does not advance (Luma's is cleared, so even a
settled list is fetched again next run) and the report lists it, which fails the assets'
`lists_complete` check.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import polars as pl

from domain.model import QUARANTINE_SCHEMA, conform
from domain.normalize.batch import NormalizedBatch
from domain.normalize.eventbrite import normalize_eventbrite_attendees
from domain.normalize.luma import normalize_luma_guests
from infra.settings import Settings
from ingest.connectors.base import BrokenPage, Listing, SourceError
from ingest.connectors.cursors import CursorStore
from ingest.connectors.eventbrite import EventbriteClient
from ingest.connectors.luma import LumaClient, event_id
from ingest.landing import DataStore, RawFetch, merge_day

API_SOURCES = ("luma", "eventbrite")
CHANGED_SINCE_OVERLAP = timedelta(minutes=2)  # `changed` has whole seconds; overlap is harmless

# Called as progress(description, done, total) while events are fetched.
Progress = Callable[[str, int, int], None]


@dataclass
class DayResult:
    day: str
    fetched: NormalizedBatch  # what this sync received for the day
    stored: NormalizedBatch  # the day file after merging
    events_fetched: int = 0
    events_skipped: int = 0


@dataclass(frozen=True)
class Incomplete:
    """A listing whose paging failed part-way: kept, not replaced, fetched again next run."""

    event_id: str  # "<source>:<event id>", or "<source>:events" for the event listing
    day: str
    reason: str


@dataclass
class SyncReport:
    source: str
    mode: str
    start: date
    end: date
    fetch_id: str = ""
    days: list[DayResult] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    incomplete: list[Incomplete] = field(default_factory=list)

    @property
    def fetched(self) -> NormalizedBatch:
        return NormalizedBatch.concat([d.fetched for d in self.days])

    @property
    def input_records(self) -> int:
        return sum(d.fetched.input_records for d in self.days)

    @property
    def normalized(self) -> int:
        return sum(d.fetched.observations.height for d in self.days)

    @property
    def quarantined(self) -> int:
        return sum(d.fetched.quarantine.height for d in self.days)

    @property
    def reconciles(self) -> bool:
        return all(d.fetched.reconciles for d in self.days)

    @property
    def events_fetched(self) -> int:
        return sum(d.events_fetched for d in self.days)

    @property
    def events_skipped(self) -> int:
        return sum(d.events_skipped for d in self.days)


def day_range(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _ts(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def broken_rows(source: str, broken: list[BrokenPage]) -> NormalizedBatch:
    """A page that never parsed is one quarantined input (record_index -1 = whole page)."""
    frame = pl.DataFrame(
        {
            "source": [source] * len(broken),
            "origin": [b.origin for b in broken],
            "record_index": [-1] * len(broken),
            "raw": [b.text for b in broken],
            "reason": [b.reason for b in broken],
        },
        schema=QUARANTINE_SCHEMA,
    )
    return NormalizedBatch(input_records=len(broken), quarantine=conform(frame, QUARANTINE_SCHEMA))


def _normalize_listing(
    listing: Listing, normalize: Callable[[list[dict[str, Any]], str], NormalizedBatch], source: str
) -> NormalizedBatch:
    """One normalizer call per listing (cheaper than one per page); quarantine rows are
    then pointed back at the landed page that held them, with the index on that page."""
    records: list[dict[str, Any]] = []
    starts: list[int] = []
    origins: list[str] = []
    for page, recs in listing.pages:
        starts.append(len(records))
        origins.append(page.origin)
        records.extend(recs)
    batches = []

    def on_pages(q: pl.DataFrame) -> pl.DataFrame:
        if q.height == 0 or len(origins) < 2:
            return q
        idx = q["record_index"].to_list()
        page_of = [max(0, bisect_right(starts, i) - 1) if i >= 0 else 0 for i in idx]
        return q.with_columns(
            pl.Series("origin", [origins[p] for p in page_of], dtype=pl.String),
            pl.Series(
                "record_index",
                [i - starts[p] if i >= 0 else i for i, p in zip(idx, page_of, strict=True)],
                dtype=pl.Int64,
            ),
        )

    if listing.pages:
        batch = normalize(records, origins[0])
        batch.quarantine = on_pages(batch.quarantine)
        batch.field_issues = on_pages(batch.field_issues)
        batches.append(batch)
    if listing.broken:
        batches.append(broken_rows(source, listing.broken))
    return NormalizedBatch.concat(batches)


def _fetch_all(
    ids: list[str],
    fetch: Callable[[str], Listing],
    handle: Callable[[str, Listing], None],
    concurrency: int,
    progress: Progress | None,
    label: str,
) -> None:
    """Fetches in `concurrency` threads; `handle` runs here as each listing arrives, so
    normalizing one event overlaps with fetching the next ones."""
    if progress:
        progress(label, 0, len(ids))
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(_tolerate_gone, fetch, eid): eid for eid in ids}
        for done, future in enumerate(as_completed(futures), start=1):
            handle(futures[future], future.result())
            if progress:
                progress(label, done, len(ids))


def _tolerate_gone(fetch: Callable[[str], Listing], eid: str) -> Listing:
    """An event deleted between listing and fetching is noted, not fatal to the sync."""
    try:
        return fetch(eid)
    except SourceError as exc:
        if exc.status != 404:
            raise
        gone = Listing()
        gone.notes.append(f"{exc} (deleted since it was listed?)")
        return gone


@dataclass
class SyncRun:
    """What a sync (or a replay of one) gathers before it writes: batches per day, the
    events whose stored rows a full fetch replaces, per-day event counts and the cursor
    moves (applied only once the days they stand for are on disk)."""

    store: DataStore
    report: SyncReport
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    fetched: dict[str, list[NormalizedBatch]] = field(default_factory=dict)
    replaced: dict[str, set[str]] = field(default_factory=dict)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    cursor_moves: dict[str, dict[str, str | None]] = field(default_factory=dict)

    @classmethod
    def begin(
        cls, source: str, store: DataStore, raw: RawFetch, start: date, end: date, full: bool
    ) -> SyncRun:
        mode = "full" if full else "incremental"
        return cls(store, SyncReport(source, mode, start, end, raw.fetch_id))

    @property
    def source(self) -> str:
        return self.report.source

    @property
    def days(self) -> list[date]:
        return day_range(self.report.start, self.report.end)

    def add(self, day: str, batch: NormalizedBatch) -> None:
        self.fetched.setdefault(day, []).append(batch)

    def listing_broken(self, listing_id: str, broken: list[BrokenPage]) -> None:
        """An event listing that broke part-way: its pages count on the first day."""
        first = self.days[0].isoformat()
        self.add(first, broken_rows(self.source, broken))
        self.report.incomplete.append(
            Incomplete(f"{self.source}:{listing_id}", first, raw_broken_reason(broken[0]))
        )

    def move_cursor(self, scope: str, event: str, value: str | None) -> None:
        self.cursor_moves.setdefault(scope, {})[event] = value

    def finish(
        self, raw: RawFetch, stats: dict[str, int], cursors: CursorStore | None, **manifest: Any
    ) -> SyncReport:
        """Writes the days, then moves the cursors, then lands the fetch's manifest."""
        self.report.days = self.write_days()
        if cursors is not None:
            for scope, changes in self.cursor_moves.items():
                cursors.update(self.source, scope, changes)
        self.report.stats = stats
        raw.manifest(
            source=self.source,
            mode=self.report.mode,
            start=self.report.start.isoformat(),
            end=self.report.end.isoformat(),
            stats=stats,
            notes=self.report.notes,
            incomplete=[i.event_id for i in self.report.incomplete],
            **manifest,
        )
        return self.report

    def write_days(self) -> list[DayResult]:
        results = []
        for d in self.days:
            key = d.isoformat()
            new = NormalizedBatch.concat(self.fetched.get(key, []))
            old = self.store.read_day(self.source, key)
            if not (new.events.height or new.quarantine.height or self.replaced.get(key)):
                # Nothing came for this day: its file (if any) stays as it is.
                stored = old if old is not None else new
            else:
                stored = merge_day(old, new, self.replaced.get(key, set()))
                self.store.write_day(self.source, key, stored)
            got, skipped = self.counts.get(key, (0, 0))
            results.append(DayResult(key, new, stored, got, skipped))
        return results


def sync_luma(
    client: LumaClient,
    store: DataStore,
    raw: RawFetch,
    cursors: CursorStore | None,
    start: date,
    end: date,
    *,
    full: bool,
    settle_days: int,
    concurrency: int,
    progress: Progress | None = None,
) -> SyncReport:
    run = SyncRun.begin("luma", store, raw, start, end, full)
    report = run.report
    after = datetime(start.year, start.month, start.day, tzinfo=UTC)
    before = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    listing = client.list_events(after, before)
    report.notes += listing.notes
    if listing.broken:
        report.notes.append(f"events listing unreadable: {raw_broken_reason(listing.broken[0])}")
        run.listing_broken("events", listing.broken)
    events = {}
    for rec in listing.records:
        eid = event_id(rec)
        if eid:
            events[eid] = rec.get("event", rec)
    by_day: dict[str, list[str]] = {}
    for eid, ev in events.items():
        st = _ts(ev.get("start_at"))
        if st is not None and start <= st.date() <= end:
            by_day.setdefault(st.date().isoformat(), []).append(eid)
    calendars = {str(ev.get("calendar_id") or "default") for ev in events.values()}
    state: dict[str, Any] = {}
    if cursors is not None:
        for cal in calendars:
            state.update(cursors.get("luma", cal))
    if not state:
        report.mode = "full"  # no cursor yet: the first sync of this calendar is a full one
    settle = timedelta(days=settle_days)
    wanted: list[str] = []
    for key, ids in by_day.items():
        fetched_n = skipped = 0
        have_day = store.has_day("luma", key)
        for eid in ids:
            last = _ts(state.get(eid))
            end_at = _ts(events[eid].get("end_at")) or _ts(events[eid].get("start_at"))
            final = last is not None and end_at is not None and last >= end_at + settle
            if not full and have_day and final:
                skipped += 1
            else:
                wanted.append(eid)
                fetched_n += 1
        run.counts[key] = (fetched_n, skipped)

    def handle(eid: str, guests: Listing) -> None:
        ev = events[eid]
        key = _ts(ev.get("start_at")).date().isoformat()  # type: ignore[union-attr]
        run.add(key, _normalize_listing(guests, partial(_luma_page, ev), "luma"))
        report.notes += [f"{eid}: {n}" for n in guests.notes]
        cal = str(ev.get("calendar_id") or "default")
        if guests.broken:
            # Merged like an incremental fetch; the cleared cursor makes the next run refetch.
            reason = raw_broken_reason(guests.broken[0])
            report.incomplete.append(Incomplete(f"luma:{eid}", key, reason))
            run.move_cursor(cal, eid, None)
        else:
            run.replaced.setdefault(key, set()).add(f"luma:{eid}")
            run.move_cursor(cal, eid, run.started.isoformat())

    _fetch_all(wanted, client.get_guests, handle, concurrency, progress, "luma guest lists")
    return run.finish(raw, client.stats.as_dict(), cursors)


def _luma_page(
    event: dict[str, Any], records: list[dict[str, Any]], origin: str
) -> NormalizedBatch:
    return normalize_luma_guests(records, event, origin)


def _eventbrite_page(
    eid: str, event: dict[str, Any], records: list[dict[str, Any]], origin: str
) -> NormalizedBatch:
    return normalize_eventbrite_attendees(records, {eid: event}, origin)


def _attendees(client: EventbriteClient, since: dict[str, datetime | None], eid: str) -> Listing:
    return client.attendees(eid, changed_since=since[eid])


def raw_broken_reason(page: BrokenPage) -> str:
    return f"{page.reason} ({page.origin})"


def sync_eventbrite(
    client: EventbriteClient,
    store: DataStore,
    raw: RawFetch,
    cursors: CursorStore | None,
    start: date,
    end: date,
    *,
    full: bool,
    concurrency: int,
    progress: Progress | None = None,
) -> SyncReport:
    run = SyncRun.begin("eventbrite", store, raw, start, end, full)
    report = run.report
    incremental_events: set[str] = set()
    for org in client.organizations():
        org_id = str(org.get("id"))
        listing = client.events(org_id)
        report.notes += listing.notes
        if listing.broken:
            run.listing_broken(f"events-{org_id}", listing.broken)
        events: dict[str, dict[str, Any]] = {}
        for ev in listing.records:
            st = _ts((ev.get("start") or {}).get("utc"))
            if st is not None and start <= st.date() <= end:
                events[str(ev["id"])] = ev
        state = cursors.get("eventbrite", org_id) if cursors is not None else {}
        since: dict[str, datetime | None] = {}
        for eid, ev in events.items():
            key = _ts(ev["start"]["utc"]).date().isoformat()  # type: ignore[union-attr]
            last = _ts(state.get(eid))
            have_day = store.has_day("eventbrite", key)
            incremental = not full and last is not None and have_day
            since[eid] = last - CHANGED_SINCE_OVERLAP if incremental and last else None
            if since[eid] is not None:
                incremental_events.add(eid)
            got, skipped = run.counts.get(key, (0, 0))
            run.counts[key] = (got + 1, skipped)

        def handle(
            eid: str,
            attendees: Listing,
            events: dict[str, dict[str, Any]] = events,
            since: dict[str, datetime | None] = since,
            org_id: str = org_id,
        ) -> None:
            ev = events[eid]
            key = _ts(ev["start"]["utc"]).date().isoformat()  # type: ignore[union-attr]
            run.add(
                key, _normalize_listing(attendees, partial(_eventbrite_page, eid, ev), "eventbrite")
            )
            report.notes += [f"{eid}: {n}" for n in attendees.notes]
            if attendees.broken:
                reason = raw_broken_reason(attendees.broken[0])
                report.incomplete.append(Incomplete(f"eventbrite:{eid}", key, reason))
                return  # merged in, nothing replaced, the cursor stays where it was
            if since[eid] is None:
                run.replaced.setdefault(key, set()).add(f"eventbrite:{eid}")
            run.move_cursor(org_id, eid, run.started.isoformat())

        _fetch_all(
            list(events),
            partial(_attendees, client, since),
            handle,
            concurrency,
            progress,
            f"eventbrite attendees (org {org_id})",
        )
    if not incremental_events:
        report.mode = "full"  # no event had a cursor: everything was fetched in full
    return run.finish(
        raw, client.stats.as_dict(), cursors, incremental_events=sorted(incremental_events)
    )


def sync_source(
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
    """Runs one platform's sync for [start, end] (inclusive days) with the given settings."""
    raw = store.raw_fetch(source)
    if source == "luma":
        with LumaClient.from_settings(settings, sink=raw.sink) as luma:
            return sync_luma(
                luma,
                store,
                raw,
                cursors,
                start,
                end,
                full=full,
                settle_days=settings.luma_settle_days,
                concurrency=settings.sync_concurrency,
                progress=progress,
            )
    if source == "eventbrite":
        with EventbriteClient.from_settings(settings, sink=raw.sink) as eb:
            return sync_eventbrite(
                eb,
                store,
                raw,
                cursors,
                start,
                end,
                full=full,
                concurrency=settings.sync_concurrency,
                progress=progress,
            )
    raise ValueError(f"no API sync for source {source!r}; known: {', '.join(API_SOURCES)}")
