"""The raw landing encrypted at rest: real syncs against the platform fakes write it, replay,
rotation and privacy erasure read it, and an altered file is refused."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from infra.crypto import MAGIC, DecryptionError, KeyRing, RawLanding, new_key
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from ingest.connectors.replay import replay_fetch
from ingest.connectors.sync import sync_source
from ingest.landing import DataStore
from tests.auth_helpers import auth_headers, dev_settings
from tests.integration.test_identity_graph import run_identity
from tests.integration.test_slice import FakeApis, run_refresh, start_fakes

BOB = "bob@gmail.com"


@pytest.fixture()
def apis() -> Iterator[FakeApis]:
    fakes = start_fakes()
    yield fakes
    fakes.luma_server.stop()
    fakes.eventbrite_server.stop()


def _sync_all(apis: FakeApis, settings: Settings, store: DataStore) -> None:
    cfg = apis.world.config
    end = cfg.start + timedelta(days=cfg.days - 1)
    run = apis.settings(settings, sync_max_attempts=2)
    for source in ("luma", "eventbrite"):
        sync_source(source, run, store, None, cfg.start, end, full=True)


def _landed(root: Path) -> list[Path]:
    return list(RawLanding(root, KeyRing(())).files())


def _manifests(root: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted((root / "raw").rglob("manifest.json"))]


def test_without_keys_the_landing_stays_clear_and_says_so(
    apis: FakeApis, settings: Settings, tmp_path: Path
) -> None:
    store = DataStore(tmp_path, KeyRing(()))
    _sync_all(apis, settings, store)
    files = _landed(tmp_path)
    assert files and not any(p.read_bytes().startswith(MAGIC) for p in files)
    assert all(json.loads(p.read_text()) for p in files)  # plain JSON pages
    assert [(m["encrypted"], m["encryption_key_id"]) for m in _manifests(tmp_path)] == [
        (False, None),
        (False, None),
    ]


def test_encrypted_landing_round_trips_and_replays_to_the_same_tables(
    apis: FakeApis, settings: Settings, tmp_path: Path
) -> None:
    """Pages are written sealed (no record readable on disk), read back byte for byte, and
    a replay of the encrypted fetches rebuilds exactly the live sync's day files."""
    ring = KeyRing.from_texts([new_key()])
    clear = DataStore(tmp_path / "clear", KeyRing(()))
    live = DataStore(tmp_path / "live", ring)
    _sync_all(apis, settings, clear)
    _sync_all(apis, settings, live)

    sealed = _landed(live.root)
    assert len(sealed) == len(_landed(clear.root)) > 0
    emails = [
        str(g["guest"]["email"])
        for gs in apis.world.luma_guests.values()
        for g in gs
        if g.get("guest", {}).get("email")
    ]
    assert emails
    for path in sealed:
        blob = path.read_bytes()
        assert blob.startswith(MAGIC)
        assert not any(e.encode() in blob for e in emails[:50])
    assert {m["encryption_key_id"] for m in _manifests(live.root)} == {ring.current_id}
    # Decrypted, each page is the clear landing's page byte for byte (same fake, same data).
    reader = live.raw()
    by_name = {p.name: p for p in _landed(clear.root)}
    for path in sealed:
        assert reader.read(path) == by_name[path.name].read_bytes(), path.name

    # Replay from a copy of the encrypted raw folder only.
    rebuilt = DataStore(tmp_path / "rebuilt", ring)
    shutil.copytree(live.root / "raw", rebuilt.root / "raw")
    for folder in sorted(p.parent for p in (rebuilt.root / "raw").rglob("manifest.json")):
        replay_fetch(rebuilt, folder)
    for source in ("luma", "eventbrite"):
        assert rebuilt.days(source) == live.days(source) == clear.days(source)
        for day in live.days(source):
            a, b = live.read_day(source, day), rebuilt.read_day(source, day)
            assert a is not None and b is not None
            for table in ("events", "observations", "attendance", "quarantine"):
                assert getattr(a, table).equals(getattr(b, table)), (source, day, table)


def test_an_altered_byte_or_header_fails_with_the_file_named(
    apis: FakeApis, settings: Settings, tmp_path: Path
) -> None:
    ring = KeyRing.from_texts([new_key()])
    store = DataStore(tmp_path, ring)
    _sync_all(apis, settings, store)
    pages = sorted(p for p in _landed(tmp_path) if p.name.startswith("guests-"))
    victim = pages[0]
    rel = victim.relative_to(tmp_path).as_posix()
    original = victim.read_bytes()

    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    victim.write_bytes(bytes(flipped))
    with pytest.raises(DecryptionError, match=f"{rel}: data was altered"):
        store.raw().read(victim)
    # Replay refuses instead of quarantining garbage as a malformed page.
    with pytest.raises(DecryptionError):
        replay_fetch(store, victim.parent)

    # A header stripped so the file looks clear: the fetch was written sealed, so refused.
    victim.write_bytes(original[len(MAGIC) :])
    with pytest.raises(DecryptionError, match="stored in clear in a fetch written encrypted"):
        store.raw().read(victim)

    # Another install's key: named as unknown, not decrypted.
    victim.write_bytes(original)
    stranger = RawLanding(tmp_path, KeyRing.from_texts([new_key()]))
    with pytest.raises(DecryptionError, match="no configured key has id"):
        stranger.read(victim)
    assert store.raw().read(victim)  # untouched file reads again


