"""Members: golden records with provenance, merge suggestions and organizer corrections.

Each route parses and authorizes, makes one call into `services/` (corrections in
`services.corrections`, member reads in `services.members`) and shapes the answer.

Contact details (emails, phones, handles) are masked for viewers and not searchable by
them; organizers see them, and each such read is written to the access log. Corrections
accept an `Idempotency-Key`: a retry answers as the first attempt did.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.deps import AppState, OrganizerDep, PageLimit, PageOffset, StateDep, ViewerDep
from api.privacy import mask_member_detail, mask_record
from api.responses import MAX_ID_LENGTH, cached, dumps
from api.schemas.members import (
    ActionResult,
    MemberDetail,
    MemberHistory,
    MemberPage,
    MergeMembers,
    MustOrCannotLink,
    SuggestionPage,
    Unmerge,
)
from infra.identity_store import IdentityStore
from infra.privacy_store import PrivacyStore
from services.corrections import Actor, Answer, CorrectionError, Corrections, fingerprint
from services.identity import IdentityConfig
from services.members import UnknownMemberError, member_detail

router = APIRouter(prefix="/v1", tags=["members"])

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
REFUSAL_STATUS = {
    "bad_request": status.HTTP_400_BAD_REQUEST,
    "not_found": status.HTTP_404_NOT_FOUND,
    "conflict": status.HTTP_409_CONFLICT,
    "unprocessable": status.HTTP_422_UNPROCESSABLE_CONTENT,
}


def _error(code: int, error: str, message: str) -> HTTPException:
    return HTTPException(code, detail={"error": error, "message": message})


def _refused(exc: CorrectionError) -> HTTPException:
    return _error(REFUSAL_STATUS[exc.refusal], exc.error, exc.message)


def _corrections(state: AppState) -> Corrections:
    return Corrections(
        state.graph,
        IdentityConfig.from_settings(state.settings),
        state.settings.unmerge_max_decisions,
    )


def _actor(
    request: Request, principal: Principal, key: str | None, asked: Any, code: int = 200
) -> Actor:
    return Actor(
        user=principal.user_id,
        key=f"{principal.user_id}:{key}" if key else None,
        fingerprint=fingerprint(request.url.path, asked),
        status=code,
    )


async def _correct(state: AppState, run: Any) -> Response:
    """Runs one correction call in the threadpool; a fresh answer invalidates the caches."""
    try:
        answer: Answer = await run_in_threadpool(run)
    except CorrectionError as exc:
        raise _refused(exc) from exc
    if not answer.replayed:
        await state.cache.bump()  # cached responses must not outlive the correction
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    body = ActionResult.model_validate(answer.body).model_dump()
    return Response(dumps(body), answer.status, headers, media_type="application/json")


def _contact_view(principal: Principal) -> bool:
    return principal.has("organizer")


@router.get("/members", response_model=MemberPage)
async def list_members(
    state: StateDep,
    principal: ViewerDep,
    request: Request,
    search: str | None = Query(
        None,
        alias="q",
        min_length=1,
        max_length=200,
        description="name contains (organizers: or email)",
    ),
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> Response:
    """Members by name. Viewers get contact details masked and search names only."""
    page = {"limit": limit, "offset": offset}
    if not _contact_view(principal):

        def masked() -> dict[str, Any]:
            items, total = PrivacyStore(state.graph).list_members_by_name(search, offset, limit)
            items = [mask_record(member) for member in items]
            return {"items": items, "total": total, **page, "contact_details": "masked"}

        return await cached(state, "members.masked", {"q": search, **page}, masked)

    def visible() -> dict[str, Any]:
        items, total = IdentityStore(state.graph).list_members(search, offset, limit)
        shown = [
            member["member_id"]
            for member in items
            if member.get("email") or member.get("phone") or member.get("emails")
        ]
        PrivacyStore(state.graph).log_contact_access(
            principal.user_id, principal.role, "/v1/members", request.state.request_id, shown
        )
        return {"items": items, "total": total, **page, "contact_details": "visible"}

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
        try:
            detail = member_detail(state.graph, member_id)
        except UnknownMemberError:
            raise _error(
                status.HTTP_404_NOT_FOUND, "not_found", f"unknown member {member_id!r}"
            ) from None
        if not _contact_view(principal):
            return {**mask_member_detail(detail), "contact_details": "masked"}
        PrivacyStore(state.graph).log_contact_access(
            principal.user_id,
            principal.role,
            "/v1/members/{member_id}",
            request.state.request_id,
            [detail["member"]["member_id"]],
        )
        return {**detail, "contact_details": "visible"}

    return Response(dumps(await run_in_threadpool(load)), media_type="application/json")


@router.get("/merge-suggestions", response_model=SuggestionPage)
def list_suggestions(
    state: StateDep,
    _: OrganizerDep,
    member_id: str | None = Query(None, min_length=1, max_length=MAX_ID_LENGTH),
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> SuggestionPage:
    items, total = IdentityStore(state.graph).list_suggestions(member_id, offset, limit)
    return SuggestionPage.model_validate(
        {"items": items, "total": total, "limit": limit, "offset": offset}
    )


@router.post("/merge-suggestions/{suggestion_id}/accept", response_model=ActionResult)
async def accept_suggestion(
    state: StateDep,
    principal: OrganizerDep,
    request: Request,
    suggestion_id: MemberIdPath,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    actor = _actor(request, principal, idempotency_key, None)
    corrections = _corrections(state)
    return await _correct(state, lambda: corrections.answer_suggestion(suggestion_id, True, actor))


@router.post("/merge-suggestions/{suggestion_id}/reject", response_model=ActionResult)
async def reject_suggestion(
    state: StateDep,
    principal: OrganizerDep,
    request: Request,
    suggestion_id: MemberIdPath,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    actor = _actor(request, principal, idempotency_key, None)
    corrections = _corrections(state)
    return await _correct(state, lambda: corrections.answer_suggestion(suggestion_id, False, actor))


@router.post("/identity-decisions", response_model=ActionResult, status_code=201)
async def link_observations(
    state: StateDep,
    principal: OrganizerDep,
    request: Request,
    body: MustOrCannotLink,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Must-link (same person) or cannot-link (two people) between two records."""
    actor = _actor(request, principal, idempotency_key, body.model_dump(), code=201)
    corrections = _corrections(state)
    return await _correct(
        state,
        lambda: corrections.link(
            body.kind, body.observation_id, body.other_observation_id, actor, body.note
        ),
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
    actor = _actor(request, principal, idempotency_key, body.model_dump())
    corrections = _corrections(state)
    return await _correct(
        state, lambda: corrections.merge(member_id, body.other_member_id, actor, body.note)
    )


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
    actor = _actor(request, principal, idempotency_key, body.model_dump())
    corrections = _corrections(state)
    return await _correct(
        state, lambda: corrections.unmerge(member_id, body.observation_ids, actor, body.note)
    )


@router.get("/members/{member_id}/history", response_model=MemberHistory)
def member_history(state: StateDep, _: OrganizerDep, member_id: MemberIdPath) -> MemberHistory:
    """The decisions about this member's records and the runs that changed it, oldest first.

    Each decision carries the evidence when it was made (members then, probability and
    evidence of the suggestion) and whether it is still in effect (not undone or superseded).
    """
    try:
        found = _corrections(state).history(member_id)
    except CorrectionError as exc:
        raise _refused(exc) from exc
    return MemberHistory.model_validate(found)


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
    actor = _actor(request, principal, idempotency_key, decision_id)
    corrections = _corrections(state)
    return await _correct(state, lambda: corrections.undo(decision_id, actor))
