"""Identity resolution domain code: matching, guards, constraints, ids, golden records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from domain.identity.blocking import candidate_pairs
from domain.identity.features import prepare_features
from domain.identity.names import canonical_email, clean_handle, fold
from domain.identity.pipeline import (
    DECISIONS_SCHEMA,
    Thresholds,
    cluster_violations,
    resolve,
    with_ids,
)
from domain.identity.scoring import MatchModel, apply_guards
from domain.model import OBSERVATIONS_SCHEMA, conform

_counter = iter(range(1, 10_000))


def obs(source: str = "luma", event: str = "e1", **fields: Any) -> dict[str, Any]:
    n = next(_counter)
    row = {
        "observation_id": fields.pop("observation_id", f"{source}:r{n}"),
        "source": source,
        "source_record_id": f"r{n}",
        "event_id": event,
        "observed_at": datetime(2026, 1, 1, tzinfo=UTC).replace(day=1 + n % 28),
    }
    row.update(fields)
    return row


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return conform(pl.DataFrame(rows), OBSERVATIONS_SCHEMA)


def members_of(rows: list[dict[str, Any]], **kw: Any) -> dict[str, str]:
    _, _, members = resolve(frame(rows), **kw)
    return dict(members.assignment.iter_rows())


def together(assign: dict[str, str], a: str, b: str) -> bool:
    return assign[a] == assign[b]


def decisions(*rows: tuple[str, str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "decision_id": f"d{k}",
                "kind": kind,
                "a": a,
                "b": b,
                "created_at": datetime(2026, 2, 1, 0, k, tzinfo=UTC),
            }
            for k, (kind, a, b) in enumerate(rows)
        ],
        schema=DECISIONS_SCHEMA,
    )


def test_folding_and_canonical_keys() -> None:
    assert fold("José  Müller-Lüdenscheidt") == "jose muller ludenscheidt"
    assert fold("Мария") == "mariya"
    assert canonical_email("Bob.Smith+events@googlemail.com") == "bobsmith@gmail.com"
    assert canonical_email("bob.smith+x@company.com") == "bob.smith@company.com"
    assert clean_handle("https://www.instagram.com/Alice_C/") == "alice_c"
    assert clean_handle("@Alice_C") == "alice_c"


def test_nickname_email_variant_and_phone_merge_across_platforms() -> None:
    rows = [
        obs(observation_id="luma:1", full_name="Robert Smith", email="bob.smith@gmail.com"),
        obs(
            observation_id="luma:2",
            event="e2",
            full_name="Bob Smith",
            email="bobsmith+meetups@gmail.com",
            phone="+12125550101",
        ),
        obs(
            observation_id="partiful:3",
            source="partiful",
            event="e3",
            full_name="Bob Smith",
            phone="+12125550101",
        ),
        obs(observation_id="luma:4", event="e3", full_name="Carla Gomez", email="carla@x.io"),
    ]
    assign = members_of(rows)
    assert together(assign, "luma:1", "luma:2")
    assert together(assign, "luma:2", "partiful:3")
    assert not together(assign, "luma:1", "luma:4")


def test_transliterated_name_with_same_email_merges() -> None:
    rows = [
        obs(observation_id="luma:1", full_name="Мария Иванова", email="maria@ya.ru"),
        obs(
            observation_id="eventbrite:2",
            source="eventbrite",
            event="e9",
            full_name="Mariya Ivanova",
            email="maria@ya.ru",
        ),
    ]
    assert together(members_of(rows), "luma:1", "eventbrite:2")


def test_placeholder_names_never_merge() -> None:
    rows = [
        obs(observation_id=f"luma:{k}", event=f"e{k}", full_name=name)
        for k, name in enumerate(["Guest", "Guest", "Plus one", "Plus One", "Test", "Test"])
    ]
    assign = members_of(rows)
    assert len(set(assign.values())) == len(rows)


def test_single_word_name_alone_never_merges() -> None:
    rows = [
        obs(observation_id=f"partiful:{k}", source="partiful", event=f"e{k}", full_name="Alejandro")
        for k in range(4)
    ]
    scored, _, members = resolve(frame(rows))
    assert members.assignment["member_id"].n_unique() == 4
    assert set(scored.pairs["decision"].to_list()) == {"distinct"}


def test_common_name_alone_never_merges() -> None:
    # Six different people called John Smith (each with an own address) make the name common;
    # two more John Smith records without any identifier must not join any of them.
    rows = [
        obs(
            observation_id=f"luma:{k}",
            event=f"e{k}",
            full_name="John Smith",
            email=f"js{k}@mail{k}.com",
        )
        for k in range(6)
    ]
    rows += [
        obs(observation_id="partiful:a", source="partiful", event="p1", full_name="John Smith"),
        obs(observation_id="partiful:b", source="partiful", event="p2", full_name="John Smith"),
    ]
    assign = members_of(rows)
    assert len(set(assign.values())) == len(rows)


def test_uncommon_full_name_in_same_community_can_still_be_suggested_or_merged() -> None:
    rows = [
        obs(
            observation_id="luma:1",
            full_name="Xiomara Quintanilla",
            email="xq@corp.com",
            company="Corp",
        ),
        obs(
            observation_id="partiful:2",
            source="partiful",
            event="e2",
            full_name="Xiomara Quintanilla",
            company="Corp",
        ),
    ]
    scored, _, _ = resolve(frame(rows))
    assert scored.pairs["decision"].to_list()[0] in {"merge", "suggest"}


def test_conflicting_handles_are_cannot_link_even_transitively() -> None:
    # a and c carry different instagram handles; b (no handle) matches both by email.
    rows = [
        obs(
            observation_id="luma:a",
            full_name="Dana Kim",
            email="dana@kim.dev",
            handle_instagram="@danakim",
        ),
        obs(observation_id="luma:b", event="e2", full_name="Dana Kim", email="dana@kim.dev"),
        obs(
            observation_id="luma:c",
            event="e3",
            full_name="Dana Kim",
            email="dana@kim.dev",
            handle_instagram="dana.k.other",
        ),
    ]
    scored, clusters, members = resolve(frame(rows))
    assign = dict(members.assignment.iter_rows())
    assert not together(assign, "luma:a", "luma:c")
    assert together(assign, "luma:b", "luma:a") or together(assign, "luma:b", "luma:c")
    assert cluster_violations(scored, clusters) == []


def test_different_emails_at_the_same_event_are_two_people() -> None:
    rows = [
        obs(observation_id="luma:1", event="e1", full_name="Sam Lee", email="sam@a.com"),
        obs(observation_id="luma:2", event="e1", full_name="Sam Lee", email="samlee@b.com"),
        # a third record elsewhere with a phone shared with both cannot chain them together
        obs(
            observation_id="luma:3",
            event="e2",
            full_name="Sam Lee",
            email="sam@a.com",
            phone="+15550000001",
        ),
        obs(
            observation_id="luma:4",
            event="e3",
            full_name="Sam Lee",
            email="samlee@b.com",
            phone="+15550000001",
        ),
    ]
    scored, clusters, members = resolve(frame(rows))
    assign = dict(members.assignment.iter_rows())
    assert not together(assign, "luma:1", "luma:2")
    assert cluster_violations(scored, clusters) == []
    flagged = with_ids(scored.features, scored.pairs).filter(
        (pl.col("a") == "luma:1") & (pl.col("b") == "luma:2")
    )
    assert flagged["decision"].to_list() == ["cannot_link"]


def test_shared_family_email_with_different_names_is_not_merged() -> None:
    rows = [
        obs(observation_id="luma:1", full_name="Maria Rossi", email="rossi.family@gmail.com"),
        obs(
            observation_id="luma:2",
            event="e2",
            full_name="Paolo Rossi",
            email="rossi.family@gmail.com",
        ),
    ]
    scored, _, members = resolve(frame(rows))
    assert members.assignment["member_id"].n_unique() == 2
    assert scored.pairs["decision"].to_list()[0] in {"suggest", "distinct"}


def test_cannot_link_decision_is_transitive_and_beats_must_link() -> None:
    rows = [
        obs(observation_id="luma:1", full_name="Ana Silva", email="ana@silva.pt"),
        obs(observation_id="luma:2", event="e2", full_name="Ana Silva", email="ana@silva.pt"),
        obs(observation_id="luma:3", event="e3", full_name="Ana Silva", email="ana@silva.pt"),
    ]
    d = decisions(("cannot_link", "luma:1", "luma:3"), ("must_link", "luma:1", "luma:3"))
    scored, clusters, members = resolve(frame(rows), decisions=d)
    assign = dict(members.assignment.iter_rows())
    assert not together(assign, "luma:1", "luma:3")
    assert clusters.skipped_must_links == 1
    assert cluster_violations(scored, clusters) == []


def test_must_link_merges_what_scores_would_not() -> None:
    rows = [
        obs(observation_id="luma:1", full_name="Kim", email="kim@one.com"),
        obs(observation_id="partiful:2", source="partiful", event="e2", full_name="Kimberly Park"),
    ]
    assert not together(members_of(rows), "luma:1", "partiful:2")
    assign = members_of(rows, decisions=decisions(("must_link", "luma:1", "partiful:2")))
    assert together(assign, "luma:1", "partiful:2")


def _people() -> list[dict[str, Any]]:
    return [
        obs(observation_id="luma:1", full_name="Priya Raman", email="priya@raman.dev"),
        obs(observation_id="luma:2", event="e2", full_name="Priya Raman", email="priya@raman.dev"),
        obs(observation_id="luma:3", event="e3", full_name="Jordan Lee", email="jlee@startup.io"),
        obs(observation_id="luma:4", event="e4", full_name="Jordan Lee", email="jlee@startup.io"),
    ]


def test_member_ids_are_stable_when_clusters_gain_and_lose_records() -> None:
    rows = _people()
    first = members_of(rows)
    previous = pl.DataFrame({"observation_id": list(first), "member_id": list(first.values())})
    more = [
        *rows,
        obs(
            observation_id="eventbrite:5",
            source="eventbrite",
            event="e5",
            full_name="Priya Raman",
            email="priya@raman.dev",
        ),
    ]
    second = members_of(more, previous=previous)
    assert second["eventbrite:5"] == second["luma:1"] == first["luma:1"]
    assert second["luma:3"] == first["luma:3"]
    fewer = [r for r in rows if r["observation_id"] != "luma:2"]
    third = members_of(fewer, previous=previous)
    assert third["luma:1"] == first["luma:1"]


def test_split_and_merge_are_recorded_as_redirects() -> None:
    rows = _people()
    first = members_of(rows)
    previous = pl.DataFrame({"observation_id": list(first), "member_id": list(first.values())})
    d = decisions(("must_link", "luma:1", "luma:3"))
    _, _, merged = resolve(frame(rows), decisions=d, previous=previous)
    survivors = set(merged.assignment["member_id"].to_list())
    assert len(survivors) == 1
    (retired,) = set(first.values()) - survivors
    assert merged.redirects == {retired: next(iter(survivors))}
    assert merged.redirect_reason[retired] == "merged"
    # Split: luma:2 cannot be with luma:1 any more.
    d2 = decisions(("cannot_link", "luma:1", "luma:2"))
    _, _, split = resolve(frame(rows), decisions=d2, previous=previous)
    assign = dict(split.assignment.iter_rows())
    assert assign["luma:1"] == first["luma:1"]
    assert assign["luma:2"] != first["luma:1"]
    assert split.split_from[assign["luma:2"]] == [first["luma:1"]]


def test_unmerge_recomputes_both_sides_from_their_records() -> None:
    rows = [
        obs(
            observation_id="luma:1",
            full_name="Lena Fischer",
            email="lena@fischer.de",
            company="Fischer AG",
        ),
        obs(observation_id="luma:2", event="e2", full_name="Lena Fischer", email="lena@fischer.de"),
        obs(
            observation_id="luma:3",
            event="e3",
            full_name="Lena Fisher",
            email="lena@fischer.de",
            company="Other GmbH",
            phone="+4915112345678",
        ),
    ]
    _, _, before = resolve(frame(rows))
    assert before.members.height == 1
    d = decisions(("cannot_link", "luma:3", "luma:1"), ("cannot_link", "luma:3", "luma:2"))
    _, _, after = resolve(frame(rows), decisions=d)
    assert after.members.height == 2
    by_count = {r["observation_count"]: r for r in after.members.to_dicts()}
    assert by_count[1]["company"] == "Other GmbH"
    assert by_count[1]["phones"] == ["+4915112345678"]
    assert by_count[2]["phones"] == []
    assert by_count[2]["company"] == "Fischer AG"


def test_golden_record_survivorship_and_provenance() -> None:
    rows = [
        obs(
            observation_id="partiful:1",
            source="partiful",
            full_name="Bob Smith",
            email="bob@gmail.com",
            company="Old Co",
            observed_at=datetime(2025, 1, 1, tzinfo=UTC),
        ),
        obs(
            observation_id="luma:2",
            event="e2",
            full_name="Bob Smith",
            email="bob@gmail.com",
            handle_linkedin="linkedin.com/in/bobsmith",
            observed_at=datetime(2025, 6, 1, tzinfo=UTC),
        ),
        obs(
            observation_id="eventbrite:3",
            source="eventbrite",
            event="e3",
            full_name="Robert Smith",
            email="bob@gmail.com",
            company="New Co",
            observed_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
    ]
    _, _, m = resolve(frame(rows))
    (member,) = m.members.to_dicts()
    assert member["display_name"] == "Bob Smith"  # most frequent
    assert member["company"] == "New Co"  # most recent
    assert member["emails"] == ["bob@gmail.com"]
    prov = m.provenance.filter(pl.col("chosen"))
    company = prov.filter(pl.col("attribute") == "company").to_dicts()[0]
    assert company["observation_ids"] == ["eventbrite:3"]
    name = prov.filter(pl.col("attribute") == "display_name").to_dicts()[0]
    assert name["observation_ids"] == ["luma:2", "partiful:1"]


def test_explanations_list_features_weights_and_probability() -> None:
    _, _, m = resolve(frame(_people()))
    ex = m.explanations.to_dicts()
    assert len(ex) == 2
    for row in ex:
        assert row["reason"] == "auto"
        assert row["match_probability"] >= Thresholds().merge_at
        assert "email exact" in row["evidence"] and "p=" in row["evidence"]
        assert row["w_email"] > 0


def test_blocking_is_near_linear_and_finds_typos() -> None:
    rows = [
        obs(
            observation_id=f"luma:{k}",
            event=f"e{k % 50}",
            full_name=f"Person{k} Surname{k}",
            email=f"p{k}@x.com",
        )
        for k in range(2000)
    ]
    rows.append(obs(observation_id="luma:typo", event="e9", full_name="Person7 Surnmae7"))
    feats = prepare_features(frame(rows))
    pairs, per_rule = candidate_pairs(feats)
    assert pairs.height < 2001 * 40  # far below the 2 million of all pairs
    idx = {o: k for k, o in enumerate(feats["observation_id"].to_list())}
    a, b = sorted((idx["luma:7"], idx["luma:typo"]))
    assert pairs.filter((pl.col("i") == a) & (pl.col("j") == b)).height == 1
    assert per_rule["email"] == 0


def test_model_round_trips_and_is_used_for_small_components() -> None:
    scored, _, _ = resolve(frame(_people()))
    model = MatchModel.from_json(scored.model.to_json())
    assert model.to_json() == scored.model.to_json()
    scored2, _, _ = resolve(frame(_people()), model=model)
    assert scored2.pairs["match_probability"].to_list() == pytest.approx(
        scored.pairs["match_probability"].to_list()
    )


def _community_rows(name: str) -> list[dict[str, Any]]:
    """Six namesakes elsewhere make `name` common; two regulars relate events e1 and e2."""
    rows = [
        obs(observation_id=f"luma:n{k}", event=f"x{k}", full_name=name, email=f"n{k}@m{k}.com")
        for k in range(6)
    ]
    for ev in ("e1", "e2"):
        rows += [
            obs(event=ev, full_name="Ada Quell", email="ada@quell.io"),
            obs(event=ev, full_name="Bo Tarrant", email="bo@tarrant.io"),
        ]
    rows += [
        obs(observation_id="partiful:a", source="partiful", event="e1", full_name=name),
        obs(observation_id="partiful:b", source="partiful", event="e2", full_name=name),
    ]
    return rows


def _pair(scored: Any, a: str, b: str) -> dict[str, Any]:
    rows = with_ids(scored.features, scored.pairs)
    hit = rows.filter(
        ((pl.col("a") == a) & (pl.col("b") == b)) | ((pl.col("a") == b) & (pl.col("b") == a))
    )
    assert hit.height == 1
    return hit.row(0, named=True)


def test_common_name_corroborated_by_one_event_community_is_not_a_name_alone() -> None:
    scored, _, _ = resolve(frame(_community_rows("John Smith")))
    pair = _pair(scored, "partiful:a", "partiful:b")
    assert pair["l_event"] == 2  # related events
    assert pair["name_weak"] and not pair["name_single"]
    assert pair["guard"] is None  # the score decides, not the guard
    # The same pair at a probability high enough to merge: merged when corroborated,
    # kept apart by the guard when the events are unrelated or the name is one word.
    base = {k: pair[k] for k in pair if k.startswith("l_") or k in _FLAGS}
    rows = pl.DataFrame(
        [
            {**base, "match_probability": 0.999},
            {**base, "l_event": 1, "match_probability": 0.999},
            {**base, "name_single": True, "match_probability": 0.999},
            {**base, "l_event": 1, "l_company": 1, "match_probability": 0.999},
        ]
    )
    out = apply_guards(rows, 0.95, 0.5, 0.98)
    assert out["decision"].to_list() == ["merge", "distinct", "distinct", "merge"]
    assert out["guard"][1] == "name alone is a single word, placeholder or common"


_FLAGS = ("name_weak", "name_single", "cannot_link", "identifier_agrees")


def test_single_word_name_in_one_community_is_still_a_name_alone() -> None:
    scored, _, members = resolve(frame(_community_rows("Alex")))
    pair = _pair(scored, "partiful:a", "partiful:b")
    assert pair["l_event"] == 2
    assert pair["decision"] == "distinct"
    assign = dict(members.assignment.iter_rows())
    assert not together(assign, "partiful:a", "partiful:b")


def test_events_related_through_a_third_event_are_one_community() -> None:
    from domain.identity.features import related_events

    rows = []
    for ev in ("e1", "e2"):
        rows += [obs(event=ev, email="a@x.io"), obs(event=ev, email="b@x.io")]
    for ev in ("e2", "e3"):
        rows += [obs(event=ev, email="c@x.io"), obs(event=ev, email="d@x.io")]
    feats = prepare_features(frame(rows))
    direct = related_events(feats, hops=1)
    assert set(direct.iter_rows()) == {("e1", "e2"), ("e2", "e3")}
    assert set(related_events(feats).iter_rows()) == {("e1", "e2"), ("e1", "e3"), ("e2", "e3")}
