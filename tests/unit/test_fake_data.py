"""The fake platforms' seeded data and paging helpers, without servers."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from fakes.common import Faults, decode_cursor, encode_cursor, page_slice
from fakes.data import FIRST_NAMES, WorldConfig, build_world

NOW = datetime(2026, 11, 1, tzinfo=UTC)
CFG = WorldConfig(seed=5, now=NOW)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_same_seed_same_world_other_seed_other_world() -> None:
    a, b = build_world(CFG), build_world(CFG)
    assert a.luma_guests == b.luma_guests and a.eventbrite_attendees == b.eventbrite_attendees
    c = build_world(WorldConfig(seed=6, now=NOW))
    assert a.luma_guests != c.luma_guests


def test_people_attend_across_platforms_under_name_variants() -> None:
    world = build_world(CFG)
    luma_users = {
        (g.get("guest", g).get("user_api_id") or g.get("user_id"))
        for guests in world.luma_guests.values()
        for g in guests
    }
    assert len(luma_users) > 50
    luma_names = {
        g.get("guest", g).get("user_name") or g["user_name"]
        for guests in world.luma_guests.values()
        for g in guests
    }
    eb_names = {a["profile"]["name"] for atts in world.eventbrite_attendees.values() for a in atts}
    assert len(luma_names & eb_names) > 20  # the same people on both platforms
    nicknames = {n for nicks in FIRST_NAMES.values() for n in nicks}
    firsts = Counter(n.split(" ")[0] for n in luma_names | eb_names)
    assert sum(firsts[n] for n in nicknames) > 5  # "Bob" beside "Robert"


def test_statuses_plus_ones_no_shows_and_cancellations() -> None:
    world = build_world(CFG)
    guests = [g.get("guest", g) for gs in world.luma_guests.values() for g in gs]
    statuses = Counter(g["approval_status"] for g in guests)
    assert {"approved", "declined", "waitlist", "invited"} <= set(statuses)
    shapes = Counter(
        "wrapped" if "guest" in g else "flat" for gs in world.luma_guests.values() for g in gs
    )
    assert shapes["wrapped"] > 0 and shapes["flat"] > 0
    atts = [a for gs in world.eventbrite_attendees.values() for a in gs]
    orders = Counter(a["order_id"] for a in atts)
    assert any(n == 2 for n in orders.values())  # a second ticket on one order: a plus-one
    assert any(a["cancelled"] for a in atts)
    past = [a for a in atts if _ts(a["created"]) < NOW and not a["cancelled"]]
    assert any(not a["checked_in"] for a in past)  # no-shows


def test_nothing_happens_after_now() -> None:
    world = build_world(CFG)
    for atts in world.eventbrite_attendees.values():
        for a in atts:
            assert _ts(a["changed"]) <= NOW
            if a["checked_in"]:
                ev = next(e for e in world.eventbrite_events if e["id"] == a["event_id"])
                assert _ts(ev["start"]["utc"]) <= NOW
    for gs in world.luma_guests.values():
        for g in gs:
            inner = g.get("guest", g)
            times = [inner.get("checked_in_at")] + [
                t.get("checked_in_at") for t in inner.get("event_tickets") or []
            ]
            assert all(_ts(t) <= NOW for t in times if t)


def test_cursors_are_opaque_and_scoped() -> None:
    token = encode_cursor("evt-1", 40)
    assert decode_cursor(token, "evt-1") == (40, "")
    assert decode_cursor(token, "evt-2") is None
    assert decode_cursor("not-a-cursor", "evt-1") is None


def test_page_faults() -> None:
    items = list(range(25))
    plain = page_slice(items, "s", 10, "", 10, Faults())
    assert plain.items == list(range(10, 20)) and plain.index == 1
    assert decode_cursor(plain.next_cursor or "", "s") == (20, "")
    last = page_slice(items, "s", 20, "", 10, Faults())
    assert last.items == [20, 21, 22, 23, 24] and last.next_cursor is None
    repeat = page_slice(items, "s", 10, "", 10, Faults(repeat_page=1))
    assert decode_cursor(repeat.next_cursor or "", "s") == (10, "again")
    again = page_slice(items, "s", 10, "again", 10, Faults(repeat_page=1))
    assert again.items == plain.items and decode_cursor(again.next_cursor or "", "s") == (20, "")
    stuck = page_slice(items, "s", 10, "", 10, Faults(stuck_page=1))
    assert decode_cursor(stuck.next_cursor or "", "s") == (10, "")
    other = page_slice(items, "s", 10, "", 10, Faults(stuck_page=1, fault_event="t"))
    assert decode_cursor(other.next_cursor or "", "s") == (20, "")


def test_the_clock_changes_timestamps_not_the_records() -> None:
    def ids(now: datetime) -> list[str]:
        world = build_world(WorldConfig(seed=5, now=now))
        return [a["id"] for atts in world.eventbrite_attendees.values() for a in atts] + [
            str(g.get("api_id") or g.get("id")) for gs in world.luma_guests.values() for g in gs
        ]

    assert ids(datetime(2026, 9, 1, tzinfo=UTC)) == ids(datetime(2027, 6, 1, tzinfo=UTC))
