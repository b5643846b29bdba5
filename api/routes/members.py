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

from api.auth import Principal
from api.deps import AppState, OrganizerDep, StateDep, ViewerDep
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
    # Retired ids that held any of these records -> the member holding most of them now.
    redirects: dict[str, str]
    revived: list[str] = []  # retired ids that hold records again (e.g. after an undo)
    metrics_stale: list[str] = []  # members whose analytics wait for the next run


class HistoryDecision(BaseModel):
    """One organizer decision about a record of the member, with the evidence then."""

    decision_id: str
    action_id: str | None = None
    action: str | None = None  # accept_suggestion, reject_suggestion, merge_members, …
    kind: str  # must_link | cannot_link
    a: str
    b: str
    created_by: str | None = None
    created_at: str | None = None
    note: str | None = None
    suggestion_id: str | None = None
    member_a: str | None = None  # members holding a and b when it was decided
    member_b: str | None = None
    probability: float | None = None
    evidence: str | None = None
    superseded: bool = False
    superseded_by: str | None = None
    undone_at: str | None = None
    undone_by: str | None = None
    in_effect: bool


class HistoryRun(BaseModel):
    """A pipeline run or a correction's recomputation that changed the member's records."""

    run_id: str
    kind: str  # pipeline | correction | undo
    at: str | None = None
    by: str | None = None
    decision_ids: list[str] | None = None
    members_written: int | None = None
    created: int | None = None
    retired: int | None = None
    revived: int | None = None


class MemberHistory(BaseModel):
    member_id: str
    redirected_from: str | None = None
    former_ids: list[str]  # retired ids that now point here
    records: list[str]
    decisions: list[HistoryDecision]
    runs: list[HistoryRun]


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
    # True between a correction that changed the member's records and the next analytics
    # run: the `net_*` figures (if any) describe the member as it was before.
    metrics_stale: bool = False


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
    """Decision ids from the idempotency key: a retried action writes the same decisions.

    All rows of one correction share an `action_id` (the first decision's id): an undo
    reverses the correction as a whole.
    """
    if seed is not None:
        for r in rows:
            text = f"{seed}|{r['kind']}|{r['a']}|{r['b']}"
            r["decision_id"] = "dec_" + hashlib.sha1(text.encode()).hexdigest()[:16]
    for r in rows:
        r["action_id"] = rows[0]["decision_id"]
    return rows


