"""Property: any sequence of corrections and undos, against real Neo4j and Redis.

Replayed from the stored decisions alone (one resolution of every record with the stored
model), the members are the ones that applying the corrections one by one left; and
every member id ever handed out still answers with a member holding at least one of the
records it held.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from domain.identity.pipeline import cluster_scored, score_candidates
from infra.identity_store import IdentityStore
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from services.identity import thresholds_for
from tests.auth_helpers import auth_headers, dev_settings
from tests.integration.test_identity_graph import PEOPLE, assignment, load, run_identity

RECORDS = sorted(p["observation_id"] for p in PEOPLE)

step = st.one_of(
    st.tuples(st.just("accept"), st.integers(0, 5)),
    st.tuples(st.just("reject"), st.integers(0, 5)),
    st.tuples(st.just("merge"), st.sampled_from(RECORDS), st.sampled_from(RECORDS)),
    st.tuples(st.just("unmerge"), st.sampled_from(RECORDS)),
    st.tuples(st.just("undo"), st.integers(0, 10)),
)


def partition(rows: dict[str, str]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for obs, key in rows.items():
        groups.setdefault(key, set()).add(obs)
    return {frozenset(g) for g in groups.values()}


def replayed(graph: GraphStore, conf: Settings) -> set[frozenset[str]]:
    """Every record resolved at once from the stored model and the decisions in effect."""
    store = IdentityStore(graph)
    observations = store.load_observations()
    ids = observations["observation_id"].to_list()
    model = store.load_model()
    assert model is not None
    scored = score_candidates(
        observations,
        thresholds_for(conf, model),
        model=model,
        stats=store.load_stats(ids),
        related=store.related_context(observations["event_id"].drop_nulls().unique().to_list()),
    )
    clusters = cluster_scored(scored, store.load_decisions())
    return partition({o: str(c) for o, c in clusters.assignment.iter_rows()})


def apply(
    api: TestClient, h: dict[str, str], graph: GraphStore, move: tuple[Any, ...], done: list[str]
) -> list[str]:
    """One correction through the API; returns the member ids the answer names."""
    kind = move[0]
    now = assignment(graph)
    if kind in ("accept", "reject"):
        items = api.get("/v1/merge-suggestions", headers=h).json()["items"]
        if not items:
            return []
        sugg = items[move[1] % len(items)]
        resp = api.post(f"/v1/merge-suggestions/{sugg['suggestion_id']}/{kind}", headers=h)
    elif kind == "merge":
        a, b = now[move[1]], now[move[2]]
        if a == b:
            return []
        resp = api.post(f"/v1/members/{a}/merge", json={"other_member_id": b}, headers=h)
    elif kind == "unmerge":
        member = now[move[1]]
        if sum(1 for m in now.values() if m == member) < 2:
            return []
        resp = api.post(
            f"/v1/members/{member}/unmerge", json={"observation_ids": [move[1]]}, headers=h
        )
    else:
        if not done:
            return []
        resp = api.post(f"/v1/identity-decisions/{done[move[1] % len(done)]}/undo", headers=h)
        if resp.status_code == 409:  # undone already, or superseded: a clear refusal
            assert resp.json()["error"] in ("already_undone", "superseded")
            assert assignment(graph) == now
            return []
    assert resp.status_code in (200, 201), resp.text
    body = resp.json()
    if kind != "undo":
        done.append(body["decision_ids"][0])
    return [*body["members"], *body["redirects"], *body["redirects"].values(), *body["revived"]]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(moves=st.lists(step, min_size=1, max_size=6))
def test_corrections_replay_from_decisions_and_ids_resolve(
    moves: list[tuple[Any, ...]], graph: GraphStore, figures: FigureStore, services: Settings
) -> None:
    graph.delete_all()
    graph.ensure_schema()
    figures.flush_test_db()
    load(graph)
    run_identity(services)
    conf = dev_settings(services)
    h = auth_headers(conf, role="organizer", user_id="org_1")
    ever: dict[str, set[str]] = {}  # id -> records it held when it was handed out

    def note(ids: list[str]) -> None:
        held = assignment(graph)
        for mid in ids:
            records = {o for o, m in held.items() if m == mid}
            ever.setdefault(mid, set()).update(records)

    note(sorted(set(assignment(graph).values())))
    done: list[str] = []
    with TestClient(create_app(conf)) as api:
        for move in moves:
            note(apply(api, h, graph, move, done))
        assert partition(assignment(graph)) == replayed(graph, services)
        for mid, records in ever.items():
            resp = api.get(f"/v1/members/{mid}", headers=h)
            assert resp.status_code == 200, (mid, resp.text)
            now = {i["identity"]["observation_id"] for i in resp.json()["identities"]}
            alias = graph.run(
                "MATCH (a:MemberAlias {member_id: $id}) RETURN a.records AS r", id=mid
            )
            assert now & records, (mid, now, records)
            if alias:  # a retired id points where some of the records it last held are
                assert now & set(alias[0]["r"]), (mid, now, alias[0]["r"])
            else:
                assert resp.json()["member"]["member_id"] == mid
        assert IdentityStore(graph).membership_issues() == []
