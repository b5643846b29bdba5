"""Neo4j records of the API's privacy duties: the contact-read access log and the
stored answers of idempotent organizer actions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from infra import graph_schema as gs
from infra.identity_store import native
from infra.neo4j_store import GraphStore


class PrivacyStore:
    def __init__(self, graph: GraphStore) -> None:
        self.graph = graph

    # --- who read whose contact details --------------------------------------------

    def log_contact_access(
        self, by: str, role: str, route: str, request_id: str, member_ids: Sequence[str]
    ) -> None:
        """One entry per read: who, whose, when — never the values read."""
        if not member_ids:
            return
        self.graph.run(
            gs.LOG_CONTACT_ACCESS,
            by=by,
            role=role,
            route=route,
            request_id=request_id,
            member_ids=sorted(set(member_ids)),
        )

    def contact_access(self, member_id: str | None, skip: int, limit: int) -> list[dict[str, Any]]:
        rows = self.graph.run(gs.LIST_CONTACT_ACCESS, member=member_id, skip=skip, limit=limit)
        return [r["entry"] for r in rows]

    # --- members without contact search ----------------------------------------------

    def list_members_by_name(
        self, q: str | None, skip: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Members whose name contains `q` (contact details are not searched)."""
        term = q.strip().lower() if q and q.strip() else None
        rows = self.graph.run(gs.LIST_MEMBERS_BY_NAME, q=term, skip=skip, limit=limit)
        total = self.graph.run(gs.COUNT_MEMBERS_BY_NAME, q=term)[0]["n"]
        return [native(r["member"]) for r in rows], total

    # --- idempotent actions ------------------------------------------------------------

    def stored_answer(self, key: str) -> tuple[str, int, Any] | None:
        """(request fingerprint, status, body) of an action already done under this key."""
        rows = self.graph.run(gs.GET_IDEMPOTENCY, key=key)
        if not rows:
            return None
        return rows[0]["fingerprint"], int(rows[0]["status"]), json.loads(rows[0]["response"])

    def store_answer(self, key: str, fingerprint: str, status: int, body: Any) -> None:
        self.graph.run(
            gs.PUT_IDEMPOTENCY,
            key=key,
            fingerprint=fingerprint,
            status=status,
            response=json.dumps(body, default=str),
        )
        self.graph.run(gs.EXPIRE_IDEMPOTENCY)
