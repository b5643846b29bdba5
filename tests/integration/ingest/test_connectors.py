"""The platform connectors against the local fakes, over real HTTP on localhost."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from fakes.common import ServerThread
from fakes.data import World, WorldConfig, build_world
from fakes.eventbrite import EventbriteFake
from fakes.luma import LumaFake
from infra.redis_keys import RedisKeys
from infra.redis_store import FigureStore
from infra.settings import Settings
from ingest.connectors.base import AuthError, ClientOptions, SourceError
from ingest.connectors.cursors import CursorStore
from ingest.connectors.eventbrite import EventbriteClient
from ingest.connectors.luma import LumaClient, guest_id
from ingest.connectors.sync import sync_source
from ingest.landing import DataStore

WORLD = WorldConfig(
    seed=3, people=150, luma_events=4, eventbrite_events=3, guests_per_event=(30, 45), days=60
)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WORLD)


@pytest.fixture()
def luma(world: World) -> Iterator[tuple[LumaFake, ServerThread]]:
    fake = LumaFake(world)
    server = fake.serve()
    yield fake, server
    server.stop()


@pytest.fixture()
def eventbrite(world: World) -> Iterator[tuple[EventbriteFake, ServerThread]]:
    fake = EventbriteFake(world)
    server = fake.serve()
    yield fake, server
    server.stop()


def options(url: str, **changes: object) -> ClientOptions:
    base: dict[str, object] = {
        "base_url": url,
        "requests_per_minute": 60_000,
        "page_size": 7,
        "backoff_seconds": 0.02,
        "backoff_max_seconds": 0.2,
        "timeout_seconds": 5.0,
        "max_attempts": 4,
    }
    base.update(changes)
    return ClientOptions(**base)  # type: ignore[arg-type]


def luma_client(server: ServerThread, key: str = "luma-local-key", **changes: object) -> LumaClient:
    return LumaClient(options(f"{server.url}/v1", **changes), key)


def first_event(world: World) -> str:
    return str(world.luma_events[0]["api_id"])


def test_luma_guest_list_is_paged_to_the_end(luma: tuple[LumaFake, ServerThread]) -> None:
    fake, server = luma
    eid = first_event(fake.world)
    expected = [guest_id(g) for g in fake.world.luma_guests[eid]]
    with luma_client(server) as client:
        listing = client.get_guests(eid)
    assert [guest_id(r) for r in listing.records] == expected
    assert len(listing.pages) == math.ceil(len(expected) / 7)
    assert client.stats.duplicate_records == 0 and not listing.broken
    cursors = [e["params"].get("pagination_cursor") for e in fake.state.stats.log]
    assert cursors[0] is None and len(set(cursors)) == len(cursors)


def test_luma_lists_events_in_a_date_window(luma: tuple[LumaFake, ServerThread]) -> None:
    fake, server = luma
    starts = sorted(e["start_at"] for e in fake.world.luma_events)
    first_day = datetime.fromisoformat(starts[0].replace("Z", "+00:00")).date()
    after = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    with luma_client(server) as client:
        one_day = client.list_events(after, after + timedelta(days=1)).records
        every = client.list_events().records
    assert len(every) == len(fake.world.luma_events)
    assert 1 <= len(one_day) < len(every)
    assert all(e["event"]["start_at"].startswith(first_day.isoformat()) for e in one_day)


def test_wrong_luma_key_fails_naming_the_source(luma: tuple[LumaFake, ServerThread]) -> None:
    _, server = luma
    with luma_client(server, key="wrong") as client, pytest.raises(AuthError) as err:
        client.get_guests("evt-anything")
    assert str(err.value).startswith(
        "luma: API key rejected (401): Invalid API key; check LUMA_API_KEY"
    )
    assert client.stats.requests == 1  # a rejected key is not retried


def test_wrong_eventbrite_token_fails_naming_the_source(
    eventbrite: tuple[EventbriteFake, ServerThread],
) -> None:
    _, server = eventbrite
    client = EventbriteClient(options(f"{server.url}/v3"), "not-the-token")
    with client, pytest.raises(AuthError) as err:
        client.organizations()
    assert str(err.value).startswith("eventbrite: token rejected (401)")
    assert "The OAuth token you provided was invalid; check EVENTBRITE_TOKEN" in str(err.value)


def test_429_retry_after_is_honoured(luma: tuple[LumaFake, ServerThread]) -> None:
    fake, server = luma
    fake.state.set_faults(throttle_first=2, retry_after=0.6)
    eid = first_event(fake.world)
    started = time.monotonic()
    with luma_client(server) as client:
        listing = client.get_guests(eid)
    elapsed = time.monotonic() - started
    assert len(listing.records) == len(fake.world.luma_guests[eid])
    assert client.stats.throttled == 2
    # Two announced pauses of 0.6 s were waited out (backoff alone would be ~0.06 s).
    assert elapsed >= 1.2
    assert fake.state.stats.statuses[429] == 2


def test_server_side_rate_limit_is_survived(luma: tuple[LumaFake, ServerThread]) -> None:
    fake, server = luma
    fake.state.set_faults(rate_limit_per_minute=3, rate_window_seconds=0.5)
    eid = first_event(fake.world)
    with luma_client(server, max_attempts=20) as client:
        listing = client.get_guests(eid)
    assert len(listing.records) == len(fake.world.luma_guests[eid])
    assert client.stats.throttled >= 1


def test_intermittent_5xx_is_recovered(luma: tuple[LumaFake, ServerThread]) -> None:
    fake, server = luma
    fake.state.set_faults(fail_first=2, error_rate=0.25)
    with luma_client(server, max_attempts=8) as client:
        for ev in fake.world.luma_events:
            eid = str(ev["api_id"])
            assert len(client.get_guests(eid).records) == len(fake.world.luma_guests[eid])
    assert client.stats.retries >= 2
    assert sum(n for code, n in fake.state.stats.statuses.items() if code >= 500) >= 2


def test_persistent_5xx_fails_clearly(luma: tuple[LumaFake, ServerThread]) -> None:
    fake, server = luma
    fake.state.set_faults(fail_first=100)
    with luma_client(server, max_attempts=3) as client, pytest.raises(SourceError) as err:
        client.get_guests(first_event(fake.world))
    assert "luma: event/get-guests still failing after 3 attempts: server error 503" in str(
        err.value
    )


def test_slow_responses_time_out_and_are_retried(luma: tuple[LumaFake, ServerThread]) -> None:
    fake, server = luma
    fake.state.set_faults(delay_seconds=0.5)
    with (
        luma_client(server, timeout_seconds=0.1, max_attempts=2) as client,
        pytest.raises(SourceError) as err,
    ):
        client.get_guests(first_event(fake.world))
    assert "Timeout" in str(err.value)
    assert client.stats.retries == 1
    fake.state.set_faults(delay_seconds=0.05)
    with luma_client(server, timeout_seconds=2) as client:
        assert client.get_guests(first_event(fake.world)).records


def test_malformed_page_once_is_retried(luma: tuple[LumaFake, ServerThread]) -> None:
    fake, server = luma
    fake.state.set_faults(malformed_page=1, malformed_times=1, malformed_kind="truncated")
    eid = first_event(fake.world)
    with luma_client(server) as client:
        listing = client.get_guests(eid)
    assert not listing.broken
    assert len(listing.records) == len(fake.world.luma_guests[eid])
    assert client.stats.retries == 1


@pytest.mark.parametrize("kind", ["html", "truncated"])
def test_page_that_stays_malformed_is_quarantined_and_the_sync_finishes(
    luma: tuple[LumaFake, ServerThread], settings: Settings, tmp_path: Path, kind: str
) -> None:
    fake, server = luma
    eid = first_event(fake.world)
    fake.state.set_faults(
        malformed_page=2, malformed_times=-1, malformed_kind=kind, fault_event=eid
    )
    run = settings.model_copy(
        update={
            "luma_base_url": f"{server.url}/v1",
            "luma_requests_per_minute": 60_000,
            "sync_page_size": 7,
            "sync_max_attempts": 2,
            "sync_backoff_seconds": 0.01,
        }
    )
    store = DataStore(tmp_path)
    report = sync_source(
        "luma", run, store, None, WORLD.start, WORLD.start + timedelta(days=WORLD.days), full=True
    )
    fetched = report.fetched
    broken = fetched.quarantine.filter(fetched.quarantine["record_index"] == -1)
    assert broken.height == 1
    row = broken.row(0, named=True)
    assert row["reason"].startswith("malformed page:")
    # The broken page was landed as received, and the quarantine row points at it.
    landed = (tmp_path / row["origin"]).read_text()
    assert landed == row["raw"]
    if kind == "html":
        assert "<html>" in landed
    else:
        with pytest.raises(ValueError):
            json.loads(landed)
    # Pages before the broken one are kept; every other event is complete.
    others = sum(len(g) for e, g in fake.world.luma_guests.items() if e != eid)
    assert fetched.observations.height + fetched.quarantine.height == fetched.input_records
    assert report.input_records == others + 2 * 7 + 1
    assert report.reconciles


def test_repeated_page_is_deduplicated(luma: tuple[LumaFake, ServerThread]) -> None:
    fake, server = luma
    fake.state.set_faults(repeat_page=1)
    eid = first_event(fake.world)
    with luma_client(server) as client:
        listing = client.get_guests(eid)
    ids = [guest_id(r) for r in listing.records]
    assert ids == [guest_id(g) for g in fake.world.luma_guests[eid]]
    assert client.stats.duplicate_records == 7 and client.stats.repeated_pages == 1


def test_stuck_cursor_does_not_loop_forever(luma: tuple[LumaFake, ServerThread]) -> None:
    fake, server = luma
    fake.state.set_faults(stuck_page=2)
    eid = first_event(fake.world)
    with luma_client(server) as client:
        listing = client.get_guests(eid)
    assert client.stats.cursor_loops == 1
    assert len(listing.records) == 3 * 7  # pages 0..2; the rest cannot be reached
    assert any("cursor repeats" in n for n in listing.notes)
    assert client.stats.requests == 3


def test_eventbrite_continuation_and_changed_since(
    eventbrite: tuple[EventbriteFake, ServerThread],
) -> None:
    fake, server = eventbrite
    event = fake.world.eventbrite_events[0]
    eid = str(event["id"])
    total = len(fake.world.eventbrite_attendees[eid])
    client = EventbriteClient(options(f"{server.url}/v3"), "eventbrite-local-token")
    with client:
        orgs = client.organizations()
        assert [o["id"] for o in orgs] == [WORLD.eventbrite_org_id]
        events = client.events(WORLD.eventbrite_org_id).records
        assert {e["id"] for e in events} == {e["id"] for e in fake.world.eventbrite_events}
        full = client.attendees(eid)
        assert len(full.records) == total and len(full.pages) == math.ceil(total / 7)
        since = datetime.now(UTC) - timedelta(seconds=5)
        fake.change_attendee(eid, 3, cancelled=True)
        fake.change_attendee(eid, 5, profile={"company": "New Co"})
        changed = client.attendees(eid, changed_since=since)
    assert sorted(a["id"] for a in changed.records) == sorted(
        fake.world.eventbrite_attendees[eid][i]["id"] for i in (3, 5)
    )
    sent = [e["params"] for e in fake.state.stats.log if e["path"].endswith("/attendees/")]
    assert "changed_since" in sent[-1] and sent[-1]["changed_since"].endswith("Z")


def test_concurrent_event_fetches_share_the_rate_limit(
    luma: tuple[LumaFake, ServerThread], settings: Settings, tmp_path: Path
) -> None:
    fake, server = luma
    run = settings.model_copy(
        update={
            "luma_base_url": f"{server.url}/v1",
            "luma_requests_per_minute": 300,  # 5 per second, burst of 30
            "sync_page_size": 3,
            "sync_concurrency": 4,
        }
    )
    started = time.monotonic()
    report = sync_source(
        "luma",
        run,
        DataStore(tmp_path),
        None,
        WORLD.start,
        date.fromordinal(WORLD.start.toordinal() + WORLD.days),
        full=True,
    )
    elapsed = time.monotonic() - started
    requests = report.stats["requests"]
    assert report.input_records == fake.world.luma_guest_count
    # Beyond the burst, requests cannot come faster than the configured rate.
    assert requests > 40
    assert elapsed >= (requests - 30) / 5 * 0.9


def test_event_gone_between_listing_and_fetch_is_noted(
    eventbrite: tuple[EventbriteFake, ServerThread], settings: Settings, tmp_path: Path
) -> None:
    fake, server = eventbrite
    gone = str(fake.world.eventbrite_events[0]["id"])
    kept = fake.world.eventbrite_attendees.pop(gone)
    try:
        run = settings.model_copy(
            update={"eventbrite_base_url": f"{server.url}/v3", "sync_page_size": 20}
        )
        end = WORLD.start + timedelta(days=WORLD.days)
        report = sync_source("eventbrite", run, DataStore(tmp_path), None, WORLD.start, end)
    finally:
        fake.world.eventbrite_attendees[gone] = kept
    assert report.input_records == fake.world.eventbrite_attendee_count - len(kept)
    assert any(gone in n and "(404)" in n for n in report.notes)


def test_broken_page_keeps_stored_guests_and_is_fetched_again(
    luma: tuple[LumaFake, ServerThread], settings: Settings, figures: FigureStore, tmp_path: Path
) -> None:
    fake, server = luma
    eid = first_event(fake.world)
    run = settings.model_copy(
        update={
            "luma_base_url": f"{server.url}/v1",
            "luma_requests_per_minute": 60_000,
            "sync_page_size": 7,
            "sync_max_attempts": 2,
            "sync_backoff_seconds": 0.01,
            "luma_settle_days": 0,  # every past list is final: only an open cursor refetches
        }
    )
    store = DataStore(tmp_path)
    cursors = CursorStore(figures.r, RedisKeys(settings.redis_key_prefix))
    start, end = WORLD.start, WORLD.start + timedelta(days=WORLD.days)
    first = sync_source("luma", run, store, cursors, start, end, full=True)
    assert not first.incomplete

    def stored() -> list[str]:
        obs = store.read_all().observations
        return sorted(obs.filter(obs["event_id"] == f"luma:{eid}")["observation_id"].to_list())

    before = stored()
    assert len(before) > 14
    # The second page of this event's list stays broken: a full refetch must not delete
    # the guests on the pages it could not read.
    fake.state.set_faults(
        malformed_page=1, malformed_times=-1, malformed_kind="html", fault_event=eid
    )
    second = sync_source("luma", run, store, cursors, start, end, full=True)
    assert [(i.event_id, i.reason.split(":")[0]) for i in second.incomplete] == [
        (f"luma:{eid}", "malformed page")
    ]
    assert stored() == before
    assert second.reconciles
    cal = str(fake.world.luma_events[0].get("calendar_id") or "default")
    assert cursors.get("luma", cal)[eid] is None  # the cursor did not advance
    # Healed: an incremental run fetches that list again (the settled ones are skipped).
    fake.state.set_faults(malformed_page=None)
    fake.state.reset_stats()
    third = sync_source("luma", run, store, cursors, start, end, full=False)
    assert not third.incomplete
    assert third.events_fetched == 1 and third.events_skipped == len(fake.world.luma_events) - 1
    assert stored() == before
    assert cursors.get("luma", cal)[eid] is not None
