"""Rebuilds the normalized day files of one API fetch from its raw landing folder.

A fetch folder (`raw/<source>/<day>/<fetch id>/`) holds every page as received plus a
manifest; pages written encrypted are decrypted with the store's key ring. Replaying it runs the same paging hygiene (repeated records dropped, unreadable
pages quarantined), the same normalizers and the same day merge as the live sync, so a
change to normalization can be applied to history without asking the platforms again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from domain.normalize.batch import NormalizedBatch
from ingest.connectors.base import BrokenPage, Listing, Page
from ingest.connectors.luma import event_id, guest_id
from ingest.connectors.sync import (
    SyncReport,
    SyncRun,
    _eventbrite_page,
    _luma_page,
    _normalize_listing,
    _ts,
    broken_rows,
)
from ingest.landing import DataStore

_PAGE = re.compile(r"^(?P<label>.+)-p(?P<n>\d{4})\.json$")


def _pages(folder: Path) -> dict[str, list[Path]]:
    """Landed page files grouped by listing label, in page order."""
    groups: dict[str, list[tuple[int, Path]]] = {}
    for path in folder.glob("*.json"):
        m = _PAGE.match(path.name)
        if m:
            groups.setdefault(m["label"], []).append((int(m["n"]), path))
    return {k: [p for _, p in sorted(v)] for k, v in groups.items()}


def _listing(
    store: DataStore,
    files: list[Path],
    key: str,
    record_id: Callable[[dict[str, Any]], str | None],
) -> Listing:
    listing = Listing()
    seen: set[str] = set()
    landing = store.raw()
    for path in files:
        text = landing.read(path).decode("utf-8")
        origin = path.relative_to(store.root).as_posix()
        try:
            data = json.loads(text)
        except ValueError as exc:  # worded as the live sync words it
            listing.broken.append(
                BrokenPage("", {}, text, f"malformed page: invalid JSON: {exc}", origin)
            )
            break
        records = data.get(key) if isinstance(data, dict) else None
        if not isinstance(records, list):
            reason = f"unexpected page shape: no {key} list"
            listing.broken.append(BrokenPage("", {}, text, reason, origin))
            break
        fresh = []
        for rec in records:
            rid = record_id(rec)
            if rid is not None and rid in seen:
                continue
            if rid is not None:
                seen.add(rid)
            fresh.append(rec)
        listing.pages.append((Page("", {}, text, data, 200, origin), fresh))
    return listing


def _record_id(rec: dict[str, Any]) -> str | None:
    rid = rec.get("id")
    return str(rid) if rid is not None else None


def replay_fetch(store: DataStore, folder: Path) -> SyncReport:
    """Normalizes a landed fetch again and merges it into the day files, like the sync did."""
    manifest = json.loads((folder / "manifest.json").read_text())
    source = str(manifest["source"])
    start, end = date.fromisoformat(manifest["start"]), date.fromisoformat(manifest["end"])
    report = SyncReport(source, f"replay of {manifest['mode']}", start, end, folder.name)
    run = SyncRun(store, report)
    days = run.days
    groups = _pages(folder)
    incomplete = set(manifest.get("incomplete", []))

    def add(key: str, batch: NormalizedBatch, full_event: str | None) -> None:
        run.add(key, batch)
        if full_event is not None:
            run.replaced.setdefault(key, set()).add(full_event)
        got, skipped = run.counts.get(key, (0, 0))
        run.counts[key] = (got + 1, skipped)

    if source == "luma":
        events_listing = _listing(store, groups.get("events", []), "entries", event_id)
        events = {event_id(r): r.get("event", r) for r in events_listing.records}
        for label, files in groups.items():
            if not label.startswith("guests-"):
                continue
            eid = label[len("guests-") :]
            ev = events.get(eid)
            st = _ts(ev.get("start_at")) if ev else None
            if ev is None or st is None:
                report.notes.append(f"{label}: event not in the landed listing; skipped")
                continue
            listing = _listing(store, files, "entries", guest_id)
            batch = _normalize_listing(listing, partial(_luma_page, ev), "luma")
            complete = not listing.broken and f"luma:{eid}" not in incomplete
            add(st.date().isoformat(), batch, f"luma:{eid}" if complete else None)
        if events_listing.broken:
            add(days[0].isoformat(), broken_rows("luma", events_listing.broken), None)
    elif source == "eventbrite":
        incremental = set(manifest.get("incremental_events", []))
        events = {}
        for label, files in groups.items():
            if label.startswith("events-"):
                events.update(
                    {str(e["id"]): e for e in _listing(store, files, "events", _record_id).records}
                )
        for label, files in groups.items():
            if not label.startswith("attendees-"):
                continue
            eid = label[len("attendees-") :]
            ev = events.get(eid)
            st = _ts((ev or {}).get("start", {}).get("utc"))
            if ev is None or st is None:
                report.notes.append(f"{label}: event not in the landed listing; skipped")
                continue
            listing = _listing(store, files, "attendees", _record_id)
            batch = _normalize_listing(listing, partial(_eventbrite_page, eid, ev), "eventbrite")
            partial_list = listing.broken or f"eventbrite:{eid}" in incomplete
            full_event = None if eid in incremental or partial_list else f"eventbrite:{eid}"
            add(st.date().isoformat(), batch, full_event)
    else:
        raise ValueError(f"cannot replay source {source!r}")
    report.days = run.write_days()
    return report
