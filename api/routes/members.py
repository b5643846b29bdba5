"""Members: golden records with provenance, merge suggestions and organizer corrections.

Every correction is stored as a decision in Neo4j and applied at once by re-resolving
only the records of the members it touches (same domain code as the pipeline); later
pipeline runs apply it again.

Contact details (emails, phones, handles) are masked for viewers and not searchable by
them; organizers see them, and each such read is written to the access log. Corrections
accept an `Idempotency-Key`: a retry answers as the first attempt did, and decision ids
derive from the key, so a retry after a failure part-way never stores a decision twice.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, require_role
from api.deps import AppState, app_state
from api.privacy import mask_member_detail, mask_record
from api.responses import MAX_ID_LENGTH, MAX_OFFSET, cached, dumps
from infra.identity_store import IdentityStore, decision_row
from infra.locks import MemberLocks
from infra.privacy_store import PrivacyStore

router = APIRouter(prefix="/v1", tags=["members"])

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
MemberIdPath = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=8,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Makes a retry safe: the same key answers as the first attempt did.",
    ),
]
# Corrections are applied one at a time in this process, so two organizers acting on the
# same members cannot interleave their recomputations.
ACTION_LOCK = threading.Lock()
ACTION_ATTEMPTS = 5


class MustOrCannotLink(BaseModel):
    kind: Literal["must_link", "cannot_link"]
    observation_id: Id
    other_observation_id: Id
    note: str | None = Field(default=None, max_length=1000)


class MergeMembers(BaseModel):
    other_member_id: Id
    note: str | None = Field(default=None, max_length=1000)


class Unmerge(BaseModel):
    observation_ids: list[Id] = Field(min_length=1, max_length=1000)
    note: str | None = Field(default=None, max_length=1000)


class ActionResult(BaseModel):
    decision_ids: list[str]
    members: list[str]  # live members holding the records after the action
    redirects: dict[str, str]  # ids retired by the action -> where they point now


class MemberSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    member_id: str
    display_name: str | None = None
    email: str | None = None
    emails: list[str] | None = None
    phone: str | None = None
    company: str | None = None
    job_title: str | None = None
    observation_count: int | None = None
    sources: list[str] | None = None
    first_seen: str | None = None
    last_seen: str | None = None


class MemberPage(BaseModel):
    items: list[MemberSummary]
    total: int
    limit: int
    offset: int
    contact_details: Literal["visible", "masked"]


class MemberDetail(BaseModel):
    member: dict[str, Any]
    provenance: list[dict[str, Any]]
    identities: list[dict[str, Any]]
    explanations: list[dict[str, Any]]
    events: list[dict[str, Any]]
    contact_details: Literal["visible", "masked"]
    redirected_from: str | None = None
    redirect_reason: str | None = None


class SuggestionPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def _error(code: int, error: str, message: str) -> HTTPException:
    return HTTPException(code, detail={"error": error, "message": message})


def _store(state: AppState) -> IdentityStore:
    return IdentityStore(state.graph)


def _live_member(store: IdentityStore, member_id: str) -> str:
    live, _ = store.resolve_member_id(member_id)
    if live is None:
        raise _error(status.HTTP_404_NOT_FOUND, "not_found", f"unknown member {member_id!r}")
    return live


def _seeded(rows: list[dict[str, Any]], seed: str | None) -> list[dict[str, Any]]:
    """Decision ids from the idempotency key: a retried action writes the same decisions."""
    if seed is None:
        return rows
    for r in rows:
        text = f"{seed}|{r['kind']}|{r['a']}|{r['b']}"
        r["decision_id"] = "dec_" + hashlib.sha1(text.encode()).hexdigest()[:16]
    return rows


class MembersMovedError(Exception):
    """The members an action was decided on changed before their locks were taken."""


def _apply(
    state: AppState,
    rows: list[dict[str, Any]],
    affected: set[str],
    observations: list[str],
    before: Callable[[IdentityStore], None] | None = None,
) -> ActionResult:
    """Stores the decisions, recomputes the affected members, reports where records went.

    Runs under the affected members' locks (shared with the pipeline's member write);
    if the members moved meanwhile, the caller decides again from the new state.
    """
    store = _store(state)
    with MemberLocks(state.graph).members(sorted(affected)):
        held = store.members_of(observations)
        live = {m for m in affected if store.resolve_member_id(m)[0] == m}
        if live != affected or not set(held.values()) <= affected:
            raise MembersMovedError()
        if before is not None:
            before(store)
        store.add_decisions(rows)
        members, _ = store.recompute(sorted(affected), state.settings)
        now = store.members_of(observations)
    return ActionResult(
        decision_ids=[r["decision_id"] for r in rows],
        members=sorted(set(now.values())),
        redirects={k: v for k, v in members.redirects.items() if k in affected},
    )


async def _action(
    request: Request,
    state: AppState,
    principal: Principal,
    idempotency_key: str | None,
    fingerprint: Any,
    run: Callable[[str | None], ActionResult],
    status_code: int = 200,
) -> Response:
    """Runs one correction (serialized), replays a keyed retry, then invalidates caches."""
    key = f"{principal.user_id}:{idempotency_key}" if idempotency_key else None
    print_ = hashlib.sha256(
        json.dumps([request.url.path, fingerprint], sort_keys=True, default=str).encode()
    ).hexdigest()
    privacy = PrivacyStore(state.graph)

    def guarded() -> tuple[int, Any, bool]:
        with ACTION_LOCK:
            if key is not None:
                stored = privacy.stored_answer(key)
                if stored is not None:
                    if stored[0] != print_:
                        raise _error(
                            status.HTTP_409_CONFLICT,
                            "idempotency_key_reused",
                            "this Idempotency-Key was used for a different request",
                        )
                    return stored[1], stored[2], True
            for _ in range(ACTION_ATTEMPTS):
                try:
                    result = run(key).model_dump()
                    break
                except MembersMovedError:
                    continue
            else:
                raise _error(
                    status.HTTP_409_CONFLICT,
                    "concurrent_change",
                    "the members changed while this correction was applied; retry",
                )
            if key is not None:
                privacy.store_answer(key, print_, status_code, result)
            return status_code, result, False

    code, body, replayed = await run_in_threadpool(guarded)
    if not replayed:
        await state.cache.bump()  # cached responses must not outlive the correction
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return Response(dumps(body), code, headers, media_type="application/json")


def _contact_view(principal: Principal) -> bool:
    return principal.has("organizer")


@router.get("/members", response_model=MemberPage)
async def list_members(
    request: Request,
    q: str | None = Query(
        None, min_length=1, max_length=200, description="name contains (organizers: or email)"
    ),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    state: AppState = Depends(app_state),
    principal: Principal = Depends(require_role("viewer")),
) -> Response:
    """Members by name. Viewers get contact details masked and search names only."""
    if not _contact_view(principal):

        def masked() -> dict[str, Any]:
            items, total = PrivacyStore(state.graph).list_members_by_name(q, offset, limit)
            return {
                "items": [mask_record(m) for m in items],
                "total": total,
                "limit": limit,
                "offset": offset,
                "contact_details": "masked",
            }

        params = {"q": q, "limit": limit, "offset": offset}
        return await cached(state, "members.masked", params, masked)

    def visible() -> dict[str, Any]:
        items, total = _store(state).list_members(q, offset, limit)
        PrivacyStore(state.graph).log_contact_access(
            principal.user_id,
            principal.role,
            "/v1/members",
            request.state.request_id,
            [m["member_id"] for m in items if m.get("email") or m.get("phone") or m.get("emails")],
        )
        return {
            "items": items,
            "total": total,
            "limit": limit,
            "offset": offset,
            "contact_details": "visible",
        }

    return Response(dumps(await run_in_threadpool(visible)), media_type="application/json")


@router.get("/members/{member_id}", response_model=MemberDetail)
async def get_member(
    request: Request,
    member_id: MemberIdPath,
    state: AppState = Depends(app_state),
    principal: Principal = Depends(require_role("viewer")),
) -> Response:
    """Golden record with provenance, identities, events and merge explanations.

    An id retired by a merge or split answers with the member it now points to and
    `redirected_from`. Viewers get contact details masked.
    """

    def load() -> dict[str, Any]:
        store = _store(state)
        live, reason = store.resolve_member_id(member_id)
        detail = store.get_member(live) if live is not None else None
        if live is None or detail is None:
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
        if not _contact_view(principal):
            detail = mask_member_detail(detail)
            detail["contact_details"] = "masked"
            return detail
        PrivacyStore(state.graph).log_contact_access(
            principal.user_id,
            principal.role,
            "/v1/members/{member_id}",
            request.state.request_id,
            [live],
        )
        detail["contact_details"] = "visible"
        return detail

    return Response(dumps(await run_in_threadpool(load)), media_type="application/json")


@router.get("/merge-suggestions", response_model=SuggestionPage)
def list_suggestions(
    member_id: str | None = Query(None, min_length=1, max_length=MAX_ID_LENGTH),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("organizer")),
) -> dict[str, Any]:
    items, total = _store(state).list_suggestions(member_id, offset, limit)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def _suggestion_run(
    suggestion_id: str, accept: bool, state: AppState, principal: Principal
) -> Callable[[str | None], ActionResult]:
    def run(seed: str | None) -> ActionResult:
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
        return _apply(state, _seeded([row], seed), set(members.values()), [sugg["a"], sugg["b"]])

    return run


@router.post("/merge-suggestions/{suggestion_id}/accept", response_model=ActionResult)
async def accept_suggestion(
    request: Request,
    suggestion_id: MemberIdPath,
    idempotency_key: IdempotencyKey = None,
    state: AppState = Depends(app_state),
    principal: Principal = Depends(require_role("organizer")),
) -> Response:
    run = _suggestion_run(suggestion_id, True, state, principal)
    return await _action(request, state, principal, idempotency_key, None, run)


@router.post("/merge-suggestions/{suggestion_id}/reject", response_model=ActionResult)
async def reject_suggestion(
    request: Request,
    suggestion_id: MemberIdPath,
    idempotency_key: IdempotencyKey = None,
    state: AppState = Depends(app_state),
    principal: Principal = Depends(require_role("organizer")),
) -> Response:
    run = _suggestion_run(suggestion_id, False, state, principal)
    return await _action(request, state, principal, idempotency_key, None, run)


@router.post("/identity-decisions", response_model=ActionResult, status_code=201)
async def link_observations(
    request: Request,
    body: MustOrCannotLink,
    idempotency_key: IdempotencyKey = None,
    state: AppState = Depends(app_state),
    principal: Principal = Depends(require_role("organizer")),
) -> Response:
    """Must-link (same person) or cannot-link (two people) between two records."""
    a, b = body.observation_id, body.other_observation_id
    if a == b:
        raise _error(
            status.HTTP_400_BAD_REQUEST, "invalid_decision", "a record cannot be linked to itself"
        )

    def run(seed: str | None) -> ActionResult:
        store = _store(state)
        members = store.members_of([a, b])
        for obs in (a, b):
            if obs not in members:
                raise _error(status.HTTP_404_NOT_FOUND, "not_found", f"unknown observation {obs!r}")
        (row,) = _seeded(
            [decision_row(body.kind, a, b, body.kind, principal.user_id, note=body.note)], seed
        )

        def supersede(s: IdentityStore) -> None:
            if body.kind == "cannot_link" and members[a] == members[b]:
                s.supersede_must_links(row["decision_id"], [a], [b])

        return _apply(state, [row], set(members.values()), [a, b], supersede)

    return await _action(
        request, state, principal, idempotency_key, body.model_dump(), run, status_code=201
    )


@router.post("/members/{member_id}/merge", response_model=ActionResult)
async def merge_members(
    request: Request,
    member_id: MemberIdPath,
    body: MergeMembers,
    idempotency_key: IdempotencyKey = None,
    state: AppState = Depends(app_state),
    principal: Principal = Depends(require_role("organizer")),
) -> Response:
    """Merges another member into this one: must-links pin every record of both together."""

    def run(seed: str | None) -> ActionResult:
        store = _store(state)
        left = _live_member(store, member_id)
        right = _live_member(store, body.other_member_id)
        if left == right:
            raise _error(
                status.HTTP_409_CONFLICT,
                "invalid_decision",
                "a member cannot be merged with itself",
            )
        # Every record is pinned to one representative, so the automatic constraints (which
        # a must-link overrides only for its own pair) cannot pull records back out.
        records = sorted(store.load_assignment([left, right])["observation_id"].to_list())
        rep, at = records[0], datetime.now(UTC)
        rows = [
            decision_row(
                "must_link", rep, obs, "merge_members", principal.user_id, at=at, note=body.note
            )
            for obs in records[1:]
        ]
        return _apply(state, _seeded(rows, seed), {left, right}, records)

    return await _action(request, state, principal, idempotency_key, body.model_dump(), run)


@router.post("/members/{member_id}/unmerge", response_model=ActionResult)
async def unmerge(
    request: Request,
    member_id: MemberIdPath,
    body: Unmerge,
    idempotency_key: IdempotencyKey = None,
    state: AppState = Depends(app_state),
    principal: Principal = Depends(require_role("organizer")),
) -> Response:
    """Splits the given records off a member; both sides are recomputed from their records."""
    cap = state.settings.unmerge_max_decisions

    def run(seed: str | None) -> ActionResult:
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
        if len(split) * len(rest) > cap:
            raise _error(
                status.HTTP_422_UNPROCESSABLE_ENTITY,
                "too_many_decisions",
                f"this split needs {len(split) * len(rest)} decisions (limit {cap}); "
                "split the member in smaller steps",
            )
        at = datetime.now(UTC)
        rows = _seeded(
            [
                decision_row(
                    "cannot_link", a, b, "unmerge", principal.user_id, at=at, note=body.note
                )
                for a in split
                for b in rest
            ],
            seed,
        )

        def supersede(s: IdentityStore) -> None:
            s.supersede_must_links(rows[0]["decision_id"], split, rest)

        return _apply(state, rows, {live}, sorted(held), supersede)

    return await _action(request, state, principal, idempotency_key, body.model_dump(), run)
