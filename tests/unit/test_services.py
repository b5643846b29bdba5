"""The pure parts of the use-case layer: decision ids, refusals, history, thresholds,
which sources an import takes, sync requests, event lists and month windows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from domain.identity.pipeline import Thresholds
from domain.identity.scoring import MatchModel
from infra.identity_store import decision_row
from infra.settings import Settings
from ingest.exports import plan_folder
from services.analytics import change_reading, month_window
from services.corrections import (
    history_entries,
    seeded,
    split_size_error,
    undo_refusal,
    with_context,
)
from services.identity import IdentityConfig, learned_thresholds, thresholds_for
from services.imports import NothingToImportError, wanted_sources
from services.members import attended_events
from services.syncs import SyncRequestError, check_request

AT = datetime(2026, 11, 1, 12, tzinfo=UTC)


def rows() -> list[dict[str, object]]:
    return [
        decision_row("cannot_link", "luma:b", "luma:a", "unmerge", "u1", at=AT),
        decision_row("cannot_link", "luma:c", "luma:a", "unmerge", "u1", at=AT),
    ]


def test_an_idempotency_key_gives_the_same_decision_ids_and_one_action_id() -> None:
    first, again = seeded(rows(), "key-0001"), seeded(rows(), "key-0001")
    assert [r["decision_id"] for r in first] == [r["decision_id"] for r in again]
    assert len({r["decision_id"] for r in first}) == 2
    assert {r["action_id"] for r in first} == {first[0]["decision_id"]}
    other = seeded(rows(), "key-0002")
    assert {r["decision_id"] for r in other}.isdisjoint(r["decision_id"] for r in first)
    # Without a key the ids derive from the decision itself (kind, records, time).
    unkeyed = seeded(rows(), None)
    assert unkeyed[0]["decision_id"] == rows()[0]["decision_id"]


def test_decisions_carry_the_members_and_score_of_their_time() -> None:
    (row,) = with_context(
        [decision_row("must_link", "x:1", "x:2", "accept_suggestion", "u1", at=AT)],
        {"x:1": "mem_a", "x:2": "mem_b"},
        {"probability": 0.93, "evidence": "name exact"},
    )
    assert (row["a"], row["b"], row["member_a"], row["member_b"]) == (
        "x:1",
        "x:2",
        "mem_a",
        "mem_b",
    )
    assert row["probability"] == 0.93 and row["evidence"] == "name exact"


def test_unmerge_refusals() -> None:
    everything = split_size_error(["a", "b"], [], cap=100)
    assert everything is not None and everything.error == "invalid_decision"
    assert everything.refusal == "unprocessable"
    too_many = split_size_error(["a", "b", "c"], ["d", "e"], cap=5)
    assert too_many is not None and too_many.error == "too_many_decisions"
    assert "needs 6 decisions (limit 5)" in too_many.message
    assert split_size_error(["a"], ["b", "c"], cap=2) is None


def test_undo_refusals() -> None:
    unknown = undo_refusal("dec_x", [])
    assert unknown is not None and unknown.refusal == "not_found"
    undone = undo_refusal("dec_x", [{"undone_at": AT}])
    assert undone is not None and undone.error == "already_undone"
    superseded = undo_refusal("dec_x", [{"superseded": True, "superseded_by": "dec_y"}])
    assert superseded is not None and superseded.error == "superseded"
    assert "'dec_y'" in superseded.message
    # One of several decisions superseded: the rest can still be undone.
    assert undo_refusal("dec_x", [{"superseded": True}, {"superseded": False}]) is None


def test_history_orders_entries_and_says_what_is_in_effect() -> None:
    later = datetime(2026, 11, 2, tzinfo=UTC)
    decisions, runs = history_entries(
        {
            "decisions": [
                {"decision_id": "dec_2", "created_at": later, "superseded": None},
                {"decision_id": "dec_1", "created_at": AT, "undone_at": later},
                {"decision_id": "dec_3", "created_at": later, "superseded": True},
            ],
            "runs": [{"run_id": "r2", "at": later}, {"run_id": "r1", "at": AT}],
        }
    )
    assert [d["decision_id"] for d in decisions] == ["dec_1", "dec_2", "dec_3"]
    assert [d["in_effect"] for d in decisions] == [False, True, False]
    assert decisions[0]["created_at"] == AT.isoformat()
    assert decisions[1]["superseded"] is False
    assert [r["run_id"] for r in runs] == ["r1", "r2"]


def test_thresholds_follow_settings_and_what_reviews_taught() -> None:
    settings = Settings(identity_merge_threshold=0.97, identity_suggest_threshold=0.8)
    config = IdentityConfig.from_settings(settings)
    assert config.thresholds.merge_at == 0.97 and config.thresholds.suggest_at == 0.8
    assert config.trust_order == tuple(settings.identity_source_trust)
    model = MatchModel(review_thresholds={"suggest_at": 0.7})
    moved = thresholds_for(settings, model)
    assert moved.suggest_at == 0.7 and moved.merge_at == 0.97
    assert learned_thresholds(Thresholds(), None) == Thresholds()


def test_an_import_takes_the_sources_found_or_asked_for(tmp_path: Path) -> None:
    (tmp_path / "partiful").mkdir()
    (tmp_path / "partiful" / "party_2026-10-01.csv").write_text(
        "Name,Status,RSVP date,Is Plus One Of\nAna Silva,Going,2026-09-20,\n"
    )
    plan = plan_folder(tmp_path)
    assert wanted_sources(tmp_path, plan) == ["partiful"]
    with pytest.raises(ValueError, match="unknown source"):
        wanted_sources(tmp_path, plan, ["meetup"])
    with pytest.raises(NothingToImportError, match="no export of luma was found"):
        wanted_sources(tmp_path, plan, ["luma"])


def test_an_empty_folder_is_refused_saying_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("exports go here")
    with pytest.raises(NothingToImportError) as refused:
        wanted_sources(tmp_path, plan_folder(tmp_path))
    assert "holds 1 files but no export" in str(refused.value)
    assert [s.path for s in refused.value.skipped] == ["notes.txt"]


def test_sync_requests_are_checked() -> None:
    check_request("luma", date(2026, 10, 1), date(2026, 10, 1))
    with pytest.raises(SyncRequestError, match="no API sync for 'partiful'"):
        check_request("partiful", date(2026, 10, 1), date(2026, 10, 2))
    with pytest.raises(SyncRequestError, match="before it starts"):
        check_request("eventbrite", date(2026, 10, 2), date(2026, 10, 1))


def test_a_member_lists_each_event_once_by_start() -> None:
    identities = [
        {
            "identity": {"observation_id": "luma:1"},
            "attendance": [
                {"event_id": "e2", "starts_at": "2026-10-02"},
                {"event_id": "e1", "starts_at": "2026-10-01"},
            ],
        },
        {
            "identity": {"observation_id": "partiful:1"},
            "attendance": [
                {"event_id": "e1", "starts_at": "2026-10-01"},
                {"event_id": "e3", "starts_at": None},
            ],
        },
    ]
    events = attended_events(identities)
    assert [(e["event_id"], e["observation_id"]) for e in events] == [
        ("e3", "partiful:1"),
        ("e1", "luma:1"),
        ("e2", "luma:1"),
    ]


def test_month_windows_and_change_readings() -> None:
    start, end, month = month_window("2026-12-01")
    assert (start.isoformat(), end.isoformat(), month) == (
        "2026-12-01T00:00:00+00:00",
        "2027-01-01T00:00:00+00:00",
        "2026-12",
    )
    calm = change_reading({"score": 0.2, "components": {"previous": 3, "current": 2}})
    assert "barely moved" in calm[0] and "from 3 to 2" in calm[1]
    moved = change_reading({"score": 1.5, "components": {"previous": 1, "current": 4}})
    assert "changed noticeably" in moved[0]
