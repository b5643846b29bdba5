"""Logical backups of everything that cannot be recomputed, and their verified restore.

A backup is a folder `<BACKUP_DIR>/<UTC timestamp>/`:

    graph.jsonl.gz       every node (labels, properties) and relationship of the graph,
                         organizer decisions and the fitted identity model included
    redis.json.gz        the pipeline's Redis documents (figures, analytics, sync cursors,
                         erasure tombstones; not the API's caches, limits or leases)
    normalized.tar.gz    the normalized store (`normalized/`, `combined/`, `privacy/`)
    manifest.json        sizes and SHA-256 of the three files as stored, counts, and a
                         content hash of the graph and of the Redis documents

Files are encrypted with the newest key of `ENCRYPTION_KEYS` when one is set. The graph is
read while holding every member lock, so no organizer correction or member write lands
half-way through it. A backup counts only once verified: restored into an empty Neo4j
and found with the same counts and content hash. The content hash does not depend on
internal ids: a node hashes its labels and properties, a relationship its type,
properties and its two nodes' hashes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import math
import shutil
import tarfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import neo4j.time as nt
from neo4j import Driver

from infra import graph_schema as gs
from infra.crypto import KeyRing
from infra.neo4j_server import Neo4jLocal
from infra.neo4j_store import GraphStore, open_driver
from infra.redis_keys import RedisKeys
from infra.redis_store import open_redis
from infra.settings import Settings, get_settings

FORMAT = 1
GRAPH_FILE = "graph.jsonl.gz"
REDIS_FILE = "redis.json.gz"
STORE_FILE = "normalized.tar.gz"
MANIFEST = "manifest.json"
STORE_FOLDERS = ("normalized", "combined", "privacy")
# Leases and the test marker describe a running instance, not the community's data.
# The schema version is the instance's too: the manifest records it, a restore sets it.
SKIPPED_LABELS = ("IdentityLock", gs.TEST_INSTANCE_MARKER, gs.SCHEMA_VERSION)
RESTORE_LABEL = "_BackupRestore"
BATCH = 2000

Log = Callable[[str], object]


class BackupError(RuntimeError):
    """A backup could not be written, verified or restored; the message says why."""


# --------------------------------------------------------------------------- values


def encode(value: Any) -> Any:
    """Neo4j values as JSON with type tags, so a restore gives back the same types."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, nt.Duration):
        return {"$duration": [value.months, value.days, value.seconds, value.nanoseconds]}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, nt.DateTime):
        if value.tzinfo is None:
            return {"$localdatetime": value.iso_format()}
        zone = getattr(value.tzinfo, "key", None) or getattr(value.tzinfo, "zone", None)
        return {"$datetime": value.iso_format(), **({"zone": zone} if zone else {})}
    if isinstance(value, nt.Date):
        return {"$date": value.iso_format()}
    if isinstance(value, nt.Time):
        kind = "$localtime" if value.tzinfo is None else "$time"
        return {kind: value.iso_format()}
    raise BackupError(f"cannot back up a value of type {type(value).__name__}")


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$float" in value:
        return float(value["$float"])
    if "$bytes" in value:
        return base64.b64decode(value["$bytes"])
    if "$datetime" in value:
        parsed = nt.DateTime.from_iso_format(value["$datetime"])
        if "zone" in value:
            from zoneinfo import ZoneInfo

            # the wall-clock time in the text is already local to the zone
            parsed = parsed.replace(tzinfo=None).replace(tzinfo=ZoneInfo(value["zone"]))
        return parsed
    if "$localdatetime" in value:
        return nt.DateTime.from_iso_format(value["$localdatetime"])
    if "$date" in value:
        return nt.Date.from_iso_format(value["$date"])
    if "$time" in value:
        return nt.Time.from_iso_format(value["$time"])
    if "$localtime" in value:
        return nt.Time.from_iso_format(value["$localtime"])
    if "$duration" in value:
        months, days, seconds, nanos = value["$duration"]
        return nt.Duration(months=months, days=days, seconds=seconds, nanoseconds=nanos)
    raise BackupError(f"unknown value tag in backup: {sorted(value)}")


