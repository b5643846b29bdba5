"""Corrections an organizer can trust, against real Neo4j and Redis: ids that round-trip,
history, undo, and figures flagged stale until the next analytics run."""

from __future__ import annotations

from typing import Any

import dagster as dg
from fastapi.testclient import TestClient

from assets import analytics
from infra.identity_store import IdentityStore
from infra.neo4j_store import GraphStore
from infra.settings import Settings
from orchestration.definitions import build_definitions
from orchestration.sensors import stale_member_metrics
from resources.stores import Neo4jResource
from tests.integration.test_analytics import materialize
from tests.integration.test_identity_graph import assignment, no_dangling, run_identity


def _sensor() -> dg.RunRequest | dg.SkipReason:
    context = dg.build_sensor_context(resources={"neo4j": Neo4jResource()})
    result = stale_member_metrics(context)
    assert isinstance(result, dg.RunRequest | dg.SkipReason)
    return result


def _rossi(api: TestClient, organizer: dict[str, str]) -> dict[str, Any]:
    items = api.get("/v1/merge-suggestions", headers=organizer).json()["items"]
    return next(s for s in items if {s["a"], s["b"]} == {"luma:r1", "luma:r2"})


def _holds_some_record(
    graph: GraphStore, member_id: str, api: TestClient, h: dict[str, str]
) -> None:
    """Every id ever handed out answers with a member holding at least one of its records."""
    body = api.get(f"/v1/members/{member_id}", headers=h)
    assert body.status_code == 200, body.text
    alias = graph.run("MATCH (a:MemberAlias {member_id: $id}) RETURN a.records AS r", id=member_id)
    if alias:
        held = {i["identity"]["observation_id"] for i in body.json()["identities"]}
        assert held & set(alias[0]["r"]), (member_id, held, alias[0]["r"])


def test_undo_accept_restores_both_members_and_ids(
    api: TestClient, organizer: dict[str, str], graph: GraphStore
) -> None:
    before = assignment(graph)
    sugg = _rossi(api, organizer)
    accepted = api.post(f"/v1/merge-suggestions/{sugg['suggestion_id']}/accept", headers=organizer)
    assert accepted.status_code == 200, accepted.text
    (retired,) = accepted.json()["redirects"]
    undo = api.post(
        f"/v1/identity-decisions/{accepted.json()['decision_ids'][0]}/undo", headers=organizer
    )
    assert undo.status_code == 200, undo.text
    body = undo.json()
    assert body["revived"] == [retired]
    assert body["redirects"] == {}
    assert assignment(graph) == before
    again = api.get(f"/v1/members/{retired}", headers=organizer).json()
    assert again["member"]["member_id"] == retired and again.get("redirected_from") is None
    # The suggestion is open again, and a pipeline run agrees with the undo.
    assert _rossi(api, organizer)["suggestion_id"] == sugg["suggestion_id"]
    run_identity(api.app.state.platform.settings)  # type: ignore[attr-defined]
    assert assignment(graph) == before
    no_dangling(graph)


def test_unmerge_after_merge_revives_the_retired_id(
    api: TestClient, organizer: dict[str, str], graph: GraphStore
) -> None:
    a = assignment(graph)
    alice, lena = a["luma:a1"], a["luma:l1"]
    merged = api.post(
        f"/v1/members/{alice}/merge", json={"other_member_id": lena}, headers=organizer
    ).json()
    assert merged["redirects"] == {lena: alice}
    split = api.post(
        f"/v1/members/{alice}/unmerge", json={"observation_ids": ["luma:l1"]}, headers=organizer
    )
    assert split.status_code == 200, split.text
    assert split.json()["revived"] == [lena]
    assert assignment(graph) == a
    for mid in (alice, lena):
        _holds_some_record(graph, mid, api, organizer)
    no_dangling(graph)


