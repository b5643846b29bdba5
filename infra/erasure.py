"""Privacy operations over everything held about one person: export and erasure.

Erasure removes the person from the member graph, the raw landing zone (files are
rewritten without their records), quarantine, the normalized store and Redis, and leaves
a tombstone: keyed hashes (HMAC-SHA256 with a per-install key) of their identifiers —
emails, phones, handles, platform person ids and record ids. The tombstone never holds
an identifier in clear; `Tombstones.drop_erased` is the hook every write of normalized
data goes through, so later syncs and raw replays skip the person.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from infra import graph_schema as gs
from infra.crypto import KeyRing, RawLanding
from infra.identity_store import native, provenance_entries
from infra.neo4j_store import GraphStore

TOMBSTONE_FILE = Path("privacy") / "tombstones.json"
HANDLE_PREFIX = "handle_"
_DIGITS = re.compile(r"\D+")


def _digits(text: str) -> str:
    return _DIGITS.sub("", text)


def identifier_keys(record: dict[str, Any]) -> set[str]:
    """The identifiers of one observation, as `kind:value` texts (before hashing)."""
    keys: set[str] = set()
    if record.get("observation_id"):
        keys.add(f"record:{record['observation_id']}")
    if record.get("email"):
        keys.add(f"email:{str(record['email']).strip().lower()}")
    if record.get("phone"):
        keys.add(f"phone:{_digits(str(record['phone']))}")
    if record.get("source_person_id") and record.get("source"):
        keys.add(f"person:{record['source']}:{record['source_person_id']}")
    for k, v in record.items():
        if k.startswith(HANDLE_PREFIX) and v:
            keys.add(f"handle:{k[len(HANDLE_PREFIX) :]}:{str(v).strip().lower().lstrip('@')}")
    return keys


@dataclass
class Tombstones:
    """Keyed hashes of erased people's identifiers, kept beside the data they guard."""

    key: bytes
    hashes: set[str] = field(default_factory=set)

    def digest(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    @classmethod
    def load(cls, data_root: Path, key: bytes) -> Tombstones:
        path = data_root / TOMBSTONE_FILE
        hashes = set(json.loads(path.read_text())["hashes"]) if path.exists() else set()
        return cls(key, hashes)

    def save(self, data_root: Path) -> None:
        path = data_root / TOMBSTONE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps({"hashes": sorted(self.hashes)}))
        tmp.replace(path)

    def add(self, identifiers: Iterable[str]) -> list[str]:
        new = [self.digest(t) for t in identifiers]
        self.hashes.update(new)
        return new

    def erased(self, record: dict[str, Any]) -> bool:
        return any(self.digest(t) in self.hashes for t in identifier_keys(record))

    def drop_erased(self, tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
        """Normalized tables without erased people's records (the hook for every write)."""
        if not self.hashes:
            return tables
        obs = tables.get("observations")
        if obs is None or obs.height == 0:
            return tables
        gone = [r["observation_id"] for r in obs.to_dicts() if self.erased(r)]
        if not gone:
            return tables
        out = dict(tables)
        out["observations"] = obs.filter(~pl.col("observation_id").is_in(gone))
        att = tables.get("attendance")
        if att is not None:
            att = att.filter(~pl.col("observation_id").is_in(gone))
            if "plus_one_of" in att.columns:  # guests they brought stay, unlinked
                att = att.with_columns(
                    pl.when(pl.col("plus_one_of").is_in(gone))
                    .then(None)
                    .otherwise(pl.col("plus_one_of"))
                    .alias("plus_one_of")
                )
            out["attendance"] = att
        return out


class Mentions:
    """Whether a text or JSON value mentions one person's emails, phones or record ids."""

    def __init__(self, emails: Iterable[str], phones: Iterable[str], ids: Iterable[str]) -> None:
        self.emails = {e.lower() for e in emails if e}
        self.phones = {_digits(p) for p in phones if p and len(_digits(p)) >= 7}
        self.ids = {i for i in ids if i and len(i) >= 4}

    def text(self, text: str) -> bool:
        low = text.lower()
        if any(e in low for e in self.emails) or any(i in text for i in self.ids):
            return True
        return any(self._phone(tok) for tok in re.findall(r"[+\d][\d ()./-]{6,}\d", text))

    def _phone(self, token: str) -> bool:
        d = _digits(token)
        return len(d) >= 7 and any(p == d or p.endswith(d) or d.endswith(p) for p in self.phones)

    def value(self, value: Any) -> bool:
        if isinstance(value, str):
            low = value.strip().lower()
            return low in self.emails or value.strip() in self.ids or self._phone(value)
        if isinstance(value, dict):
            return any(self.value(v) for v in value.values())
        if isinstance(value, list):
            return any(self.value(v) for v in value)
        return False

    def scrub_json(self, value: Any) -> Any:
        """The value without list elements (records) that mention the person."""
        if isinstance(value, list):
            return [
                self.scrub_json(v) for v in value if not (isinstance(v, dict) and self.value(v))
            ]
        if isinstance(value, dict):
            return {k: self.scrub_json(v) for k, v in value.items()}
        return value


def _decode(raw: bytes) -> str | None:
    for enc in ("utf-8-sig", "utf-16"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _ring(ring: KeyRing | None) -> KeyRing:
    if ring is not None:
        return ring
    from infra.settings import get_settings

    return get_settings().key_ring()


def scrub_raw(data_root: Path, mentions: Mentions, ring: KeyRing | None = None) -> list[str]:
    """Rewrites raw landing files without the person's records (encrypted ones decrypted,
    then written under the newest key); returns the files changed."""
    changed: list[str] = []
    landing = RawLanding(data_root, _ring(ring))
    for path in landing.files():
        text = _decode(landing.read(path))
        if text is None or not mentions.text(text):
            continue
        new_text: str
        try:
            new_text = json.dumps(mentions.scrub_json(json.loads(text)), ensure_ascii=False)
        except ValueError:  # CSV or other line-based text: drop the lines that mention them
            new_text = "".join(
                line for line in text.splitlines(keepends=True) if not mentions.text(line)
            )
        if mentions.text(new_text):  # a mention outside any record: drop what is left of it
            new_text = "".join(
                line for line in new_text.splitlines(keepends=True) if not mentions.text(line)
            )
        landing.write(path, new_text.encode("utf-8"))
        changed.append(path.relative_to(data_root).as_posix())
    return changed


def scrub_tables(data_root: Path, observation_ids: set[str], mentions: Mentions) -> int:
    """Rewrites normalized day files and the combined tables without the person's rows."""
    removed = 0
    files = [
        *(data_root / "normalized").rglob("*.parquet"),
        *(data_root / "combined").glob("*.parquet"),
    ]
    for path in sorted(files):
        frame = pl.read_parquet(path)
        before = frame.height
        if "observation_id" in frame.columns:
            frame = frame.filter(~pl.col("observation_id").is_in(sorted(observation_ids)))
        if "raw" in frame.columns:
            keep = [not mentions.text(str(r or "")) for r in frame["raw"].to_list()]
            frame = frame.filter(pl.Series(keep, dtype=pl.Boolean))
        if frame.height != before:
            removed += before - frame.height
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
            frame.write_parquet(tmp)
            tmp.replace(path)
    return removed


def person_records(graph: GraphStore, member_id: str) -> dict[str, Any] | None:
    """The member, its identities with attendance, and the decisions about its records."""
    rows = graph.run(gs.GET_MEMBER, id=member_id)
    if not rows:
        return None
    member = native(rows[0]["member"])
    member.pop("search_text", None)
    member.pop("content_hash", None)
    provenance = provenance_entries(member.pop("provenance", None))
    identities = [
        {"identity": native(r["identity"]), "attendance": native(r["attendance"])}
        for r in graph.run(gs.MEMBER_IDENTITIES, id=member_id)
    ]
    obs = [i["identity"]["observation_id"] for i in identities]
    decisions = [native(r["d"]) for r in graph.run(gs.DECISIONS_ABOUT, ids=obs)]
    return {
        "member": member,
        "provenance": provenance,
        "identities": identities,
        "decisions": decisions,
    }


def mentions_of(records: dict[str, Any]) -> Mentions:
    emails: set[str] = set()
    phones: set[str] = set()
    ids: set[str] = set()
    for i in records["identities"]:
        ident = i["identity"]
        if ident.get("email"):
            emails.add(str(ident["email"]))
        if ident.get("phone"):
            phones.add(str(ident["phone"]))
        for k in ("source_record_id", "source_person_id"):
            if ident.get(k):
                ids.add(str(ident[k]))
    m = records["member"]
    emails.update(m.get("emails") or [])
    phones.update(m.get("phones") or [])
    return Mentions(emails, phones, ids)


def raw_mentions(
    data_root: Path, mentions: Mentions, ring: KeyRing | None = None
) -> list[dict[str, Any]]:
    """The raw records (JSON objects or CSV lines) that mention the person, with their file."""
    out: list[dict[str, Any]] = []
    landing = RawLanding(data_root, _ring(ring))
    for path in landing.files():
        text = _decode(landing.read(path))
        if text is None or not mentions.text(text):
            continue
        origin = path.relative_to(data_root).as_posix()
        try:
            found: list[Any] = []
            _collect(json.loads(text), mentions, found)
            out.extend({"origin": origin, "record": r} for r in found)
        except ValueError:
            lines = text.splitlines()
            header = lines[0] if lines else ""
            out.extend(
                {"origin": origin, "line": n, "header": header, "record": line}
                for n, line in enumerate(lines)
                if n > 0 and mentions.text(line)
            )
    return out


def _collect(value: Any, mentions: Mentions, found: list[Any]) -> None:
    if isinstance(value, list):
        for v in value:
            if isinstance(v, dict) and mentions.value(v):
                found.append(v)
            else:
                _collect(v, mentions, found)
    elif isinstance(value, dict):
        for v in value.values():
            _collect(v, mentions, found)


def quarantine_mentions(data_root: Path, mentions: Mentions) -> list[dict[str, Any]]:
    out = []
    for path in sorted((data_root / "normalized" / "quarantine").rglob("*.parquet")):
        for row in pl.read_parquet(path).to_dicts():
            if mentions.text(str(row.get("raw") or "")):
                out.append({**row, "file": path.relative_to(data_root).as_posix()})
    return out


def export_person(
    graph: GraphStore, data_root: Path, member_id: str, ring: KeyRing | None = None
) -> dict[str, Any] | None:
    """Everything held about one person, each part with where it came from."""
    records = person_records(graph, member_id)
    if records is None:
        return None
    mentions = mentions_of(records)
    return {
        "member_id": member_id,
        "exported_at": datetime.now(UTC).isoformat(),
        **records,
        "raw_records": raw_mentions(data_root, mentions, ring),
        "quarantined_records": quarantine_mentions(data_root, mentions),
    }


def erase_person(
    graph: GraphStore,
    data_root: Path,
    key: bytes,
    member_id: str,
    by: str,
    ring: KeyRing | None = None,
) -> dict[str, Any] | None:
    """Erases one person everywhere on disk and in the graph; leaves a tombstone first."""
    records = person_records(graph, member_id)
    if records is None:
        return None
    mentions = mentions_of(records)
    identifiers: set[str] = set()
    for i in records["identities"]:
        identifiers |= identifier_keys(i["identity"])
    for e in records["member"].get("emails") or []:
        identifiers.add(f"email:{e.strip().lower()}")
    for p in records["member"].get("phones") or []:
        identifiers.add(f"phone:{_digits(p)}")
    stones = Tombstones.load(data_root, key)
    hashes = stones.add(identifiers)
    stones.save(data_root)  # before anything is removed: a crash leaves the person skipped
    obs = [i["identity"]["observation_id"] for i in records["identities"]]
    at = datetime.now(UTC).isoformat()
    graph.run(gs.RECORD_TOMBSTONES, hashes=hashes, at=at, by=by)
    with graph.driver.session(database=graph.database) as session:

        def erase(tx: Any) -> None:
            for query in gs.ERASE_PERSON:
                tx.run(query, ids=obs, member_id=member_id).consume()

        session.execute_write(erase)
    files = scrub_raw(data_root, mentions, ring)
    rows = scrub_tables(data_root, set(obs), mentions)
    return {
        "member_id": member_id,
        "identities_erased": len(obs),
        "raw_files_rewritten": len(files),
        "normalized_rows_removed": rows,
        "tombstones": len(hashes),
    }


def scrub_document(value: Any, member_id: str) -> Any:
    """A stored JSON document without entries about one member (analytics in Redis)."""
    if isinstance(value, list):
        return [
            scrub_document(v, member_id)
            for v in value
            if v != member_id
            and not (isinstance(v, dict) and member_id in (v.get("member_id"), v.get("id")))
        ]
    if isinstance(value, dict):
        return {k: scrub_document(v, member_id) for k, v in value.items()}
    return value
