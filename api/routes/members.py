"""Members: golden records with provenance, merge suggestions and organizer corrections.

Every correction is stored as a decision in Neo4j and applied at once by re-resolving
only the records of the members it touches (same domain code as the pipeline); later
pipeline runs apply it again.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from api.auth import Principal, require_role
from api.deps import AppState, app_state
from infra.identity_store import IdentityStore, decision_row

router = APIRouter(prefix="/v1", tags=["members"])


class MustOrCannotLink(BaseModel):
    kind: Literal["must_link", "cannot_link"]
    observation_id: str = Field(min_length=1)
    other_observation_id: str = Field(min_length=1)
    note: str | None = Field(default=None, max_length=1000)


class MergeMembers(BaseModel):
    other_member_id: str = Field(min_length=1)
    note: str | None = Field(default=None, max_length=1000)


class Unmerge(BaseModel):
    observation_ids: list[str] = Field(min_length=1, max_length=1000)
    note: str | None = Field(default=None, max_length=1000)


class ActionResult(BaseModel):
    decision_ids: list[str]
    members: list[str]  # live members holding the records after the action
    redirects: dict[str, str]  # ids retired by the action -> where they point now


def _error(code: int, error: str, message: str) -> HTTPException:
    return HTTPException(code, detail={"error": error, "message": message})


def _store(state: AppState) -> IdentityStore:
    return IdentityStore(state.graph)


def _live_member(store: IdentityStore, member_id: str) -> str:
    live, _ = store.resolve_member_id(member_id)
    if live is None:
        raise _error(status.HTTP_404_NOT_FOUND, "not_found", f"unknown member {member_id!r}")
    return live


def _apply(
    state: AppState, rows: list[dict[str, Any]], affected: set[str], observations: list[str]
) -> ActionResult:
    """Stores the decisions, recomputes the affected members, reports where records went."""
    store = _store(state)
    store.add_decisions(rows)
    members, _ = store.recompute(sorted(affected), state.settings)
    state.figures.bump_generation()  # cached responses must not outlive the correction
    now = store.members_of(observations)
    return ActionResult(
        decision_ids=[r["decision_id"] for r in rows],
        members=sorted(set(now.values())),
        redirects={k: v for k, v in members.redirects.items() if k in affected},
    )


@router.get("/members")
def list_members(
    q: str | None = Query(None, max_length=200, description="name or email contains"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("viewer")),
) -> dict[str, Any]:
    items, total = _store(state).list_members(q, offset, limit)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/members/{member_id}")
def get_member(
    member_id: str,
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("viewer")),
) -> dict[str, Any]:
    """Golden record with provenance, identities, events and merge explanations.

    An id retired by a merge or split answers with the member it now points to and
    `redirected_from`.
    """
    store = _store(state)
    live, reason = store.resolve_member_id(member_id)
    if live is None:
        raise _error(status.HTTP_404_NOT_FOUND, "not_found", f"unknown member {member_id!r}")
    detail = store.get_member(live)
    if detail is None:
        raise _error(status.HTTP_404_NOT_FOUND, "not_found", f"unknown member {member_id!r}")
    if live != member_id:
        detail["redirected_from"] = member_id
        detail["redirect_reason"] = reason
    events: dict[str, dict[str, Any]] = {}
    for ident in detail["identities"]:
        for att in ident["attendance"]:
            events.setdefault(
                att["event_id"], {**att, "observation_id": ident["identity"]["observation_id"]}
            )
    detail["events"] = sorted(events.values(), key=lambda e: str(e.get("starts_at") or ""))
    return detail


@router.get("/merge-suggestions")
def list_suggestions(
    member_id: str | None = Query(None),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("organizer")),
) -> dict[str, Any]:
    items, total = _store(state).list_suggestions(member_id, offset, limit)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


async def _suggestion_action(
    suggestion_id: str, accept: bool, state: AppState, principal: Principal
) -> ActionResult:
    def run() -> ActionResult:
        store = _store(state)
        sugg = store.get_suggestion(suggestion_id)
        if sugg is None:
            raise _error(
                status.HTTP_404_NOT_FOUND, "not_found", f"unknown suggestion {suggestion_id!r}"
            )
        members = store.members_of([sugg["a"], sugg["b"]])
        kind = "must_link" if accept else "cannot_link"
        action = "accept_suggestion" if accept else "reject_suggestion"
        row = decision_row(
            kind, sugg["a"], sugg["b"], action, principal.user_id, suggestion_id=suggestion_id
        )
        return _apply(state, [row], set(members.values()), [sugg["a"], sugg["b"]])

    return await asyncio.to_thread(run)


@router.post("/merge-suggestions/{suggestion_id}/accept", response_model=ActionResult)
async def accept_suggestion(
    suggestion_id: str,
    state: AppState = Depends(app_state),
    principal: Principal = Depends(require_role("organizer")),
) -> ActionResult:
    return await _suggestion_action(suggestion_id, True, state, principal)


@router.post("/merge-suggestions/{suggestion_id}/reject", response_model=ActionResult)
async def reject_suggestion(
    suggestion_id: str,
    state: AppState = Depends(app_state),
    principal: Principal = Depends(require_role("organizer")),
) -> ActionResult:
    return await _suggestion_action(suggestion_id, False, state, principal)


@router.post("/identity-decisions", response_model=ActionResult, status_code=201)
def link_observations(
    body: MustOrCannotLink,
    state: AppState = Depends(app_state),
    principal: Principal = Depends(require_role("organizer")),
) -> ActionResult:
    """Must-link (same person) or cannot-link (two people) between two records."""
    a, b = body.observation_id, body.other_observation_id
    if a == b:
        raise _error(
            status.HTTP_400_BAD_REQUEST, "invalid_decision", "a record cannot be linked to itself"
        )
    store = _store(state)
    members = store.members_of([a, b])
    for obs in (a, b):
        if obs not in members:
            raise _error(status.HTTP_404_NOT_FOUND, "not_found", f"unknown observation {obs!r}")
    row = decision_row(body.kind, a, b, body.kind, principal.user_id, note=body.note)
    if body.kind == "cannot_link" and members[a] == members[b]:
        store.supersede_must_links(row["decision_id"], [a], [b])
    return _apply(state, [row], set(members.values()), [a, b])


@router.post("/members/{member_id}/merge", response_model=ActionResult)
def merge_members(
    member_id: str,
    body: MergeMembers,
    state: AppState = Depends(app_state),
    principal: Principal = Depends(require_role("organizer")),
) -> ActionResult:
    """Merges another member into this one: must-links pin every record of both together."""
    store = _store(state)
    left = _live_member(store, member_id)
    right = _live_member(store, body.other_member_id)
    if left == right:
        raise _error(
            status.HTTP_409_CONFLICT, "invalid_decision", "a member cannot be merged with itself"
        )
    # Every record is pinned to one representative, so the automatic constraints (which a
    # must-link overrides only for its own pair) cannot pull records back out.
    records = sorted(store.load_assignment([left, right])["observation_id"].to_list())
    rep, at = records[0], datetime.now(UTC)
    rows = [
        decision_row(
            "must_link", rep, obs, "merge_members", principal.user_id, at=at, note=body.note
        )
        for obs in records[1:]
    ]
    return _apply(state, rows, {left, right}, records)


@router.post("/members/{member_id}/unmerge", response_model=ActionResult)
def unmerge(
    member_id: str,
    body: Unmerge,
    state: AppState = Depends(app_state),
    principal: Principal = Depends(require_role("organizer")),
) -> ActionResult:
    """Splits the given records off a member; both sides are recomputed from their records."""
    store = _store(state)
    live = _live_member(store, member_id)
    held = set(store.load_assignment([live])["observation_id"].to_list())
    split = sorted(set(body.observation_ids))
    foreign = [o for o in split if o not in held]
    if foreign:
        raise _error(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            "not_in_member",
            f"records not held by member {live!r}: {', '.join(foreign[:20])}",
        )
    rest = sorted(held - set(split))
    if not rest:
        raise _error(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            "invalid_decision",
            "splitting off every record of a member changes nothing; leave at least one",
        )
    at = datetime.now(UTC)
    rows = [
        decision_row("cannot_link", a, b, "unmerge", principal.user_id, at=at, note=body.note)
        for a in split
        for b in rest
    ]
    store.supersede_must_links(rows[0]["decision_id"], split, rest)
    return _apply(state, rows, {live}, sorted(held))
