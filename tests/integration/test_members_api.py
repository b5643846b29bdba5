"""The members API against real Neo4j and Redis: reads, organizer corrections, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from infra.identity_store import IdentityStore
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from services import corrections
from tests.auth_helpers import auth_headers, dev_settings
from tests.integration.test_api import _free_port
from tests.integration.test_identity_graph import assignment, load, no_dangling, run_identity


def test_list_and_search_members(api: TestClient, viewer: dict[str, str]) -> None:
    resp = api.get("/v1/members", params={"limit": 3}, headers=viewer)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["total"] == 7 and len(body["items"]) == 3
    page2 = api.get("/v1/members", params={"limit": 3, "offset": 3}, headers=viewer).json()
    assert not {m["member_id"] for m in body["items"]} & {m["member_id"] for m in page2["items"]}
    by_name = api.get("/v1/members", params={"q": "alice"}, headers=viewer).json()
    assert [m["display_name"] for m in by_name["items"]] == ["Alice Chen"]
    # Viewers cannot find people by contact details; organizers can.
    by_email = api.get("/v1/members", params={"q": "bobsmith+events@"}, headers=viewer).json()
    assert by_email["items"] == [] and by_email["total"] == 0
    organizer = auth_headers(
        api.app.state.platform.settings,  # type: ignore[attr-defined]
        role="organizer",
        user_id="org_1",
    )
    found = api.get("/v1/members", params={"q": "bobsmith+events@"}, headers=organizer).json()
    assert [m["display_name"] for m in found["items"]] == ["Bob Smith"]


def test_viewers_see_contact_details_masked(
    api: TestClient, viewer: dict[str, str], graph: GraphStore
) -> None:
    body = api.get("/v1/members", params={"limit": 500}, headers=viewer).json()
    assert body["contact_details"] == "masked"
    text = json.dumps(body)
    assert "bobsmith" not in text and "alice.chen@" not in text
    bob = next(m for m in body["items"] if m["display_name"] == "Bob Smith")
    assert bob["email"].startswith("b***@") and "@" in bob["email"]
    for m in body["items"]:
        for e in m.get("emails") or []:
            local = e.split("@")[0]
            assert local.endswith("***") and len(local) == 4
        if m.get("phone"):
            assert "•••" in m["phone"] and m["phone"][-4:].isdigit()
    detail = api.get(f"/v1/members/{bob['member_id']}", headers=viewer).json()
    assert detail["contact_details"] == "masked"
    raw = json.dumps(detail)
    assert "bobsmith" not in raw and "***@" in raw
    for ident in detail["identities"]:
        email = ident["identity"].get("email")
        assert email is None or "***@" in email
    for p in detail["provenance"]:
        if p["attribute"] in ("email", "emails", "phone", "phones"):
            assert "***" in p["value"] or "•••" in p["value"]
    # Nothing unmasked was read, so nothing is in the access log.
    assert (
        IdentityStore(graph).graph.run("MATCH (x:ContactAccess) RETURN count(x) AS n")[0]["n"] == 0
    )


def test_organizer_contact_reads_are_access_logged(
    api: TestClient, organizer: dict[str, str], graph: GraphStore, services: Settings
) -> None:
    members = api.get("/v1/members", params={"limit": 500}, headers=organizer).json()
    assert members["contact_details"] == "visible"
    bob = next(m for m in members["items"] if m["display_name"] == "Bob Smith")
    assert "bobsmith" in json.dumps(bob)
    detail = api.get(f"/v1/members/{bob['member_id']}", headers=organizer)
    assert detail.json()["contact_details"] == "visible"
    admin = auth_headers(dev_settings(services), role="admin", user_id="admin_1")
    log = api.get(
        "/v1/admin/contact-access", params={"member_id": bob["member_id"]}, headers=admin
    ).json()["items"]
    assert [e["route"] for e in log] == ["/v1/members/{member_id}", "/v1/members"]
    assert all(e["by"] == "org_1" and e["role"] == "organizer" for e in log)
    assert log[0]["member_ids"] == [bob["member_id"]]
    assert log[0]["request_id"] == detail.headers["x-request-id"]
    # Who, whose, when; never the values.
    stored = json.dumps(graph.run("MATCH (x:ContactAccess) RETURN properties(x) AS p"), default=str)
    assert "@" not in stored and "bobsmith" not in stored
    # Organizers may not read the log; viewers' reads never land in it.
    assert api.get("/v1/admin/contact-access", headers=organizer).status_code == 403


def test_get_member_with_provenance_events_and_explanations(
    api: TestClient, viewer: dict[str, str], graph: GraphStore
) -> None:
    bob = assignment(graph)["luma:b1"]
    resp = api.get(f"/v1/members/{bob}", headers=viewer)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["member"]["member_id"] == bob
    assert body["member"]["display_name"] == "Bob Smith"
    assert len(body["identities"]) == 3
    assert {e["event_id"] for e in body["events"]} == {"luma:e1", "luma:e2", "partiful:e3"}
    assert all(e["status"] == "attended" for e in body["events"])
    assert len(body["explanations"]) == 2
    name = [p for p in body["provenance"] if p["attribute"] == "display_name" and p["chosen"]]
    assert name[0]["observation_ids"] == ["luma:b2", "partiful:b3"]


def test_unknown_member_and_auth_errors(api: TestClient, viewer: dict[str, str]) -> None:
    resp = api.get("/v1/members/mbr_nope", headers=viewer)
    assert resp.status_code == 404
    assert resp.json()["error"] == "not_found"
    assert api.get("/v1/members").status_code == 401
    assert api.get("/v1/merge-suggestions", headers=viewer).status_code == 403
    resp = api.post("/v1/members/x/merge", json={"other_member_id": "y"}, headers=viewer)
    assert resp.status_code == 403


def test_accept_suggestion_merges_and_old_id_redirects(
    api: TestClient, organizer: dict[str, str], graph: GraphStore
) -> None:
    sugg = api.get("/v1/merge-suggestions", headers=organizer).json()["items"]
    rossi = next(s for s in sugg if {s["a"], s["b"]} == {"luma:r1", "luma:r2"})
    assert rossi["features"] and "p=" in rossi["evidence"]
    before = assignment(graph)
    resp = api.post(f"/v1/merge-suggestions/{rossi['suggestion_id']}/accept", headers=organizer)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    after = assignment(graph)
    assert after["luma:r1"] == after["luma:r2"]
    assert result["members"] == [after["luma:r1"]]
    (retired,) = {before["luma:r1"], before["luma:r2"]} - {after["luma:r1"]}
    assert result["redirects"] == {retired: after["luma:r1"]}
    old = api.get(f"/v1/members/{retired}", headers=organizer).json()
    assert old["member"]["member_id"] == after["luma:r1"]
    assert old["redirected_from"] == retired and old["redirect_reason"] == "merged"
    assert any(e["reason"] == "must_link" for e in old["explanations"])
    again = api.post(f"/v1/merge-suggestions/{rossi['suggestion_id']}/accept", headers=organizer)
    assert again.status_code == 404
    no_dangling(graph)
    # The decision is applied again by the pipeline.
    run_identity(api.app.state.platform.settings)  # type: ignore[attr-defined]
    assert assignment(graph) == after


def test_reject_suggestion_sticks(
    api: TestClient, organizer: dict[str, str], graph: GraphStore, services: Settings
) -> None:
    sugg = api.get("/v1/merge-suggestions", headers=organizer).json()["items"]
    rossi = next(s for s in sugg if {s["a"], s["b"]} == {"luma:r1", "luma:r2"})
    resp = api.post(f"/v1/merge-suggestions/{rossi['suggestion_id']}/reject", headers=organizer)
    assert resp.status_code == 200, resp.text
    left = api.get("/v1/merge-suggestions", headers=organizer).json()["items"]
    assert all({s["a"], s["b"]} != {"luma:r1", "luma:r2"} for s in left)
    run_identity(services)
    left = api.get("/v1/merge-suggestions", headers=organizer).json()["items"]
    assert all({s["a"], s["b"]} != {"luma:r1", "luma:r2"} for s in left)
    decisions = IdentityStore(graph).load_decisions()
    assert decisions.select("kind", "a", "b").rows() == [("cannot_link", "luma:r1", "luma:r2")]


def test_merge_then_unmerge_members(
    api: TestClient, organizer: dict[str, str], graph: GraphStore, services: Settings
) -> None:
    a = assignment(graph)
    alice, lena = a["luma:a1"], a["luma:l1"]
    resp = api.post(f"/v1/members/{alice}/merge", json={"other_member_id": lena}, headers=organizer)
    assert resp.status_code == 200, resp.text
    merged = assignment(graph)
    assert merged["luma:l1"] == merged["luma:a1"] == alice
    resp = api.post(
        f"/v1/members/{alice}/unmerge", json={"observation_ids": ["luma:l1"]}, headers=organizer
    )
    assert resp.status_code == 200, resp.text
    split = assignment(graph)
    assert split["luma:a1"] == alice
    assert split["luma:l1"] != alice
    lena_now = api.get(f"/v1/members/{split['luma:l1']}", headers=organizer).json()
    assert lena_now["member"]["display_name"] == "Lena Fischer"
    assert lena_now["member"]["emails"] == ["lena@fischer.de"]
    alice_now = api.get(f"/v1/members/{alice}", headers=organizer).json()
    assert alice_now["member"]["emails"] == ["alice.chen@example.com"]
    no_dangling(graph)
    run_identity(services)
    assert assignment(graph) == split


def test_must_and_cannot_link_observations(
    api: TestClient, organizer: dict[str, str], graph: GraphStore
) -> None:
    resp = api.post(
        "/v1/identity-decisions",
        json={
            "kind": "cannot_link",
            "observation_id": "luma:a1",
            "other_observation_id": "luma:a2",
        },
        headers=organizer,
    )
    assert resp.status_code == 201, resp.text
    a = assignment(graph)
    assert a["luma:a1"] != a["luma:a2"]
    assert len(resp.json()["members"]) == 2
    resp = api.post(
        "/v1/identity-decisions",
        json={"kind": "must_link", "observation_id": "luma:g1", "other_observation_id": "luma:g2"},
        headers=organizer,
    )
    assert resp.status_code == 201
    a = assignment(graph)
    assert a["luma:g1"] == a["luma:g2"]
    no_dangling(graph)


@pytest.mark.parametrize(
    ("path", "body", "code", "error"),
    [
        ("/v1/members/{alice}/merge", {"other_member_id": "{alice}"}, 409, "invalid_decision"),
        ("/v1/members/{alice}/merge", {"other_member_id": "mbr_missing"}, 404, "not_found"),
        ("/v1/members/mbr_missing/unmerge", {"observation_ids": ["luma:a1"]}, 404, "not_found"),
        ("/v1/members/{alice}/unmerge", {"observation_ids": ["luma:b1"]}, 422, "not_in_member"),
        (
            "/v1/members/{alice}/unmerge",
            {"observation_ids": ["luma:a1", "luma:a2", "eventbrite:a3"]},
            422,
            "invalid_decision",
        ),
        ("/v1/members/{alice}/unmerge", {"observation_ids": []}, 422, "invalid_request"),
        (
            "/v1/identity-decisions",
            {"kind": "must_link", "observation_id": "luma:a1", "other_observation_id": "luma:a1"},
            400,
            "invalid_decision",
        ),
        (
            "/v1/identity-decisions",
            {"kind": "must_link", "observation_id": "luma:a1", "other_observation_id": "nope:1"},
            404,
            "not_found",
        ),
        (
            "/v1/identity-decisions",
            {"kind": "maybe", "observation_id": "luma:a1", "other_observation_id": "luma:b1"},
            422,
            "invalid_request",
        ),
        ("/v1/merge-suggestions/sug_missing/accept", None, 404, "not_found"),
    ],
)
def test_bad_requests_are_clear_4xx(
    api: TestClient,
    organizer: dict[str, str],
    graph: GraphStore,
    path: str,
    body: dict[str, object] | None,
    code: int,
    error: str,
) -> None:
    alice = assignment(graph)["luma:a1"]
    before = assignment(graph)
    if body is not None:
        body = {
            k: (v.replace("{alice}", alice) if isinstance(v, str) else v) for k, v in body.items()
        }
    resp = api.post(path.replace("{alice}", alice), json=body, headers=organizer)
    assert resp.status_code == code, resp.text
    assert resp.json()["error"] == error
    assert assignment(graph) == before


def test_review_queue_puts_the_largest_expected_gain_first(
    api: TestClient, organizer: dict[str, str]
) -> None:
    items = api.get("/v1/merge-suggestions", headers=organizer).json()["items"]
    assert items, "the fixture holds suggestions"
    gains = [s["expected_gain"] for s in items]
    assert gains == sorted(gains, reverse=True)
    for s in items:
        p = s["probability"]
        assert s["expected_gain"] == pytest.approx(s["records_joined"] * 4 * p * (1 - p), abs=1e-5)
    for s in items:
        sizes = []
        for side in ("member_a", "member_b"):
            member = api.get(f"/v1/members/{s[side]}", headers=organizer).json()
            sizes.append(len(member["identities"]))
        assert [s["records_a"], s["records_b"]] == sizes
        assert s["records_joined"] == sum(sizes)


def test_idempotency_key_makes_a_retry_safe(
    api: TestClient, organizer: dict[str, str], graph: GraphStore
) -> None:
    a = assignment(graph)
    alice, lena = a["luma:a1"], a["luma:l1"]
    keyed = {**organizer, "Idempotency-Key": "merge-alice-lena-0001"}
    first = api.post(f"/v1/members/{alice}/merge", json={"other_member_id": lena}, headers=keyed)
    assert first.status_code == 200, first.text
    decisions = IdentityStore(graph).load_decisions().height
    again = api.post(f"/v1/members/{alice}/merge", json={"other_member_id": lena}, headers=keyed)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert IdentityStore(graph).load_decisions().height == decisions
    other = api.post(
        f"/v1/members/{alice}/unmerge", json={"observation_ids": ["luma:l1"]}, headers=keyed
    )
    assert other.status_code == 409 and other.json()["error"] == "idempotency_key_reused"


def test_retry_after_a_failure_part_way_never_duplicates_a_decision(
    api: TestClient, organizer: dict[str, str], graph: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The action dies after its decisions are stored (as if the process were killed before
    the recomputation); the retry with the same key completes it without a second copy."""
    sugg = api.get("/v1/merge-suggestions", headers=organizer).json()["items"]
    rossi = next(s for s in sugg if {s["a"], s["b"]} == {"luma:r1", "luma:r2"})
    real = corrections.re_resolve
    calls = {"n": 0}

    def dies_once(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("killed part-way")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(corrections, "re_resolve", dies_once)
    keyed = {**organizer, "Idempotency-Key": "accept-rossi-0001"}
    path = f"/v1/merge-suggestions/{rossi['suggestion_id']}/accept"
    failed = api.post(path, headers=keyed)
    assert failed.status_code == 500 and failed.json()["error"] == "internal_error"
    assert IdentityStore(graph).load_decisions().height == 1  # stored before the failure
    retry = api.post(path, headers=keyed)
    assert retry.status_code == 200, retry.text
    after = assignment(graph)
    assert after["luma:r1"] == after["luma:r2"]
    assert IdentityStore(graph).load_decisions().height == 1
    assert (
        retry.json()["decision_ids"]
        == IdentityStore(graph).load_decisions()["decision_id"].to_list()
    )
    no_dangling(graph)


def test_unmerge_size_is_capped(
    graph: GraphStore, figures: FigureStore, services: Settings
) -> None:
    load(graph)
    run_identity(services)
    cfg = dev_settings(services, unmerge_max_decisions=1)
    bob = assignment(graph)["luma:b1"]
    with TestClient(create_app(cfg)) as c:
        resp = c.post(
            f"/v1/members/{bob}/unmerge",
            json={"observation_ids": ["luma:b1"]},
            headers=auth_headers(cfg, role="organizer"),
        )
    assert resp.status_code == 422 and resp.json()["error"] == "too_many_decisions"
    assert IdentityStore(graph).load_decisions().height == 0


def test_corrections_and_reads_work_while_redis_is_away(
    graph: GraphStore, figures: FigureStore, services: Settings, tmp_path: Path
) -> None:
    load(graph)
    run_identity(services)
    port = _free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
         "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        cfg = dev_settings(services, redis_url=f"redis://127.0.0.1:{port}/0")
        a = assignment(graph)
        with TestClient(create_app(cfg)) as c:
            viewer = auth_headers(cfg)
            org = auth_headers(cfg, role="organizer", user_id="org_1")
            assert c.get("/v1/members", headers=viewer).headers["x-cache"] == "miss"
            proc.terminate()
            proc.wait(timeout=10)
            merged = c.post(
                f"/v1/members/{a['luma:a1']}/merge",
                json={"other_member_id": a["luma:l1"]},
                headers={**org, "Idempotency-Key": "merge-during-outage-1"},
            )
            assert merged.status_code == 200, merged.text
            listed = c.get("/v1/members", params={"limit": 500}, headers=viewer)
            assert listed.status_code == 200
            assert c.get("/health").json()["status"] == "degraded"
        assert assignment(graph)["luma:l1"] == assignment(graph)["luma:a1"]
        assert IdentityStore(graph).load_decisions().height >= 1
    finally:
        if proc.poll() is None:
            proc.kill()