def _canon(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class GraphDigest:
    """Counts and the id-independent content hash of a graph, built record by record."""

    volatile: frozenset[str] = frozenset()  # properties left out (load stamps, in tests)
    node_hashes: dict[str, str] = field(default_factory=dict)
    rel_hashes: list[str] = field(default_factory=list)
    labels: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)

    def node(self, rec: dict[str, Any]) -> None:
        props = {k: v for k, v in rec["props"].items() if k not in self.volatile}
        self.node_hashes[rec["id"]] = _sha(_canon([sorted(rec["labels"]), props]))
        self.labels.update(rec["labels"])

    def rel(self, rec: dict[str, Any]) -> None:
        ends = [self.node_hashes[rec["start"]], self.node_hashes[rec["end"]]]
        props = {k: v for k, v in rec["props"].items() if k not in self.volatile}
        self.rel_hashes.append(_sha(_canon([rec["type"], props, ends])))
        self.types[rec["type"]] += 1

    def summary(self) -> dict[str, Any]:
        h = hashlib.sha256()
        for x in sorted(self.node_hashes.values()):
            h.update(x.encode())
        h.update(b"|")
        for x in sorted(self.rel_hashes):
            h.update(x.encode())
        return {
            "nodes": len(self.node_hashes),
            "relationships": len(self.rel_hashes),
            "labels": dict(sorted(self.labels.items())),
            "types": dict(sorted(self.types.items())),
            "content_hash": h.hexdigest(),
        }


# --------------------------------------------------------------------------- graph


def _skip_clause(var: str) -> str:
    return " AND ".join(f"NOT {var}:`{label}`" for label in SKIPPED_LABELS)


def read_graph(driver: Driver, database: str) -> Iterator[dict[str, Any]]:
    """Every node, then every relationship, as encoded records (one read transaction)."""
    with (
        driver.session(database=database, default_access_mode="READ") as session,
        session.begin_transaction() as tx,
    ):
        nodes = tx.run(
            f"MATCH (n) WHERE {_skip_clause('n')} "
            "RETURN elementId(n) AS id, labels(n) AS labels, properties(n) AS props"
        )
        for r in nodes:
            yield {
                "k": "n",
                "id": r["id"],
                "labels": sorted(r["labels"]),
                "props": encode_props(r["props"]),
            }
        rels = tx.run(
            f"MATCH (a)-[r]->(b) WHERE {_skip_clause('a')} AND {_skip_clause('b')} "
            "RETURN elementId(a) AS start, elementId(b) AS end, type(r) AS type, "
            "properties(r) AS props"
        )
        for r in rels:
            yield {
                "k": "r",
                "start": r["start"],
                "end": r["end"],
                "type": r["type"],
                "props": encode_props(r["props"]),
            }


def encode_props(props: dict[str, Any]) -> dict[str, Any]:
    return {k: encode(v) for k, v in props.items()}


def graph_digest(
    driver: Driver, database: str, volatile: frozenset[str] = frozenset()
) -> dict[str, Any]:
    digest = GraphDigest(volatile)
    for rec in read_graph(driver, database):
        (digest.node if rec["k"] == "n" else digest.rel)(rec)
    return digest.summary()


