"""The normalized day store and the page bookkeeping of a sync (files only, no servers)."""

from __future__ import annotations

import copy
import json
import shutil
from datetime import timedelta
from pathlib import Path

import polars as pl

from domain.normalize.luma import normalize_luma_guests
from fakes.data import WorldConfig, build_world
from infra.settings import Settings
from ingest.connectors.base import Listing, Page
from ingest.connectors.replay import replay_fetch
from ingest.connectors.sync import _normalize_listing, sync_source
from ingest.landing import DataStore, RawFetch, merge_day
from tests.integration.test_slice import start_fakes

WORLD = build_world(WorldConfig(seed=9, luma_events=2, guests_per_event=(20, 20)))
EVENT = WORLD.luma_events[0]
GUESTS = WORLD.luma_guests[EVENT["api_id"]]


def _with_bad_emails(guests: list[dict], positions: list[int]) -> list[dict]:
    out = copy.deepcopy(guests)
    for i in positions:
        inner = out[i].get("guest", out[i])
        for key in ("email", "user_email"):
            if key in inner:
                inner[key] = "not an email"
    return out


def _without_ids(guests: list[dict], positions: list[int]) -> list[dict]:
    out = copy.deepcopy(guests)
    for i in positions:
        inner = out[i].get("guest", out[i])
        for key in ("id", "api_id"):
            inner.pop(key, None)
            out[i].pop(key, None)
    return out


def _listing(raw: RawFetch, guests: list[dict], size: int) -> Listing:
    listing = Listing()
    for n, start in enumerate(range(0, len(guests), size), start=1):
        recs = guests[start : start + size]
        text = json.dumps({"entries": recs})
        origin = raw.sink(f"guests-{EVENT['api_id']}-p{n:04d}", text)
        listing.pages.append((Page("u", {}, text, {}, 200, origin), recs))
    return listing


def test_quarantine_rows_point_at_their_page(tmp_path: Path) -> None:
    store = DataStore(tmp_path)
    raw = store.raw_fetch("luma")
    guests = _without_ids(_with_bad_emails(GUESTS, [4, 15]), [2, 13])
    listing = _listing(raw, guests, 6)
    batch = _normalize_listing(
        listing, lambda recs, origin: normalize_luma_guests(recs, EVENT, origin), "luma"
    )
    assert batch.reconciles and batch.input_records == len(GUESTS)
    rows = batch.quarantine.sort("record_index").to_dicts()
    assert len(rows) == 2
    for row in rows:
        page = json.loads((tmp_path / row["origin"]).read_text())["entries"]
        held = page[row["record_index"]]
        assert json.loads(row["raw"]) == held
    assert {r["origin"].rsplit("-", 1)[-1] for r in rows} == {"p0001.json", "p0003.json"}
    # Field issues of kept records point at their page too.
    issues = batch.field_issues.sort("record_index").to_dicts()
    assert [(i["field"], i["record_index"]) for i in issues] == [("email", 3), ("email", 4)]
    assert [i["origin"].rsplit("-", 1)[-1] for i in issues] == ["p0003.json", "p0001.json"]
    for issue in issues:
        page = json.loads((tmp_path / issue["origin"]).read_text())["entries"]
        held = page[issue["record_index"]]
        assert held.get("guest", held).get("user_email", held.get("guest", held).get("email")) == (
            "not an email"
        )


def test_merge_day_replaces_refetched_events_and_upserts_changes(tmp_path: Path) -> None:
    raw = DataStore(tmp_path).raw_fetch("luma")
    full = _normalize_listing(
        _listing(raw, GUESTS, 50),
        lambda recs, origin: normalize_luma_guests(recs, EVENT, origin),
        "luma",
    )
    event_id = f"luma:{EVENT['api_id']}"
    # Incremental: two changed records replace their old rows, the rest stay.
    changed = normalize_luma_guests(copy.deepcopy(GUESTS[:2]), EVENT, "later")
    merged = merge_day(full, changed, replaced_events=[])
    assert merged.observations.height == full.observations.height
    assert merged.observations["observation_id"].is_unique().all()
    # Full refetch of the event: the new list is the truth, dropped guests go.
    shorter = normalize_luma_guests(copy.deepcopy(GUESTS[:5]), EVENT, "refetch")
    replaced = merge_day(full, shorter, replaced_events=[event_id])
    assert replaced.observations.height == 5
    assert replaced.attendance.filter(pl.col("event_id") == event_id).height == 5


def test_day_files_round_trip_and_union(tmp_path: Path) -> None:
    store = DataStore(tmp_path)
    day = normalize_luma_guests(copy.deepcopy(GUESTS), EVENT, "o")
    store.write_day("luma", "2026-09-03", day)
    store.write_day("luma", "exports", normalize_luma_guests(copy.deepcopy(GUESTS[:3]), EVENT, "x"))
    assert store.days("luma") == ["exports", "2026-09-03"]
    back = store.read_day("luma", "2026-09-03")
    assert back is not None and back.observations.equals(day.observations)
    union = store.read_all()
    # The same guests seen in the export and the API day are one row each.
    assert union.observations.height == day.observations.height
    assert union.observations["observation_id"].is_unique().all()


def test_day_files_can_be_rebuilt_from_the_raw_landing(settings: Settings, tmp_path: Path) -> None:
    apis = start_fakes()
    try:
        apis.luma.state.set_faults(repeat_page=1)
        eb = str(apis.world.eventbrite_events[0]["id"])
        apis.eventbrite.state.set_faults(
            malformed_page=0, malformed_times=-1, malformed_kind="truncated", fault_event=eb
        )
        run = apis.settings(settings, sync_max_attempts=2)
        live = DataStore(tmp_path / "live")
        cfg = apis.world.config
        end = cfg.start + timedelta(days=cfg.days - 1)
        for source in ("luma", "eventbrite"):
            sync_source(source, run, live, None, cfg.start, end, full=True)
    finally:
        apis.luma_server.stop()
        apis.eventbrite_server.stop()
    # Only the raw folder is copied over; the normalized files are rebuilt from it.
    rebuilt = DataStore(tmp_path / "rebuilt")
    shutil.copytree(live.root / "raw", rebuilt.root / "raw")
    folders = sorted(p.parent for p in (rebuilt.root / "raw").rglob("manifest.json"))
    assert len(folders) == 2
    for folder in folders:
        replay_fetch(rebuilt, folder)
    for source in ("luma", "eventbrite"):
        assert rebuilt.days(source) == live.days(source)
        for day in live.days(source):
            a, b = live.read_day(source, day), rebuilt.read_day(source, day)
            assert a is not None and b is not None
            for table in ("events", "observations", "attendance"):
                assert getattr(a, table).equals(getattr(b, table)), (source, day, table)
            qa = a.quarantine.drop("origin")
            qb = b.quarantine.drop("origin")
            assert qa.equals(qb), (source, day)
    q = rebuilt.read_all(["eventbrite"]).quarantine
    assert q.filter(q["record_index"] == -1).height == 1  # the truncated page, again