def test_rotation_re_encrypts_the_landing_so_the_old_key_can_go(
    apis: FakeApis, settings: Settings, tmp_path: Path
) -> None:
    old, new = new_key(), new_key()
    # One fetch written in clear before keys were set, one under the old key.
    _sync_all(apis, settings, DataStore(tmp_path, KeyRing(())))
    _sync_all(apis, settings, DataStore(tmp_path, KeyRing.from_texts([old])))
    files = _landed(tmp_path)
    before = {p: RawLanding(tmp_path, KeyRing.from_texts([old])).read(p) for p in files}
    assert sum(1 for p in files if not p.read_bytes().startswith(MAGIC)) == len(files) // 2

    # The new key alone cannot read the old key's files.
    with pytest.raises(DecryptionError):
        RawLanding(tmp_path, KeyRing.from_texts([new])).rotate(log=lambda _: None)

    both = KeyRing.from_texts([new, old])
    assert RawLanding(tmp_path, both).rotate(log=lambda _: None) == len(files)
    only_new = RawLanding(tmp_path, KeyRing.from_texts([new]))
    assert {p: only_new.read(p) for p in files} == before
    assert all(p.read_bytes().startswith(MAGIC) for p in files)
    assert {m["encryption_key_id"] for m in _manifests(tmp_path)} == {only_new.ring.current_id}
    assert all(m["encrypted"] for m in _manifests(tmp_path))
    # Nothing left to do the second time; the old key alone now reads nothing.
    assert RawLanding(tmp_path, both).rotate(log=lambda _: None) == 0
    with pytest.raises(DecryptionError, match="no configured key has id"):
        RawLanding(tmp_path, KeyRing.from_texts([old])).read(files[0])


def test_rotate_keys_command_covers_the_raw_landing(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    old, new = new_key(), new_key()
    fetch = DataStore(tmp_path / "data", KeyRing.from_texts([old])).raw_fetch("luma")
    fetch.sink("guests-evt-x-p0000", '{"entries": []}')
    fetch.manifest(source="luma")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("ENCRYPTION_KEYS", json.dumps([new, old]))
    result = CliRunner().invoke(app, ["rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "raw landing: 1 of 1 files" in result.output
    page = next(iter(_landed(tmp_path / "data")))
    assert RawLanding(tmp_path / "data", KeyRing.from_texts([new])).read(page) == b'{"entries": []}'


def test_privacy_export_and_erasure_work_on_an_encrypted_landing(
    graph: GraphStore,
    figures: FigureStore,
    services: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = new_key()
    ring = KeyRing.from_texts([key])
    monkeypatch.setenv("ENCRYPTION_KEYS", json.dumps([key]))  # the pipeline's DataStore
    data = tmp_path / "data"
    assert run_refresh(services, data_dir=data).success
    run_identity(services)
    landing = RawLanding(data, ring)
    files = list(landing.files())
    assert files and all(p.read_bytes().startswith(MAGIC) for p in files)
    assert [p for p in files if BOB.encode() in landing.read(p).lower()]

    cfg = dev_settings(services, data_dir=data, encryption_keys=[SecretStr(key)])
    admin = auth_headers(cfg, role="admin", user_id="admin_1")
    organizer = auth_headers(cfg, role="organizer", user_id="org_1")
    with TestClient(create_app(cfg)) as c:
        (bob,) = c.get("/v1/members", params={"q": BOB}, headers=organizer).json()["items"]
        member_id = bob["member_id"]
        doc = c.get(f"/v1/admin/privacy/members/{member_id}/export", headers=admin).json()
        assert doc["raw_records"]
        assert all(r["origin"].startswith("raw/") for r in doc["raw_records"])
        assert BOB in json.dumps(doc["raw_records"]).lower()
        erased = c.post(f"/v1/admin/privacy/members/{member_id}/erase", headers=admin)
        assert erased.status_code == 200, erased.text
        assert erased.json()["raw_files_rewritten"] >= 1
    after = list(landing.files())
    assert sorted(after) == sorted(files)  # rewritten in place, none lost
    assert all(p.read_bytes().startswith(MAGIC) for p in after)  # and still sealed
    assert not [p for p in after if BOB.encode() in landing.read(p).lower()]