def _with_context(
    rows: list[dict[str, Any]], held: dict[str, str], pair: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The evidence at decision time: the members holding each record, and the score."""
    for r in rows:
        r["member_a"], r["member_b"] = held.get(r["a"]), held.get(r["b"])
        if pair is not None:
            r["probability"] = pair.get("probability")
            r["evidence"] = pair.get("evidence")
    return rows


class MembersMovedError(Exception):
    """The members an action was decided on changed before their locks were taken."""


def _apply(
    state: AppState,
    rows: list[dict[str, Any]],
    affected: set[str],
    observations: list[str],
    before: Callable[[IdentityStore], None] | None = None,
    run: dict[str, Any] | None = None,
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
        ids = [r["decision_id"] for r in rows]
        run = run or {
            "run_id": f"run_{ids[0]}",
            "kind": "correction",
            "by": rows[0]["created_by"],
            "decision_ids": ids,
        }
        members, _ = store.recompute(sorted(affected), state.settings, run=run)
        now = store.members_of(observations)
        aliases = store.aliases_of(observations)
    live_now = sorted(set(now.values()))
    return ActionResult(
        decision_ids=run["decision_ids"],
        members=live_now,
        redirects={k: v["redirect_to"] for k, v in aliases.items()},
        revived=sorted(members.revived),
        metrics_stale=[m for m in live_now if m in set(store.stale_members(live_now))],
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
    state: StateDep,
    principal: ViewerDep,
    request: Request,
    q: str | None = Query(
        None, min_length=1, max_length=200, description="name contains (organizers: or email)"
    ),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
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
    state: StateDep,
    principal: ViewerDep,
    request: Request,
    member_id: MemberIdPath,
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
        detail["metrics_stale"] = bool(detail["member"].get("metrics_stale"))
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
    state: StateDep,
    _: OrganizerDep,
    member_id: str | None = Query(None, min_length=1, max_length=MAX_ID_LENGTH),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
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
        rows = _with_context(_seeded([row], seed), members, sugg)
        return _apply(state, rows, set(members.values()), [sugg["a"], sugg["b"]])

    return run


@router.post("/merge-suggestions/{suggestion_id}/accept", response_model=ActionResult)
async def accept_suggestion(
    state: StateDep,
    principal: OrganizerDep,
    request: Request,
    suggestion_id: MemberIdPath,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    run = _suggestion_run(suggestion_id, True, state, principal)
    return await _action(request, state, principal, idempotency_key, None, run)


@router.post("/merge-suggestions/{suggestion_id}/reject", response_model=ActionResult)
async def reject_suggestion(
    state: StateDep,
    principal: OrganizerDep,
    request: Request,
    suggestion_id: MemberIdPath,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    run = _suggestion_run(suggestion_id, False, state, principal)
    return await _action(request, state, principal, idempotency_key, None, run)


@router.post("/identity-decisions", response_model=ActionResult, status_code=201)
async def link_observations(
    state: StateDep,
    principal: OrganizerDep,
    request: Request,
    body: MustOrCannotLink,
    idempotency_key: IdempotencyKey = None,
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
        (row,) = _with_context(
            _seeded(
                [decision_row(body.kind, a, b, body.kind, principal.user_id, note=body.note)], seed
            ),
            members,
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
    state: StateDep,
    principal: OrganizerDep,
    request: Request,
    member_id: MemberIdPath,
    body: MergeMembers,
    idempotency_key: IdempotencyKey = None,
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
        held = store.members_of(records)
        return _apply(state, _with_context(_seeded(rows, seed), held), {left, right}, records)

    return await _action(request, state, principal, idempotency_key, body.model_dump(), run)


@router.post("/members/{member_id}/unmerge", response_model=ActionResult)
async def unmerge(
    state: StateDep,
    principal: OrganizerDep,
    request: Request,
    member_id: MemberIdPath,
    body: Unmerge,
    idempotency_key: IdempotencyKey = None,
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
                    "cannot_link",
                    a,
                    b,
                    "unmerge",
                    principal.user_id,
                    at=at,
                    note=body.note,
                    member_a=live,
                    member_b=live,
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


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


@router.get("/members/{member_id}/history", response_model=MemberHistory)
def member_history(
    state: StateDep,
    _: OrganizerDep,
    member_id: MemberIdPath,
) -> MemberHistory:
    """The decisions about this member's records and the runs that changed it, oldest first.

    Each decision carries the evidence when it was made (members then, probability and
    evidence of the suggestion) and whether it is still in effect (not undone or superseded).
    """
    store = _store(state)
    live = _live_member(store, member_id)
    found = store.member_history(live)
    if found is None:
        raise _error(status.HTTP_404_NOT_FOUND, "not_found", f"unknown member {member_id!r}")
    decisions = []
    for d in found["decisions"]:
        row: dict[str, Any] = {k: _iso(v) for k, v in d.items()}
        row["superseded"] = bool(d.get("superseded"))
        row["in_effect"] = not row["superseded"] and d.get("undone_at") is None
        decisions.append(HistoryDecision.model_validate(row))
    decisions.sort(key=lambda d: (d.created_at or "", d.decision_id))
    runs = [HistoryRun.model_validate({k: _iso(v) for k, v in r.items()}) for r in found["runs"]]
    runs.sort(key=lambda r: (r.at or "", r.run_id))
    return MemberHistory(
        member_id=live,
        redirected_from=member_id if live != member_id else None,
        former_ids=sorted(i for i in found["ids"] if i != live),
        records=sorted(found["records"]),
        decisions=decisions,
        runs=runs,
    )


@router.post("/identity-decisions/{decision_id}/undo", response_model=ActionResult)
async def undo_decision(
    state: StateDep,
    principal: OrganizerDep,
    request: Request,
    decision_id: MemberIdPath,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Reverses the correction this decision belongs to and recomputes only its records.

    Must-links it had superseded count again; a retired id whose records come back
    together is revived. 404: unknown decision; 409: already undone or superseded by a
    later correction (undo that one first).
    """

    def run(seed: str | None) -> ActionResult:
        store = _store(state)
        rows = store.action_decisions(decision_id)
        if not rows:
            raise _error(
                status.HTTP_404_NOT_FOUND, "not_found", f"unknown decision {decision_id!r}"
            )
        if any(r.get("undone_at") is not None for r in rows):
            raise _error(
                status.HTTP_409_CONFLICT, "already_undone", f"decision {decision_id!r} is undone"
            )
        if all(r.get("superseded") for r in rows):
            raise _error(
                status.HTTP_409_CONFLICT,
                "superseded",
                f"decision {decision_id!r} was superseded by "
                f"{rows[0].get('superseded_by')!r}; undo that one first",
            )
        ids = [r["decision_id"] for r in rows]
        pairs = [(r["a"], r["b"]) for r in rows] + store.superseded_pairs(ids)
        observations = sorted({o for p in pairs for o in p})
        held = store.members_of(observations)
        at = datetime.now(UTC)
        undo_id = (
            "undo_" + hashlib.sha1(f"{seed or at.isoformat()}|{ids[0]}".encode()).hexdigest()[:16]
        )

        def mark(s: IdentityStore) -> None:
            s.undo_decisions(ids, principal.user_id, at)

        return _apply(
            state,
            [],
            set(held.values()),
            sorted(held),
            mark,
            run={"run_id": undo_id, "kind": "undo", "by": principal.user_id, "decision_ids": ids},
        )

    return await _action(request, state, principal, idempotency_key, decision_id, run)
