"""Authenticated encryption of files at rest (raw landing, backups) with a key ring.

Keys come from `ENCRYPTION_KEYS` (newest first, each 32 random bytes in url-safe base64).
The newest key encrypts; every listed key decrypts, chosen by the key id stored in the
header. Rotation: put a new key first, keep the old ones until `community rotate-keys`
has re-encrypted what they protect, then drop them.

File layout: b"CPE1" | key id (8 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext+tag.
The header is authenticated as associated data, so a swapped key id fails to decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"CPE1"
_HEADER = len(MAGIC) + 8 + 12


class DecryptionError(RuntimeError):
    """Wrong key, unknown key id, or tampered data."""


def new_key() -> str:
    """A fresh key in the form `ENCRYPTION_KEYS` expects."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"community-key-id" + key).digest()[:8]


def _decode_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode())
    except ValueError as exc:
        raise ValueError("an encryption key is not url-safe base64") from exc
    if len(raw) != 32:
        raise ValueError("an encryption key must be 32 bytes (url-safe base64)")
    return raw


def is_encrypted(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


@dataclass(frozen=True)
class KeyRing:
    """Keys newest first; an empty ring leaves data in clear (and says so)."""

    keys: tuple[bytes, ...]

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> KeyRing:
        return cls(tuple(_decode_key(t) for t in texts if t.strip()))

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    @property
    def current_id(self) -> str | None:
        return key_id(self.keys[0]).hex() if self.keys else None

    def encrypt(self, data: bytes) -> bytes:
        if not self.keys:
            return data
        key = self.keys[0]
        nonce = os.urandom(12)
        header = MAGIC + key_id(key) + nonce
        return header + AESGCM(key).encrypt(nonce, data, header)

    def decrypt(self, blob: bytes) -> bytes:
        """Decrypts with the key named in the header; clear data is returned as is."""
        if not is_encrypted(blob):
            return blob
        header, body = blob[:_HEADER], blob[_HEADER:]
        wanted = header[len(MAGIC) : len(MAGIC) + 8]
        nonce = header[len(MAGIC) + 8 :]
        if not self.keys:
            raise DecryptionError("the data is encrypted but ENCRYPTION_KEYS is empty")
        for key in self.keys:
            if key_id(key) == wanted:
                try:
                    return AESGCM(key).decrypt(nonce, body, header)
                except InvalidTag as exc:
                    raise DecryptionError("data was altered or the key is wrong") from exc
        raise DecryptionError(f"no configured key has id {wanted.hex()}; was it rotated out?")

    def needs_rotation(self, blob: bytes) -> bool:
        """True when the blob is clear or under an older key (and a key is configured)."""
        if not self.keys:
            return False
        return not is_encrypted(blob) or blob[len(MAGIC) : len(MAGIC) + 8] != key_id(self.keys[0])

    def write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.encrypt(data))
        tmp.replace(path)

    def read(self, path: Path) -> bytes:
        return self.decrypt(path.read_bytes())

    def rotate_file(self, path: Path) -> bool:
        """Re-encrypts one file under the newest key; False when it already is."""
        blob = path.read_bytes()
        if not self.needs_rotation(blob):
            return False
        self.write(path, self.decrypt(blob))
        return True


# --------------------------------------------------------------------------- raw landing

LANDING_MANIFEST = "manifest.json"


@dataclass
class RawLanding:
    """The files under `DATA_DIR/raw`, encrypted under the ring's newest key when it has one.

    Each fetch folder (`raw/<source>/<day>/<fetch id>/`) keeps its `manifest.json` in clear
    (counts, dates, the key id; no records) and every other file keeps its name, with the
    key id in its header. A manifest that names a key makes the folder strict: a file in it
    without the header was altered or planted, and reading it fails instead of serving it.
    Folders written before keys were set stay readable in clear until `rotate` encrypts them.
    """

    root: Path  # DATA_DIR
    ring: KeyRing
    _strict: dict[Path, bool] = field(default_factory=dict, repr=False)

    @property
    def raw_root(self) -> Path:
        return self.root / "raw"

    def manifest_fields(self) -> dict[str, Any]:
        """What a fetch manifest records about encryption."""
        return {"encrypted": self.ring.enabled, "encryption_key_id": self.ring.current_id}

    def write(self, path: Path, data: bytes) -> None:
        """Atomic: readers see the old file or the new one, never half of either."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_bytes(self.ring.encrypt(data))
        tmp.replace(path)

    def read(self, path: Path) -> bytes:
        blob = path.read_bytes()
        name = self._name(path)
        if not is_encrypted(blob):
            if self._folder_strict(path):
                raise DecryptionError(
                    f"{name}: stored in clear in a fetch written encrypted (altered or replaced)"
                )
            return blob
        try:
            return self.ring.decrypt(blob)
        except DecryptionError as exc:
            raise DecryptionError(f"{name}: {exc}") from exc

    def fetch_folder(self, path: Path) -> Path | None:
        try:
            rel = path.relative_to(self.raw_root)
        except ValueError:
            return None
        return self.raw_root.joinpath(*rel.parts[:3]) if len(rel.parts) > 3 else None

    def files(self) -> Iterator[Path]:
        """Every landed page and file (not manifests, not unfinished writes), sorted."""
        if not self.raw_root.is_dir():
            return
        for path in sorted(self.raw_root.rglob("*")):
            if path.is_file() and path.name != LANDING_MANIFEST and not path.name.endswith(".tmp"):
                yield path

    def rotate(self, log: Callable[[str], None] = print) -> int:
        """Re-encrypts every landed file under the newest key (clear ones included) and
        records the key in each manifest. Every file is decrypted first, so a missing key
        or an altered file stops it before anything is rewritten. Returns files rewritten."""
        if not self.ring.enabled:
            raise DecryptionError("ENCRYPTION_KEYS is empty: nothing to rotate to")
        files = list(self.files())
        for path in files:
            self.read(path)
        rewritten = 0
        folders: set[Path] = set()
        for path in files:
            blob = path.read_bytes()
            if self.ring.needs_rotation(blob):
                self.write(path, self.read(path))
                rewritten += 1
            folder = self.fetch_folder(path)
            if folder is not None:
                folders.add(folder)
        for folder in sorted(folders):
            manifest = folder / LANDING_MANIFEST
            if manifest.is_file():
                body = json.loads(manifest.read_text())
                body.update(self.manifest_fields())
                tmp = manifest.with_name(f".{manifest.name}.{uuid.uuid4().hex[:8]}.tmp")
                tmp.write_text(json.dumps(body, indent=2, default=str))
                tmp.replace(manifest)
        self._strict.clear()
        log(
            f"raw landing: {rewritten} of {len(files)} files re-encrypted under {self.ring.current_id}"
        )
        return rewritten

    def _name(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def _folder_strict(self, path: Path) -> bool:
        folder = self.fetch_folder(path)
        if folder is None:
            return False
        if folder not in self._strict:
            manifest = folder / LANDING_MANIFEST
            strict = False
            if manifest.is_file():
                try:
                    strict = bool(json.loads(manifest.read_text()).get("encrypted"))
                except ValueError:
                    strict = False
            self._strict[folder] = strict
        return self._strict[folder]