def test_retired_id_follows_most_of_its_records(
    api: TestClient, organizer: dict[str, str], graph: GraphStore
) -> None:
    """A retired id that no cluster revives points where most of its records are."""
    a = assignment(graph)
    alice, bob = a["luma:a1"], a["luma:b1"]
    merged = api.post(
        f"/v1/members/{alice}/merge", json={"other_member_id": bob}, headers=organizer
    ).json()
    ((retired, survivor),) = merged["redirects"].items()
    records = sorted(o for o, m in a.items() if m == retired)
    # Split two of the retired member's records off one by one.
    for obs in records[:2]:
        resp = api.post(
            f"/v1/members/{survivor}/unmerge", json={"observation_ids": [obs]}, headers=organizer
        )
        assert resp.status_code == 200, resp.text
    for mid in {*a.values(), *assignment(graph).values()}:
        _holds_some_record(graph, mid, api, organizer)
    no_dangling(graph)


def test_history_lists_decisions_with_evidence_and_runs(
    api: TestClient, organizer: dict[str, str], viewer: dict[str, str], graph: GraphStore
) -> None:
    sugg = _rossi(api, organizer)
    accepted = api.post(
        f"/v1/merge-suggestions/{sugg['suggestion_id']}/accept", headers=organizer
    ).json()
    (member,) = accepted["members"]
    (retired,) = accepted["redirects"]
    resp = api.get(f"/v1/members/{member}/history", headers=organizer)
    assert resp.status_code == 200, resp.text
    history = resp.json()
    assert history["former_ids"] == [retired]
    assert history["records"] == ["luma:r1", "luma:r2"]
    (decision,) = history["decisions"]
    assert decision["action"] == "accept_suggestion" and decision["created_by"] == "org_1"
    assert decision["probability"] == sugg["probability"] and "p=" in decision["evidence"]
    assert {decision["member_a"], decision["member_b"]} == {sugg["member_a"], sugg["member_b"]}
    assert decision["in_effect"] is True
    kinds = [r["kind"] for r in history["runs"]]
    assert kinds == ["pipeline", "correction"]
    assert history["runs"][1]["decision_ids"] == accepted["decision_ids"]
    # The retired id answers with the member it points to.
    assert (
        api.get(f"/v1/members/{retired}/history", headers=organizer).json()["redirected_from"]
        == retired
    )
    undo = api.post(f"/v1/identity-decisions/{decision['decision_id']}/undo", headers=organizer)
    assert undo.status_code == 200
    after = api.get(f"/v1/members/{member}/history", headers=organizer).json()
    (decision,) = after["decisions"]
    assert decision["in_effect"] is False and decision["undone_by"] == "org_1"
    assert [r["kind"] for r in after["runs"]] == ["pipeline", "correction", "undo"]
    # Roles and unknown ids.
    assert api.get(f"/v1/members/{member}/history", headers=viewer).status_code == 403
    missing = api.get("/v1/members/mbr_missing/history", headers=organizer)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_undo_errors_and_idempotency(
    api: TestClient, organizer: dict[str, str], viewer: dict[str, str], graph: GraphStore
) -> None:
    missing = api.post("/v1/identity-decisions/dec_missing/undo", headers=organizer)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    sugg = _rossi(api, organizer)
    rejected = api.post(
        f"/v1/merge-suggestions/{sugg['suggestion_id']}/reject", headers=organizer
    ).json()
    path = f"/v1/identity-decisions/{rejected['decision_ids'][0]}/undo"
    assert api.post(path, headers=viewer).status_code == 403
    keyed = {**organizer, "Idempotency-Key": "undo-reject-rossi-1"}
    first = api.post(path, headers=keyed)
    assert first.status_code == 200, first.text
    replay = api.post(path, headers=keyed)
    assert replay.json() == first.json() and replay.headers["Idempotent-Replayed"] == "true"
    twice = api.post(path, headers=organizer)
    assert twice.status_code == 409 and twice.json()["error"] == "already_undone"
    assert IdentityStore(graph).load_decisions().height == 0
    # The rejected pair is a suggestion again.
    assert _rossi(api, organizer)["suggestion_id"] == sugg["suggestion_id"]


