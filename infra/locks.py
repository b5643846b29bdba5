"""Per-member locks in Neo4j, shared by organizer corrections and the `member_graph` asset.

A correction holds the locks of the members it touches; the pipeline's member write holds
the lock of every member. Locks are leases (`IdentityLock` nodes with a holder and an
expiry), so a process that dies frees its locks when the lease runs out. Every
acquisition first writes the one `*` node, which makes Neo4j serialize acquisitions:
the check and the take happen in one transaction that nobody can interleave.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from domain.identity.pipeline import Members
from infra import graph_schema as gs
from infra.identity_store import IdentityStore
from infra.neo4j_store import GraphStore

LOCK = "IdentityLock"
ALL = "*"

ACQUIRE = f"""
MERGE (g:{LOCK} {{name: '{ALL}'}})
SET g.touched = timestamp()
WITH g, timestamp() AS now
OPTIONAL MATCH (l:{LOCK})
WHERE l.name <> '{ALL}' AND l.holder IS NOT NULL AND l.holder <> $holder AND l.expires > now
  AND ($all OR l.name IN $names)
WITH g, now, count(l) AS busy
WITH g, now, busy + CASE WHEN g.holder IS NOT NULL AND g.holder <> $holder AND g.expires > now
                         THEN 1 ELSE 0 END AS busy
CALL (g, now, busy) {{
  WITH g, now, busy WHERE busy = 0 AND $all
  SET g.holder = $holder, g.expires = now + $ttl_ms
}}
CALL (g, now, busy) {{
  WITH now, busy WHERE busy = 0 AND NOT $all
  UNWIND $names AS name
  MERGE (l:{LOCK} {{name: name}})
  SET l.holder = $holder, l.expires = now + $ttl_ms
}}
RETURN busy = 0 AS acquired
"""

RELEASE = f"""
MATCH (l:{LOCK}) WHERE l.holder = $holder
SET l.holder = null, l.expires = null
"""

CLEAN = f"MATCH (l:{LOCK}) WHERE l.name <> '{ALL}' AND l.holder IS NULL DELETE l"


class LockTimeoutError(RuntimeError):
    pass


class MemberLocks:
    def __init__(self, graph: GraphStore, ttl_seconds: float = 120.0) -> None:
        self.graph = graph
        self.ttl_ms = int(ttl_seconds * 1000)

    def _acquire(self, names: Sequence[str], every: bool, holder: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            rows = self.graph.run(
                ACQUIRE, names=sorted(set(names)), all=every, holder=holder, ttl_ms=self.ttl_ms
            )
            if rows and rows[0]["acquired"]:
                return
            if time.monotonic() > deadline:
                raise LockTimeoutError("members are being changed by another writer; retry")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def release(self, holder: str) -> None:
        self.graph.run(RELEASE, holder=holder)

    @contextmanager
    def members(self, member_ids: Sequence[str], timeout: float = 60.0) -> Iterator[str]:
        """Holds these members' locks (waits while the pipeline writes every member)."""
        holder = f"action-{uuid.uuid4().hex}"
        self._acquire(member_ids, False, holder, timeout)
        try:
            yield holder
        finally:
            self.release(holder)
            self.graph.run(CLEAN)

    @contextmanager
    def everything(self, timeout: float = 600.0) -> Iterator[str]:
        """Holds every member (waits for corrections in flight to finish)."""
        holder = f"pipeline-{uuid.uuid4().hex}"
        self._acquire([], True, holder, timeout)
        try:
            yield holder
        finally:
            self.release(holder)


def unseen_changes(graph: GraphStore, members: Members, since: datetime) -> list[str]:
    """Why a pipeline result computed from an older graph may not be written (empty: none).

    Corrections made while the run computed are invisible to it: a member id it does not
    know, or a decision made after `since` that its grouping contradicts.
    """
    store = IdentityStore(graph)
    known = set(members.members["member_id"].to_list()) | set(members.redirects)
    live = set(graph.run(gs.MEMBER_ID_LIST)[0]["ids"])
    # A member holding no records is one whose records the sources dropped (the write
    # deletes it); a correction's new member always holds records.
    new = sorted(live - known)
    if new:
        new = graph.run(gs.MEMBERS_HOLDING_RECORDS, ids=new)[0]["ids"]
    problems = [f"member {m} was created during the run" for m in sorted(new)][:5]
    target = dict(members.assignment.iter_rows())
    for d in store.load_decisions().to_dicts():
        created = d.get("created_at")
        if created is None or created < since:
            continue
        together = target.get(d["a"]) == target.get(d["b"])
        if (d["kind"] == "must_link") != together:
            problems.append(f"decision {d['decision_id']} was made during the run")
    for r in graph.run(gs.UNDONE_SINCE, since=since.isoformat()):
        problems.append(f"decision {r['decision_id']} was undone during the run")
    return problems
