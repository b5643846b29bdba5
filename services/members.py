"""Reading members: golden records with provenance, identities, events and explanations."""

from __future__ import annotations

from typing import Any

from infra.identity_store import IdentityStore
from infra.neo4j_store import GraphStore


class UnknownMemberError(LookupError):
    """No member, live or retired, has this id."""


def member_detail(graph: GraphStore, member_id: str) -> dict[str, Any]:
    """The member an id names now (a retired id answers with the member it points to,
    and says so), with the events its records attended, oldest first."""
    store = IdentityStore(graph)
    live, reason = store.resolve_member_id(member_id)
    detail = store.get_member(live) if live is not None else None
    if live is None or detail is None:
        raise UnknownMemberError(member_id)
    if live != member_id:
        detail["redirected_from"] = member_id
        detail["redirect_reason"] = reason
    detail["metrics_stale"] = bool(detail["member"].get("metrics_stale"))
    detail["events"] = attended_events(detail["identities"])
    return detail


def attended_events(identities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per event (the first record seen there names it), by start time."""
    events: dict[str, dict[str, Any]] = {}
    for ident in identities:
        observation_id = ident["identity"]["observation_id"]
        for att in ident["attendance"]:
            events.setdefault(att["event_id"], {**att, "observation_id": observation_id})
    return sorted(events.values(), key=lambda e: str(e.get("starts_at") or ""))
