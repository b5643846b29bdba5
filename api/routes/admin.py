"""Admin operations: address blocks, the contact-read access log, privacy export and erasure."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api.deps import AdminDep, AppState, PageOffset, StateDep
from api.protection import RedisDownError
from api.responses import MAX_ID_LENGTH, dumps
from api.schemas.admin import (
    AccessEntry,
    AccessLog,
    ErasureResult,
    IpBlock,
    IpBlocks,
    Lifted,
    PersonExport,
)
from infra import erasure
from infra.analytics_store import AnalyticsStore
from infra.identity_store import IdentityStore
from infra.locks import MemberLocks
from infra.privacy_store import PrivacyStore
from services.corrections import ACTION_LOCK

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/ip-blocks", response_model=IpBlocks)
async def list_blocks(state: StateDep, _: AdminDep) -> IpBlocks:
    """Addresses blocked for repeated failed authentication or rate-limit hits."""
    if not state.gate.available:
        raise RedisDownError()
    try:
        found = await state.limiter.blocks()
    except Exception as exc:
        raise state.gate.failed(exc) from exc
    items = [IpBlock.model_validate(block) for block in found]
    return IpBlocks(items=items, total=len(items))


@router.delete("/ip-blocks/{ip}", response_model=Lifted)
async def lift_block(
    state: StateDep,
    _: AdminDep,
    ip: str = Path(min_length=2, max_length=64),
) -> Lifted:
    """Lifts a block at once (`lifted` is false when there was none)."""
    try:
        ipaddress.ip_address(ip)
    except ValueError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            detail={"error": "invalid_request", "message": "not an IP address"},
        ) from exc
    if not state.gate.available:
        raise RedisDownError()
    try:
        lifted = await state.limiter.lift(ip)
    except Exception as exc:
        raise state.gate.failed(exc) from exc
    return Lifted(ip=ip, lifted=lifted)


@router.get("/contact-access", response_model=AccessLog)
async def contact_access(
    state: StateDep,
    _: AdminDep,
    member_id: str | None = Query(None, min_length=1, max_length=MAX_ID_LENGTH),
    limit: int = Query(100, ge=1, le=1000),
    offset: PageOffset = 0,
) -> AccessLog:
    """Who read whose contact details, newest first (the values read are never logged)."""
    found = await run_in_threadpool(
        PrivacyStore(state.graph).contact_access, member_id, offset, limit
    )
    items = [AccessEntry.model_validate(entry) for entry in found]
    return AccessLog(items=items, limit=limit, offset=offset)


def _unknown(member_id: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        detail={"error": "not_found", "message": f"unknown member {member_id!r}"},
    )


@router.get("/privacy/members/{member_id}/export", response_model=PersonExport)
async def export_person(
    state: StateDep,
    principal: AdminDep,
    request: Request,
    member_id: str = Path(min_length=1, max_length=MAX_ID_LENGTH),
) -> Response:
    """Everything held about one person: identities, attendance, decisions, raw records,
    quarantined records, each with where it came from (a subject access request).

    Returns a `Response`: the records hold the sources' values as they were (graph dates
    among them), written as text by `dumps`; the export is checked against PersonExport
    before it is sent."""
    store = IdentityStore(state.graph)

    def run() -> dict[str, Any]:
        live, _ = store.resolve_member_id(member_id)
        found = erasure.export_person(
            state.graph, state.settings.data_path, live or member_id, state.settings.key_ring()
        )
        if found is None:
            raise _unknown(member_id)
        PrivacyStore(state.graph).log_contact_access(
            principal.user_id,
            principal.role,
            "privacy export",
            request.state.request_id,
            [found["member_id"]],
        )
        PersonExport.model_validate(found)
        return found

    return Response(dumps(await run_in_threadpool(run)), media_type="application/json")


@router.post("/privacy/members/{member_id}/erase", response_model=ErasureResult)
async def erase_person(
    state: StateDep,
    principal: AdminDep,
    member_id: str = Path(min_length=1, max_length=MAX_ID_LENGTH),
) -> ErasureResult:
    """Erases one person everywhere (graph, raw landing, quarantine, normalized store,
    Redis, cached responses) and keeps a keyed-hash tombstone so later imports skip them."""
    store = IdentityStore(state.graph)
    cfg = state.settings

    def run() -> ErasureResult:
        live = store.resolve_member_id(member_id)[0] or member_id
        with ACTION_LOCK, MemberLocks(state.graph).members([live]):
            done = erasure.erase_person(
                state.graph,
                cfg.data_path,
                cfg.privacy_key(),
                live,
                principal.user_id,
                cfg.key_ring(),
            )
            if done is None:
                raise _unknown(member_id)
            removed = _scrub_redis(state, done["member_id"])
            return ErasureResult(**done, cached_responses_removed=removed)

    result = await run_in_threadpool(run)
    await state.cache.bump()
    return result


def _scrub_redis(state: AppState, member_id: str) -> int:
    """Cached responses go; analytics documents lose their entries about the member."""
    client, keys = state.figures.r, state.figures.keys
    cached = list(client.scan_iter(match=keys.response_cache("*", "*"), count=1000))
    if cached:
        client.delete(*cached)
    # Scrubbed as plain JSON, whatever their version: an erasure never waits for a migration.
    months = AnalyticsStore(state.graph, state.figures).snapshot_months()
    docs = [keys.community_summary(), keys.communities(), keys.graph_layout()]
    docs += [keys.snapshot(month) for month in months]
    for key in docs:
        value = state.figures.get_json(key)
        if value is not None:
            state.figures.put_json(
                key, _without_edges_of(erasure.scrub_document(value, member_id), member_id)
            )
    state.figures.bump_generation()
    return len(cached)


def _without_edges_of(value: Any, member_id: str) -> Any:
    """The layout's edges name both ends (`source`, `target`): those of the member go too."""
    if isinstance(value, dict) and isinstance(value.get("edges"), list):
        ends = ("source", "target")
        value["edges"] = [
            edge
            for edge in value["edges"]
            if not (isinstance(edge, dict) and member_id in (edge.get(end) for end in ends))
        ]
    return value