def test_undo_of_a_superseded_decision_is_a_conflict(
    api: TestClient, organizer: dict[str, str], graph: GraphStore
) -> None:
    sugg = _rossi(api, organizer)
    accepted = api.post(
        f"/v1/merge-suggestions/{sugg['suggestion_id']}/accept", headers=organizer
    ).json()
    (member,) = accepted["members"]
    split = api.post(
        f"/v1/members/{member}/unmerge", json={"observation_ids": ["luma:r2"]}, headers=organizer
    ).json()
    resp = api.post(f"/v1/identity-decisions/{accepted['decision_ids'][0]}/undo", headers=organizer)
    assert resp.status_code == 409 and resp.json()["error"] == "superseded"
    # Undoing the unmerge brings the accepted merge back.
    back = api.post(f"/v1/identity-decisions/{split['decision_ids'][0]}/undo", headers=organizer)
    assert back.status_code == 200, back.text
    a = assignment(graph)
    assert a["luma:r1"] == a["luma:r2"] == member


def test_corrected_members_are_flagged_stale_until_analytics_runs(
    api: TestClient, organizer: dict[str, str], graph: GraphStore, services: Settings
) -> None:
    assert materialize([analytics.community_analytics]).success
    a = assignment(graph)
    alice, lena, bob = a["luma:a1"], a["luma:l1"], a["luma:b1"]
    fresh = api.get(f"/v1/members/{alice}", headers=organizer).json()
    assert fresh["metrics_stale"] is False and "net_degree" in fresh["member"]
    merged = api.post(
        f"/v1/members/{alice}/merge", json={"other_member_id": lena}, headers=organizer
    ).json()
    assert merged["metrics_stale"] == [alice]
    stale = api.get(f"/v1/members/{alice}", headers=organizer).json()
    assert stale["metrics_stale"] is True
    figures = api.get(f"/v1/analytics/members/{alice}", headers=organizer).json()
    assert figures["metrics_stale"] is True and figures["metrics"]
    # Dagster is asked for an analytics run, once per new flag.
    request = _sensor()
    assert isinstance(request, dg.RunRequest) and request.run_key
    assert _sensor().run_key == request.run_key  # type: ignore[union-attr]
    # Members the correction did not touch keep current figures.
    assert api.get(f"/v1/members/{bob}", headers=organizer).json()["metrics_stale"] is False
    job = build_definitions(services).resolve_job_def("analytics_refresh")
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
    assert api.get(f"/v1/members/{alice}", headers=organizer).json()["metrics_stale"] is False
    figures = api.get(f"/v1/analytics/members/{alice}", headers=organizer).json()
    assert figures["metrics_stale"] is False
    assert isinstance(_sensor(), dg.SkipReason)
    # A pipeline rerun that changes nothing flags nothing.
    run_identity(services)
    assert api.get(f"/v1/members/{alice}", headers=organizer).json()["metrics_stale"] is False


def test_the_next_run_learns_from_answers(
    api: TestClient, organizer: dict[str, str], graph: GraphStore, services: Settings
) -> None:
    sugg = _rossi(api, organizer)
    resp = api.post(f"/v1/merge-suggestions/{sugg['suggestion_id']}/reject", headers=organizer)
    assert resp.status_code == 200
    labels = IdentityStore(graph).labelled_pairs()
    assert labels.rows() == [("luma:r1", "luma:r2", False)]
    result = run_identity(services)
    meta = result.asset_materializations_for_node("identity_candidate_pairs")[0].metadata
    assert meta["review_labels_used"].value == 1
    model = IdentityStore(graph).load_model()
    assert model is not None and model.review_labels == 1
    # The rejected kind of pair is counted; the stored model carries it to corrections.
    assert list(model.review_answers.values()) == [(1, 0)]
    # Undone answers stop teaching.
    api.post(f"/v1/identity-decisions/{resp.json()['decision_ids'][0]}/undo", headers=organizer)
    assert IdentityStore(graph).labelled_pairs().height == 0
    run_identity(services)
    model = IdentityStore(graph).load_model()
    assert model is not None and model.review_answers == {}
