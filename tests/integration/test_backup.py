"""Backups against real services: the round trip, verification in an empty Neo4j started
for the purpose, tampering detected, retention."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from infra import backup
from infra.crypto import new_key
from infra.neo4j_server import Neo4jLocal
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.integration.test_identity_graph import load, run_identity


@pytest.fixture(scope="module")
def verify_server(services: Settings) -> Iterator[None]:
    """One empty Neo4j for the module's verifications (each verification empties it
    again); a backup run alone starts and stops its own."""
    vsettings = services.model_copy(
        update={
            "neo4j_uri": services.backup_verify_neo4j_uri,
            "neo4j_heap": services.backup_verify_heap,
            "neo4j_pagecache": "64m",
            "state_dir": services.state_path / "backup-verify",
        }
    )
    local = Neo4jLocal(vsettings)
    shutil.rmtree(local.home / "data", ignore_errors=True)
    local.up(log=lambda _: None)
    yield
    local.down()
    shutil.rmtree(local.home / "data", ignore_errors=True)


def _settings(settings: Settings, tmp_path: Path, keys: list[str]) -> Settings:
    return settings.model_copy(
        update={
            "backup_dir": tmp_path / "backups",
            "data_dir": tmp_path / "data",
            "encryption_keys": [SecretStr(k) for k in keys],
        }
    )


def _populate(graph: GraphStore, figures: FigureStore, settings: Settings, data: Path) -> None:
    load(graph)
    run_identity(settings)
    graph.run(
        "CREATE (:IdentityDecision {decision_id: 'd1', kind: 'cannot_link', a: 'luma:a1', "
        "b: 'luma:b1', created_at: datetime('2026-10-01T10:00:00.123456789+02:00'), "
        "day: date('2026-10-01'), wait: duration('P1DT2H'), tags: ['x', 'y'], score: 0.25})"
    )
    figures.put_event_guest_counts({"luma:e1": 3, "luma:e2": 2})
    figures.put_json(figures.keys.community_summary(), {"members": 4})
    figures.r.zadd(figures.keys.snapshots_index(), {"2026-10": 202610})
    figures.r.set(figures.keys.rate_limit("someone"), "1")  # API state: not backed up
    (data / "normalized" / "events" / "luma").mkdir(parents=True)
    (data / "normalized" / "events" / "luma" / "exports.parquet").write_bytes(b"PAR1-not-real")
    (data / "combined").mkdir()
    (data / "combined" / "events.parquet").write_bytes(b"PAR1-combined")


def test_backup_round_trip_encrypted_and_verified(
    graph: GraphStore, figures: FigureStore, settings: Settings, verify_server: None, tmp_path: Path
) -> None:
    s = _settings(settings, tmp_path, [new_key()])
    _populate(graph, figures, s, s.data_path)
    before = backup.graph_digest(graph.driver, graph.database)
    labels = before["labels"]
    assert labels["Member"] > 0 and labels["IdentityModel"] == 1 and labels["IdentityDecision"] == 1
    result = backup.run_backup(s, log=lambda _: None)
    manifest = result["manifest"]
    assert manifest["verified"]["content_hash"] == before["content_hash"]
    assert manifest["graph"]["nodes"] == before["nodes"] > 0
    assert manifest["encryption_key_id"] is not None
    folder = Path(result["folder"])
    # Encrypted at rest: no member's address appears in the stored files.
    for name in (backup.GRAPH_FILE, backup.REDIS_FILE, backup.STORE_FILE):
        assert (folder / name).read_bytes()[:4] == b"CPE1"

    # Lose everything, then restore.
    graph.delete_all()
    figures.flush_test_db()
    shutil.rmtree(s.data_path)
    restored = backup.restore_backup(s, folder, log=lambda _: None)
    assert restored["graph"]["content_hash"] == before["content_hash"]
    after = backup.graph_digest(graph.driver, graph.database)
    assert after == before
    decision = graph.run("MATCH (d:IdentityDecision) RETURN d.created_at AS t, d.wait AS w")[0]
    assert decision["t"].iso_format() == "2026-10-01T10:00:00.123456789+02:00"
    assert figures.event_guest_counts() == {"luma:e1": 3, "luma:e2": 2}
    assert figures.get_json(figures.keys.community_summary()) == {"members": 4}
    assert figures.r.zscore(figures.keys.snapshots_index(), "2026-10") == 202610
    assert not figures.r.exists(figures.keys.rate_limit("someone"))
    assert (s.data_path / "combined" / "events.parquet").read_bytes() == b"PAR1-combined"

    # A graph that holds data is replaced only on request.
    with pytest.raises(backup.BackupError, match="--force"):
        backup.restore_backup(s, folder, log=lambda _: None)
    assert backup.restore_backup(s, folder, force=True, log=lambda _: None)["graph"] == after

    # Without the key the backup cannot be read.
    with pytest.raises(Exception, match="no configured key"):
        backup.load_files(folder, _settings(settings, tmp_path, [new_key()]).key_ring())


def test_tampered_or_unverifiable_backups_fail(
    graph: GraphStore, figures: FigureStore, settings: Settings, verify_server: None, tmp_path: Path
) -> None:
    s = _settings(settings, tmp_path, [])
    load(graph)
    folder = backup.create_backup(s, log=lambda _: None)
    # A manifest whose hash does not match what the restore gives: verification fails.
    manifest = json.loads((folder / backup.MANIFEST).read_text())
    manifest["graph"]["content_hash"] = "0" * 64
    (folder / backup.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupError, match="failed verification"):
        backup.verify_backup(s, folder, log=lambda _: None)
    assert backup.read_manifest(folder)["verified"] is None
    # The verification server was emptied again.
    vs = s.model_copy(update={"neo4j_uri": s.backup_verify_neo4j_uri})
    check = GraphStore.from_settings(vs)
    try:
        assert backup.data_node_count(check.driver, "neo4j") == 0
    finally:
        check.close()
    # A damaged file is caught by its checksum before anything is restored.
    blob = bytearray((folder / backup.GRAPH_FILE).read_bytes())
    blob[-1] ^= 0xFF
    (folder / backup.GRAPH_FILE).write_bytes(bytes(blob))
    graph.delete_all()
    with pytest.raises(backup.BackupError, match="checksum"):
        backup.restore_backup(s, folder, log=lambda _: None)
    assert backup.data_node_count(graph.driver, graph.database) == 0


def test_retention_keeps_the_newest_verified(settings: Settings, tmp_path: Path) -> None:
    s = _settings(settings, tmp_path, []).model_copy(update={"backup_keep": 2})
    root = s.path(s.backup_dir)
    names = ["20260101T000000Z", "20260102T000000Z", "20260103T000000Z", "20260104T000000Z"]
    for i, name in enumerate(names):
        (root / name).mkdir(parents=True)
        verified = None if i == 1 else {"at": name}
        (root / name / backup.MANIFEST).write_text(
            json.dumps({"format": backup.FORMAT, "verified": verified})
        )
    (root / ".20260103T120000Z.partial").mkdir()  # interrupted: removed
    (root / ".20260106T000000Z.partial").mkdir()  # may be in progress: kept
    (root / "20260105T000000Z").mkdir()  # failed, newer than the newest verified: kept
    (root / "20260105T000000Z" / backup.MANIFEST).write_text(
        json.dumps({"format": backup.FORMAT, "verified": None})
    )
    removed = {p.name for p in backup.prune(s)}
    assert removed == {"20260101T000000Z", "20260102T000000Z", ".20260103T120000Z.partial"}
    assert sorted(p.name for p in root.iterdir()) == [
        ".20260106T000000Z.partial",
        "20260103T000000Z",
        "20260104T000000Z",
        "20260105T000000Z",
    ]


def test_backup_job_runs_verified_and_records_success(
    graph: GraphStore,
    figures: FigureStore,
    verify_server: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dagster as dg

    from infra.redis_keys import RedisKeys
    from infra.run_status import RunStatusStore
    from orchestration.operations import backup_job, record_failure

    load(graph)
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    result = backup_job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
    assert result.success
    meta = result.output_for_node("backup_and_verify")
    assert (Path(meta) / backup.MANIFEST).exists()
    assert backup.read_manifest(Path(meta))["verified"]["nodes"] > 0
    # The failure recorder writes where /health reads.
    record_failure(Settings(), "refresh_all", "run-1", "imported_graph", "ServiceUnavailable")
    store = RunStatusStore(figures.r, RedisKeys(Settings().redis_key_prefix))
    assert store.failures()["refresh_all"].step == "imported_graph"
