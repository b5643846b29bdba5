"""Privacy operations against the real services: export and erasure of one person, and a
resync after erasure that does not bring them back."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from fastapi.testclient import TestClient

from api.app import create_app
from infra.erasure import TOMBSTONE_FILE
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.auth_helpers import auth_headers, dev_settings
from tests.integration.test_identity_graph import run_identity
from tests.integration.test_slice import run_refresh

BOB = "bob@gmail.com"


def _files_mentioning(root: Path, text: str) -> list[str]:
    out = []
    for path in root.rglob("*"):
        if not (path.is_file() and path.suffix in (".json", ".csv")):
            continue
        if text in path.read_text(encoding="utf-8", errors="replace").lower():
            out.append(path.relative_to(root).as_posix())
    return out


def _normalized_mentions(root: Path, text: str) -> int:
    n = 0
    for path in [*(root / "normalized").rglob("*.parquet"), *(root / "combined").glob("*.parquet")]:
        frame = pl.read_parquet(path)
        for col in ("email", "raw"):
            if col in frame.columns:
                n += frame.filter(
                    pl.col(col).str.to_lowercase().str.contains(text, literal=True)
                ).height
    return n


def _bob_identities(graph: GraphStore) -> int:
    return int(graph.run("MATCH (i:Identity {email: $e}) RETURN count(i) AS n", e=BOB)[0]["n"])


def test_export_then_erase_and_a_resync_does_not_bring_them_back(
    graph: GraphStore, figures: FigureStore, services: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert run_refresh(services, data_dir=data).success
    run_identity(services)
    assert _bob_identities(graph) >= 2
    assert _files_mentioning(data / "raw", BOB)
    cfg = dev_settings(services, data_dir=data)
    admin = auth_headers(cfg, role="admin", user_id="admin_1")
    organizer = auth_headers(cfg, role="organizer", user_id="org_1")
    viewer = auth_headers(cfg, role="viewer")
    with TestClient(create_app(cfg)) as c:
        found = c.get("/v1/members", params={"q": BOB}, headers=organizer).json()["items"]
        (bob,) = found
        member_id = bob["member_id"]
        assert c.get("/v1/events", headers=viewer).status_code == 200  # cached, with Bob

        # Export: only admins; everything held, each part with its origin.
        assert (
            c.get(f"/v1/admin/privacy/members/{member_id}/export", headers=organizer).status_code
            == 403
        )
        export = c.get(f"/v1/admin/privacy/members/{member_id}/export", headers=admin)
        assert export.status_code == 200, export.text
        doc = export.json()
        assert doc["member"]["member_id"] == member_id
        assert BOB in {i["identity"].get("email") for i in doc["identities"]}
        assert all(i["identity"]["source"] for i in doc["identities"])
        assert any(i["attendance"] for i in doc["identities"])
        assert doc["raw_records"] and all(
            r["origin"].startswith("raw/") for r in doc["raw_records"]
        )
        assert any(BOB in json.dumps(r["record"]).lower() for r in doc["raw_records"])

        # Erase.
        assert (
            c.post(f"/v1/admin/privacy/members/{member_id}/erase", headers=organizer).status_code
            == 403
        )
        erased = c.post(f"/v1/admin/privacy/members/{member_id}/erase", headers=admin)
        assert erased.status_code == 200, erased.text
        result = erased.json()
        assert result["identities_erased"] == len(doc["identities"])
        assert result["raw_files_rewritten"] >= 1 and result["tombstones"] >= 2
        assert c.get(f"/v1/members/{member_id}", headers=viewer).status_code == 404
        assert c.get("/v1/members", params={"q": BOB}, headers=organizer).json()["items"] == []
        assert c.get("/v1/events", headers=viewer).headers["x-cache"] == "miss"
        assert (
            c.post(f"/v1/admin/privacy/members/{member_id}/erase", headers=admin).status_code == 404
        )

    assert _bob_identities(graph) == 0
    assert _files_mentioning(data / "raw", BOB) == []
    assert _normalized_mentions(data, BOB) == 0
    stones = (data / TOMBSTONE_FILE).read_text()
    assert "bob" not in stones.lower() and len(json.loads(stones)["hashes"]) == result["tombstones"]

    # The platforms still hold Bob: a resync lands his records raw again, but they never
    # reach the normalized store or the graph.
    assert run_refresh(services, data_dir=data).success
    run_identity(services)
    assert _bob_identities(graph) == 0
    assert _normalized_mentions(data, BOB) == 0
    others = graph.run("MATCH (i:Identity) RETURN count(i) AS n")[0]["n"]
    assert others > 0
