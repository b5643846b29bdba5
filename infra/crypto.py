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
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
