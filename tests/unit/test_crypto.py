"""Encryption at rest: authenticated, keyed by id, rotatable."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from infra import backup
from infra.crypto import DecryptionError, KeyRing, new_key
from infra.settings import Settings


def test_encrypt_decrypt_tamper_and_unknown_key() -> None:
    old, new = new_key(), new_key()
    ring = KeyRing.from_texts([old])
    blob = ring.encrypt(b"alice@example.com")
    assert b"alice" not in blob and ring.decrypt(blob) == b"alice@example.com"
    # Rotated ring: the new key encrypts, the old one still decrypts.
    rotated = KeyRing.from_texts([new, old])
    assert rotated.decrypt(blob) == b"alice@example.com" and rotated.needs_rotation(blob)
    assert not rotated.needs_rotation(rotated.encrypt(b"x"))
    with pytest.raises(DecryptionError, match="no configured key"):
        KeyRing.from_texts([new]).decrypt(blob)
    tampered = bytearray(blob)
    tampered[-3] ^= 1
    with pytest.raises(DecryptionError, match="altered"):
        ring.decrypt(bytes(tampered))
    with pytest.raises(ValueError, match="32 bytes"):
        KeyRing.from_texts(["c2hvcnQ="])


def test_rotate_backups_rewrites_under_the_new_key(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    folder = tmp_path / "backups" / "20260101T000000Z"
    folder.mkdir(parents=True)
    ring = KeyRing.from_texts([old])
    payload = gzip.compress(b'{"k":"n"}\n')
    ring.write(folder / backup.GRAPH_FILE, payload)
    stored = (folder / backup.GRAPH_FILE).read_bytes()
    manifest = {
        "format": backup.FORMAT,
        "files": {backup.GRAPH_FILE: {"bytes": len(stored), "sha256": backup._sha(stored)}},
        "encryption_key_id": ring.current_id,
        "verified": {"at": "x"},
    }
    (folder / backup.MANIFEST).write_text(json.dumps(manifest))
    settings = Settings(
        backup_dir=tmp_path / "backups", encryption_keys=[SecretStr(new), SecretStr(old)]
    )
    assert backup.rotate_backups(settings, log=lambda _: None) == 1
    assert backup.rotate_backups(settings, log=lambda _: None) == 0  # already rotated
    only_new = Settings(backup_dir=tmp_path / "backups", encryption_keys=[SecretStr(new)])
    files = backup.load_files(folder, only_new.key_ring())  # checksums updated, old key not needed
    assert files[backup.GRAPH_FILE] == payload
    assert backup.read_manifest(folder)["encryption_key_id"] == only_new.key_ring().current_id
