"""Identity resolution against a real Neo4j: the member graph, decisions, ids, reruns."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl

from assets import identity as identity_assets
from domain.model import ATTENDANCE_SCHEMA, EVENTS_SCHEMA, OBSERVATIONS_SCHEMA, conform
from infra.identity_store import IdentityStore, decision_row
from infra.neo4j_store import GraphStore
from infra.settings import Settings
from resources.stores import Neo4jResource
from services.identity import IdentityConfig, re_resolve

T0 = datetime(2026, 9, 1, 18, tzinfo=UTC)

PEOPLE: list[dict[str, Any]] = [
    # Bob: nickname, gmail dots and plus tag, phone-only Partiful record.
    {
        "observation_id": "luma:b1",
        "event_id": "luma:e1",
        "full_name": "Robert Smith",
        "email": "bob.smith@gmail.com",
        "company": "Acme",
    },
    {
        "observation_id": "luma:b2",
        "event_id": "luma:e2",
        "full_name": "Bob Smith",
        "email": "bobsmith+events@gmail.com",
        "phone": "+12125550101",
    },
    {
        "observation_id": "partiful:b3",
        "source": "partiful",
        "event_id": "partiful:e3",
        "full_name": "Bob Smith",
        "phone": "+12125550101",
    },
    # Alice: same email three times.
    {
        "observation_id": "luma:a1",
        "event_id": "luma:e1",
        "full_name": "Alice Chen",
        "email": "alice.chen@example.com",
        "handle_instagram": "@alicechen",
    },
    {
        "observation_id": "luma:a2",
        "event_id": "luma:e2",
        "full_name": "Alice Chen",
        "email": "alice.chen@example.com",
    },
    {
        "observation_id": "eventbrite:a3",
        "source": "eventbrite",
        "event_id": "eventbrite:e4",
        "full_name": "Alice Chen",
        "email": "alice.chen@example.com",
    },
    # A family inbox used by two people: a suggestion, never an automatic merge.
    {
        "observation_id": "luma:r1",
        "event_id": "luma:e1",
        "full_name": "Maria Rossi",
        "email": "rossi.family@gmail.com",
    },
    {
        "observation_id": "luma:r2",
        "event_id": "luma:e2",
        "full_name": "Paolo Rossi",
        "email": "rossi.family@gmail.com",
    },
    # Placeholders.
    {"observation_id": "luma:g1", "event_id": "luma:e1", "full_name": "Guest"},
    {"observation_id": "luma:g2", "event_id": "luma:e2", "full_name": "Guest"},
    # Someone alone.
    {
        "observation_id": "luma:l1",
        "event_id": "luma:e2",
        "full_name": "Lena Fischer",
        "email": "lena@fischer.de",
    },
]
EVENTS = ["luma:e1", "luma:e2", "partiful:e3", "eventbrite:e4", "luma:e5"]


def frames(people: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    events = conform(
        pl.DataFrame(
            [
                {
                    "event_id": e,
                    "source": e.split(":")[0],
                    "source_event_id": e.split(":")[1],
                    "name": f"Event {e}",
                    "starts_at": T0 + timedelta(days=7 * k),
                }
                for k, e in enumerate(EVENTS)
            ]
        ),
        EVENTS_SCHEMA,
    )
    rows = []
    for k, p in enumerate(people):
        row = {"source": "luma", "observed_at": T0 + timedelta(hours=k), **p}
        row["source_record_id"] = row["observation_id"].split(":")[1]
        rows.append(row)
    obs = conform(pl.DataFrame(rows), OBSERVATIONS_SCHEMA)
    att = conform(
        obs.select(
            "event_id",
            "observation_id",
            pl.lit("attended").alias("status"),
            pl.lit("approved").alias("raw_status"),
            pl.lit("guest").alias("role"),
            pl.col("observed_at").alias("registered_at"),
        ),
        ATTENDANCE_SCHEMA,
    )
    return events, obs, att


def load(graph: GraphStore, people: list[dict[str, Any]] = PEOPLE) -> None:
    graph.upsert_imports(*frames(people))


def run_identity(
    settings: Settings, instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    """Materializes the identity assets (the import load is done by `load`)."""
    result = dg.materialize(
        [
            identity_assets.identity_candidate_pairs,
            identity_assets.identity_clusters,
            identity_assets.identity_members,
            identity_assets.member_graph,
            identity_assets.clusters_respect_cannot_links,
            identity_assets.every_observation_in_one_cluster,
            identity_assets.member_graph_has_no_dangling_members,
        ],
        resources={"neo4j": Neo4jResource()},
        instance=instance or dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 3 and all(c.passed for c in checks), checks
    return result


def assignment(graph: GraphStore) -> dict[str, str]:
    return dict(IdentityStore(graph).load_assignment().iter_rows())


def snapshot(graph: GraphStore) -> dict[str, Any]:
    """Everything identity resolution writes, as plain data (for rerun comparisons)."""
    members = graph.run("MATCH (m:Member) RETURN properties(m) AS p ORDER BY m.member_id")
    rels = graph.run(
        "MATCH (a)-[r]->(b) WHERE type(r) IN ['HAS_IDENTITY','MATCHED','HAS_HANDLE','REDIRECTS_TO'] "
        "RETURN type(r) AS t, coalesce(a.member_id, a.observation_id) AS a, "
        "coalesce(b.member_id, b.observation_id, b.handle) AS b, properties(r) AS p ORDER BY t, a, b"
    )
    sugg = graph.run("MATCH (s:MergeSuggestion) RETURN properties(s) AS p ORDER BY s.suggestion_id")
    return {"members": members, "rels": rels, "suggestions": sugg, "counts": graph.counts()}


def no_dangling(graph: GraphStore) -> None:
    assert IdentityStore(graph).membership_issues() == []
    assert (
        graph.run("MATCH (m:Member) WHERE NOT (m)-[:HAS_IDENTITY]->() RETURN count(m) AS n")[0]["n"]
        == 0
    )
    assert (
        graph.run(
            "MATCH (a:MemberAlias) WHERE NOT (a)-[:REDIRECTS_TO]->(:Member) RETURN count(a) AS n"
        )[0]["n"]
        == 0
    )


def test_member_graph_groups_people_and_rerun_changes_nothing(
    graph: GraphStore, settings: Settings
) -> None:
    load(graph)
    instance = dg.DagsterInstance.ephemeral()
    result = run_identity(settings, instance)
    a = assignment(graph)
    assert a["luma:b1"] == a["luma:b2"] == a["partiful:b3"]
    assert a["luma:a1"] == a["luma:a2"] == a["eventbrite:a3"]
    assert a["luma:r1"] != a["luma:r2"]
    assert a["luma:g1"] != a["luma:g2"]
    assert len(set(a.values())) == 7
    no_dangling(graph)
    # Each step's summary line: counts only, never a person's values.
    said = [
        e.user_message
        for e in instance.all_logs(result.run_id)
        if e.dagster_event is None and e.level == logging.INFO
    ]
    merged = len(PEOPLE) - 7
    for line in (
        f"identity clusters: {len(PEOPLE)} observations in 7 clusters ({merged} merged)",
        "identity members: 7 members (7 new ids, 0 retired, 0 split)",
        "member graph: 7 members written",
    ):
        assert any(m.startswith(line) for m in said), (line, said)
    people_values = {
        str(v)
        for p in PEOPLE
        for k, v in p.items()
        if k not in ("observation_id", "event_id") and v
    }
    assert not [m for m in said for v in people_values if v in m]
    meta = result.asset_materializations_for_node("identity_candidate_pairs")[0].metadata
    assert meta["observations"].value == len(PEOPLE)
    assert (
        sum(b["pairs"] for b in meta["probability_histogram_json"].value)
        == meta["candidate_pairs"].value
    )
    before = snapshot(graph)
    run_identity(settings)
    assert snapshot(graph) == before
    # The import load again (same input) changes nothing either.
    load(graph)
    run_identity(settings)
    assert snapshot(graph) == before


def test_explanations_and_golden_record_in_graph(graph: GraphStore, settings: Settings) -> None:
    load(graph)
    run_identity(settings)
    store = IdentityStore(graph)
    bob = store.get_member(assignment(graph)["luma:b1"])
    assert bob is not None
    assert bob["member"]["display_name"] == "Bob Smith"
    assert bob["member"]["phones"] == ["+12125550101"]
    assert set(bob["member"]["emails"]) == {"bob.smith@gmail.com", "bobsmith+events@gmail.com"}
    assert {i["identity"]["observation_id"] for i in bob["identities"]} == {
        "luma:b1",
        "luma:b2",
        "partiful:b3",
    }
    assert len(bob["explanations"]) == 2
    for ex in bob["explanations"]:
        assert ex["probability"] >= settings.identity_merge_threshold
        assert ex["features"] and all(
            {"feature", "level", "weight"} <= f.keys() for f in ex["features"]
        )
        assert "p=" in ex["evidence"]
    company = [p for p in bob["provenance"] if p["attribute"] == "company" and p["chosen"]]
    assert company == [
        {
            "attribute": "company",
            "chosen": True,
            "count": 1,
            "last_observed_at": company[0]["last_observed_at"],
            "observation_ids": ["luma:b1"],
            "rule": "recency > trust > frequency",
            "sources": ["luma"],
            "value": "Acme",
        }
    ]
    handles = graph.run(
        "MATCH (:Identity {observation_id: 'luma:a1'})-[:HAS_HANDLE]->(h:Handle) RETURN h.platform AS p, h.handle AS h"
    )
    assert handles == [{"p": "instagram", "h": "alicechen"}]


def test_a_handle_cleared_at_the_source_loses_its_link(
    graph: GraphStore, settings: Settings
) -> None:
    load(graph)
    run_identity(settings)
    alice = [dict(p) for p in PEOPLE if p["observation_id"] == "luma:a1"]
    alice[0]["handle_instagram"] = None
    graph.upsert_imports(*frames(alice))  # the re-import of a list where the handle is blank
    run_identity(settings)
    links = graph.run(
        "MATCH (:Identity {observation_id: 'luma:a1'})-[:HAS_HANDLE]->(h:Handle) RETURN h.handle AS h"
    )
    assert links == []
    assert graph.run("MATCH (h:Handle {handle: 'alicechen'}) RETURN count(h) AS n") == [{"n": 0}]


def test_shared_inbox_becomes_a_suggestion(graph: GraphStore, settings: Settings) -> None:
    load(graph)
    run_identity(settings)
    items, total = IdentityStore(graph).list_suggestions(None, 0, 50)
    pairs = {(s["a"], s["b"]) for s in items}
    assert ("luma:r1", "luma:r2") in pairs
    assert total == len(items)


def test_stable_ids_when_records_arrive_and_leave(graph: GraphStore, settings: Settings) -> None:
    load(graph)
    run_identity(settings)
    first = assignment(graph)
    more = [
        *PEOPLE,
        {
            "observation_id": "luma:a4",
            "event_id": "luma:e5",
            "full_name": "Alice Chen",
            "email": "alice.chen@example.com",
        },
    ]
    load(graph, more)
    run_identity(settings)
    second = assignment(graph)
    assert second["luma:a4"] == first["luma:a1"]
    assert {k: second[k] for k in first} == first
    # A record removed upstream: the member keeps its id.
    graph.run("MATCH (i:Identity {observation_id: 'luma:a2'}) DETACH DELETE i")
    run_identity(settings)
    third = assignment(graph)
    assert third["luma:a1"] == first["luma:a1"]
    no_dangling(graph)


def test_decisions_survive_reruns_and_merges_redirect(
    graph: GraphStore, settings: Settings
) -> None:
    load(graph)
    run_identity(settings)
    first = assignment(graph)
    store = IdentityStore(graph)
    store.add_decisions(
        [decision_row("must_link", "luma:r1", "luma:r2", "accept_suggestion", "u1")]
    )
    run_identity(settings)
    second = assignment(graph)
    assert second["luma:r1"] == second["luma:r2"]
    kept = second["luma:r1"]
    retired = ({first["luma:r1"], first["luma:r2"]} - {kept}).pop()
    assert store.resolve_member_id(retired) == (kept, "merged")
    assert store.list_suggestions(None, 0, 50)[1] == 0
    run_identity(settings)
    assert assignment(graph) == second
    no_dangling(graph)


def test_unmerge_is_lossless_and_sticks(graph: GraphStore, settings: Settings) -> None:
    load(graph)
    run_identity(settings)
    store = IdentityStore(graph)
    bob = assignment(graph)["luma:b1"]
    store.add_decisions(
        [
            decision_row("cannot_link", "partiful:b3", "luma:b1", "unmerge", "u1"),
            decision_row("cannot_link", "partiful:b3", "luma:b2", "unmerge", "u1"),
        ]
    )
    re_resolve(graph, [bob], IdentityConfig.from_settings(settings))
    a = assignment(graph)
    assert a["luma:b1"] == a["luma:b2"] == bob
    assert a["partiful:b3"] != bob
    split = store.get_member(a["partiful:b3"])
    assert split is not None
    assert split["member"]["display_name"] == "Bob Smith"
    assert split["member"]["phones"] == ["+12125550101"]
    assert split["member"]["emails"] == []
    assert split["member"]["split_from"] == [bob]
    rest = store.get_member(bob)
    assert rest is not None and rest["member"]["observation_count"] == 2
    assert len(rest["explanations"]) == 1
    no_dangling(graph)
    run_identity(settings)
    assert assignment(graph) == a
    no_dangling(graph)