def _name(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def data_node_count(driver: Driver, database: str) -> int:
    records, _, _ = driver.execute_query(
        f"MATCH (n) WHERE {_skip_clause('n')} RETURN count(n) AS n", database_=database
    )
    return int(records[0]["n"])


def write_graph(driver: Driver, database: str, records: Iterator[dict[str, Any]]) -> None:
    """Creates the records in a database without data; ids are mapped through a
    temporary label and property that are removed afterwards."""
    run = lambda q, **p: driver.execute_query(q, p, database_=database)  # noqa: E731
    run(f"CREATE INDEX backup_restore_id IF NOT EXISTS FOR (n:{RESTORE_LABEL}) ON (n._rid)")
    run("CALL db.awaitIndexes(300)")
    nodes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    rels: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def flush_nodes(labels: tuple[str, ...]) -> None:
        rows = nodes.pop(labels, [])
        if rows:
            extra = "".join(f":{_name(x)}" for x in labels)
            run(
                f"UNWIND $rows AS row CREATE (n:{RESTORE_LABEL}{extra}) "
                "SET n = row.props, n._rid = row.id",
                rows=rows,
            )

    def flush_rels(kind: str) -> None:
        rows = rels.pop(kind, [])
        if rows:
            run(
                f"UNWIND $rows AS row MATCH (a:{RESTORE_LABEL} {{_rid: row.start}}) "
                f"MATCH (b:{RESTORE_LABEL} {{_rid: row.end}}) "
                f"CREATE (a)-[r:{_name(kind)}]->(b) SET r = row.props",
                rows=rows,
            )

    for rec in records:
        props = {k: decode(v) for k, v in rec["props"].items()}
        if rec["k"] == "n":
            key = tuple(rec["labels"])
            nodes[key].append({"id": rec["id"], "props": props})
            if len(nodes[key]) >= BATCH:
                flush_nodes(key)
        else:
            if nodes:
                for key in list(nodes):
                    flush_nodes(key)
            rels[rec["type"]].append({"start": rec["start"], "end": rec["end"], "props": props})
            if len(rels[rec["type"]]) >= BATCH:
                flush_rels(rec["type"])
    for key in list(nodes):
        flush_nodes(key)
    for kind in list(rels):
        flush_rels(kind)
    with driver.session(database=database) as session:
        session.run(
            f"MATCH (n:{RESTORE_LABEL}) CALL (n) {{ REMOVE n:{RESTORE_LABEL}, n._rid }} "
            "IN TRANSACTIONS OF 10000 ROWS"
        ).consume()
    run("DROP INDEX backup_restore_id IF EXISTS")


# --------------------------------------------------------------------------- Redis


def _redis_skipped(keys: RedisKeys, key: str) -> bool:
    api = keys._k("api", "")
    return key.startswith(api) or key == keys.test_marker()


def read_redis(settings: Settings) -> list[dict[str, Any]]:
    """The pipeline's documents under the key prefix, typed, with their TTLs."""
    keys = RedisKeys(settings.redis_key_prefix)
    r = open_redis(settings)
    out: list[dict[str, Any]] = []
    try:
        for key in sorted(str(k) for k in r.scan_iter(match=f"{settings.redis_key_prefix}:*")):
            if _redis_skipped(keys, key):
                continue
            kind = str(r.type(key))
            value: Any
            if kind == "string":
                value = r.get(key)
            elif kind == "hash":
                value = dict(sorted(r.hgetall(key).items()))
            elif kind == "set":
                value = sorted(r.smembers(key))
            elif kind == "zset":
                scored: Any = r.zrange(key, 0, -1, withscores=True)
                value = [[m, s] for m, s in scored]
            elif kind == "list":
                value = r.lrange(key, 0, -1)
            else:
                continue  # vanished between SCAN and TYPE, or a type the project never writes
            ttl = int(r.pttl(key))
            out.append({"key": key, "type": kind, "value": value, "pttl": ttl if ttl > 0 else None})
    finally:
        r.close()
    return out


def redis_hash(entries: list[dict[str, Any]]) -> str:
    return _sha(_canon([[e["key"], e["type"], e["value"]] for e in entries]))


def write_redis(settings: Settings, entries: list[dict[str, Any]]) -> None:
    keys = RedisKeys(settings.redis_key_prefix)
    r = open_redis(settings)
    try:
        pipe = r.pipeline(transaction=True)
        for key in r.scan_iter(match=f"{settings.redis_key_prefix}:*"):
            if not _redis_skipped(keys, str(key)):
                pipe.delete(key)
        for e in entries:
            key, value = e["key"], e["value"]
            pipe.delete(key)
            if e["type"] == "string":
                pipe.set(key, value)
            elif e["type"] == "hash" and value:
                pipe.hset(key, mapping=value)
            elif e["type"] == "set" and value:
                pipe.sadd(key, *value)
            elif e["type"] == "zset" and value:
                pipe.zadd(key, dict(value))
            elif e["type"] == "list" and value:
                pipe.rpush(key, *value)
            if e.get("pttl"):
                pipe.pexpire(key, e["pttl"])
        pipe.execute()
    finally:
        r.close()


# --------------------------------------------------------------------------- store files


def pack_store(data_root: Path) -> tuple[bytes, dict[str, str]]:
    """The normalized store as a tar.gz, and the SHA-256 of each file in it."""
    buf = io.BytesIO()
    files: dict[str, str] = {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for folder in STORE_FOLDERS:
            base = data_root / folder
            if not base.exists():
                continue
            for path in sorted(p for p in base.rglob("*") if p.is_file()):
                rel = path.relative_to(data_root).as_posix()
                files[rel] = _sha(path.read_bytes())
                tar.add(path, arcname=rel, recursive=False)
    return buf.getvalue(), files


def unpack_store(blob: bytes, data_root: Path, expected: dict[str, str]) -> None:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        members = tar.getmembers()
        names = {m.name for m in members}
        if names != set(expected):
            raise BackupError("the normalized store archive does not hold the files listed")
        for folder in STORE_FOLDERS:
            if (data_root / folder).exists():
                shutil.rmtree(data_root / folder)
        tar.extractall(data_root, filter="data")
    for rel, digest in expected.items():
        if _sha((data_root / rel).read_bytes()) != digest:
            raise BackupError(f"restored file {rel} differs from the backup")


# --------------------------------------------------------------------------- backup


def _gzip_lines(records: Iterator[dict[str, Any]], digest: GraphDigest) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        for rec in records:
            (digest.node if rec["k"] == "n" else digest.rel)(rec)
            gz.write(_canon(rec) + b"\n")
    return buf.getvalue()


def create_backup(settings: Settings, log: Log = print) -> Path:
    """Writes a backup folder (not yet verified) and returns it."""
    from infra.locks import MemberLocks

    ring = settings.key_ring()
    root = settings.path(settings.backup_dir)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = root / stamp
    tmp = root / f".{stamp}.partial"
    tmp.mkdir(parents=True, exist_ok=False)
    graph = GraphStore.from_settings(settings)
    try:
        digest = GraphDigest()
        with MemberLocks(graph).everything():
            graph_blob = _gzip_lines(read_graph(graph.driver, graph.database), digest)
        log(f"graph read: {len(digest.node_hashes)} nodes, {len(digest.rel_hashes)} relationships")
    finally:
        graph.close()
    entries = read_redis(settings)
    redis_blob = gzip.compress(_canon(entries), mtime=0)
    store_blob, store_files = pack_store(settings.data_path)
    files: dict[str, dict[str, Any]] = {}
    for name, blob in (
        (GRAPH_FILE, graph_blob),
        (REDIS_FILE, redis_blob),
        (STORE_FILE, store_blob),
    ):
        ring.write(tmp / name, blob)
        stored = (tmp / name).read_bytes()
        files[name] = {"bytes": len(stored), "sha256": _sha(stored)}
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "schema_version": _schema_version(settings),
        "encryption_key_id": ring.current_id,
        "files": files,
        "graph": digest.summary(),
        "redis": {"keys": len(entries), "content_hash": redis_hash(entries)},
        "normalized_store": store_files,
        "verified": None,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    tmp.rename(folder)
    return folder


def _schema_version(settings: Settings) -> int | None:
    from infra.migrations import current_graph_version

    return current_graph_version(settings)


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.exists():
        raise BackupError(f"{folder} has no {MANIFEST}: not a backup, or an unfinished one")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')} is not {FORMAT}")
    return manifest


def load_files(folder: Path, ring: KeyRing) -> dict[str, bytes]:
    """The backup's files, checksums checked, decrypted."""
    manifest = read_manifest(folder)
    out: dict[str, bytes] = {}
    for name, meta in manifest["files"].items():
        stored = (folder / name).read_bytes()
        if _sha(stored) != meta["sha256"]:
            raise BackupError(f"{folder.name}/{name}: checksum mismatch (file altered or damaged)")
        out[name] = ring.decrypt(stored)
    return out


def _graph_records(blob: bytes) -> Iterator[dict[str, Any]]:
    with gzip.GzipFile(fileobj=io.BytesIO(blob)) as gz:
        for line in gz:
            yield json.loads(line)


def restore_graph(driver: Driver, database: str, blob: bytes) -> None:
    if data_node_count(driver, database) > 0:
        raise BackupError("the target graph holds data; restore only into an empty database")
    write_graph(driver, database, _graph_records(blob))


def verify_backup(settings: Settings, folder: Path, log: Log = print) -> dict[str, Any]:
    """Restores the backup's graph into an empty Neo4j started for the purpose (or the one
    answering at BACKUP_VERIFY_NEO4J_URI, which must be empty) and compares counts and the
    content hash; records the result in the manifest. Raises when they differ."""
    manifest = read_manifest(folder)
    files = load_files(folder, settings.key_ring())
    entries = json.loads(gzip.decompress(files[REDIS_FILE]))
    if redis_hash(entries) != manifest["redis"]["content_hash"]:
        raise BackupError("the Redis documents differ from the manifest")
    vsettings = settings.model_copy(
        update={
            "neo4j_uri": settings.backup_verify_neo4j_uri,
            "neo4j_heap": settings.backup_verify_heap,
            "neo4j_pagecache": "64m",
            "neo4j_database": "neo4j",
            "state_dir": settings.state_path / "backup-verify",
        }
    )
    local = Neo4jLocal(vsettings)
    started_here = local.probe()[0] != "up"
    if started_here and (local.home / "data").exists():
        shutil.rmtree(local.home / "data")  # a leftover from an interrupted verification
    local.up(log=log)
    driver = open_driver(vsettings)
    try:
        GraphStore(driver, "neo4j").ensure_schema()
        restore_graph(driver, "neo4j", files[GRAPH_FILE])
        got = graph_digest(driver, "neo4j")
        if not started_here:
            with driver.session(database="neo4j") as session:
                session.run(gs.DELETE_ALL_BUT_MARKER).consume()
    finally:
        driver.close()
        if started_here:
            local.down()
            shutil.rmtree(local.home / "data", ignore_errors=True)
    want = manifest["graph"]
    differences = [
        k
        for k in ("nodes", "relationships", "content_hash", "labels", "types")
        if got[k] != want[k]
    ]
    if differences:
        raise BackupError(
            f"backup {folder.name} failed verification: restored graph differs in "
            f"{', '.join(differences)} (backup {want['nodes']} nodes/{want['relationships']} "
            f"relationships, restored {got['nodes']}/{got['relationships']})"
        )
    manifest["verified"] = {
        "at": datetime.now(UTC).isoformat(),
        "nodes": got["nodes"],
        "relationships": got["relationships"],
        "content_hash": got["content_hash"],
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def list_backups(settings: Settings) -> list[Path]:
    root = settings.path(settings.backup_dir)
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).exists())


def prune(settings: Settings) -> list[Path]:
    """Keeps the newest BACKUP_KEEP verified backups. Removes older verified ones, and
    unfinished or unverified ones older than the newest verified backup (a failed one
    stays for inspection until a later backup succeeds). Returns what was removed."""
    root = settings.path(settings.backup_dir)
    if not root.exists():
        return []
    verified = [p for p in list_backups(settings) if _verified(p)]
    keep = set(verified[-settings.backup_keep :])
    newest = verified[-1].name if verified else ""
    removed: list[Path] = []
    for p in sorted(root.iterdir()):
        if not p.is_dir() or p in keep:
            continue
        name = p.name.lstrip(".").removesuffix(".partial")
        if p in verified or name < newest:
            shutil.rmtree(p)
            removed.append(p)
    return removed


def _verified(folder: Path) -> bool:
    try:
        return bool(read_manifest(folder).get("verified"))
    except (BackupError, json.JSONDecodeError):
        return False


def run_backup(settings: Settings | None = None, log: Log = print) -> dict[str, Any]:
    """The scheduled backup: write, verify, prune. Raises when verification fails (the
    unverified folder stays for inspection until the next successful backup prunes it)."""
    settings = settings or get_settings()
    folder = create_backup(settings, log)
    manifest = (
        verify_backup(settings, folder, log) if settings.backup_verify else read_manifest(folder)
    )
    removed = prune(settings)
    return {"folder": str(folder), "manifest": manifest, "pruned": [p.name for p in removed]}


def restore_backup(
    settings: Settings, folder: Path, force: bool = False, log: Log = print
) -> dict[str, Any]:
    """Restores graph, Redis documents and the normalized store from a backup.

    Refuses a graph that holds data unless `force` (which empties it first)."""
    manifest = read_manifest(folder)
    files = load_files(folder, settings.key_ring())
    graph = GraphStore.from_settings(settings)
    try:
        if data_node_count(graph.driver, graph.database) > 0:
            if not force:
                raise BackupError(
                    "the graph holds data; pass --force to replace it with the backup"
                )
            with graph.driver.session(database=graph.database) as session:
                session.run(gs.DELETE_ALL_BUT_MARKER).consume()
        graph.ensure_schema()
        restore_graph(graph.driver, graph.database, files[GRAPH_FILE])
        got = graph_digest(graph.driver, graph.database)
        if manifest.get("schema_version"):
            # Data written under an older schema is migrated forward after the restore.
            from infra.migrations import migrate_graph, set_graph_version

            set_graph_version(
                graph.driver, graph.database, manifest["schema_version"], f"restore {folder.name}"
            )
            migrate_graph(graph.driver, graph.database)
    finally:
        graph.close()
    if got["content_hash"] != manifest["graph"]["content_hash"]:
        raise BackupError("the restored graph differs from the backup's content hash")
    entries = json.loads(gzip.decompress(files[REDIS_FILE]))
    write_redis(settings, entries)
    unpack_store(files[STORE_FILE], settings.data_path, manifest["normalized_store"])
    log(
        f"restored {got['nodes']} nodes, {got['relationships']} relationships, {len(entries)} Redis keys"
    )
    return {"graph": got, "redis_keys": len(entries), "files": len(manifest["normalized_store"])}


def rotate_backups(settings: Settings, log: Log = print) -> int:
    """Re-encrypts every backup under the newest key of ENCRYPTION_KEYS (old keys must still
    be listed) and updates the manifests. Returns the files rewritten."""
    ring = settings.key_ring()
    if not ring.enabled:
        raise BackupError("ENCRYPTION_KEYS is empty: nothing to rotate to")
    rewritten = 0
    for folder in list_backups(settings):
        manifest = read_manifest(folder)
        load_files(folder, ring)  # checksums and every key present, before touching anything
        for name in manifest["files"]:
            if ring.rotate_file(folder / name):
                stored = (folder / name).read_bytes()
                manifest["files"][name] = {"bytes": len(stored), "sha256": _sha(stored)}
                rewritten += 1
        manifest["encryption_key_id"] = ring.current_id
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        log(f"{folder.name}: under key {ring.current_id}")
    return rewritten
