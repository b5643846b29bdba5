"""Admin operations: address blocks, the contact-read access log, privacy export and erasure."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from api.deps import AdminDep, AppState, StateDep
from api.protection import RedisDownError
from api.responses import MAX_ID_LENGTH, MAX_OFFSET, dumps
from api.routes.members import ACTION_LOCK
from infra import erasure
from infra.analytics_store import AnalyticsStore
from infra.identity_store import IdentityStore
from infra.locks import MemberLocks
from infra.privacy_store import PrivacyStore

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class IpBlock(BaseModel):
    ip: str
    expires_in_seconds: int


class IpBlocks(BaseModel):
    items: list[IpBlock]
    total: int


class Lifted(BaseModel):
    ip: str
    lifted: bool


class AccessEntry(BaseModel):
    at: str
    by: str
    role: str | None = None
    route: str | None = None
    request_id: str | None = None
    member_ids: list[str]


class AccessLog(BaseModel):
    items: list[AccessEntry]
    limit: int
    offset: int


@router.get("/ip-blocks", response_model=IpBlocks)
async def list_blocks(
    state: StateDep,
    _: AdminDep,
) -> dict[str, Any]:
    """Addresses blocked for repeated failed authentication or rate-limit hits."""
    if not state.gate.available:
        raise RedisDownError()
    try:
        items = await state.limiter.blocks()
    except Exception as exc:
        raise state.gate.failed(exc) from exc
    return {"items": items, "total": len(items)}


@router.delete("/ip-blocks/{ip}", response_model=Lifted)
async def lift_block(
    state: StateDep,
    _: AdminDep,
    ip: str = Path(min_length=2, max_length=64),
) -> dict[str, Any]:
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
    return {"ip": ip, "lifted": lifted}


@router.get("/contact-access", response_model=AccessLog)
async def contact_access(
    state: StateDep,
    _: AdminDep,
    member_id: str | None = Query(None, min_length=1, max_length=MAX_ID_LENGTH),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> dict[str, Any]:
    """Who read whose contact details, newest first (the values read are never logged)."""
    items = await run_in_threadpool(
        PrivacyStore(state.graph).contact_access, member_id, offset, limit
    )
    return {"items": items, "limit": limit, "offset": offset}


class ErasureResult(BaseModel):
    member_id: str
    identities_erased: int
    raw_files_rewritten: int
    normalized_rows_removed: int
    tombstones: int
    cached_responses_removed: int


class PersonExport(BaseModel):
    model_config = ConfigDict(extra="allow")
    member_id: str
    exported_at: str
    member: dict[str, Any]
    provenance: list[dict[str, Any]]
    identities: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    raw_records: list[dict[str, Any]]
    quarantined_records: list[dict[str, Any]]


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
    quarantined records, each with where it came from (a subject access request)."""
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
        return found

    return Response(dumps(await run_in_threadpool(run)), media_type="application/json")


@router.post("/privacy/members/{member_id}/erase", response_model=ErasureResult)
async def erase_person(
    state: StateDep,
    principal: AdminDep,
    member_id: str = Path(min_length=1, max_length=MAX_ID_LENGTH),
) -> dict[str, Any]:
    """Erases one person everywhere (graph, raw landing, quarantine, normalized store,
    Redis, cached responses) and keeps a keyed-hash tombstone so later imports skip them."""
    store = IdentityStore(state.graph)
    s = state.settings

    def run() -> dict[str, Any]:
        live = store.resolve_member_id(member_id)[0] or member_id
        with ACTION_LOCK, MemberLocks(state.graph).members([live]):
            done = erasure.erase_person(
                state.graph, s.data_path, s.privacy_key(), live, principal.user_id, s.key_ring()
            )
            if done is None:
                raise _unknown(member_id)
            removed = _scrub_redis(state, done["member_id"])
            return {**done, "cached_responses_removed": removed}

    result = await run_in_threadpool(run)
    await state.cache.bump()
    return result


def _scrub_redis(state: AppState, member_id: str) -> int:
    """Cached responses go; analytics documents lose their entries about the member."""
    r, keys = state.figures.r, state.figures.keys
    cached = list(r.scan_iter(match=keys.response_cache("*", "*"), count=1000))
    if cached:
        r.delete(*cached)
    docs = [keys.community_summary(), keys.communities(), keys.graph_layout()]
    docs += [keys.snapshot(m) for m in AnalyticsStore(state.graph, state.figures).snapshot_months()]
    for key in docs:
        value = state.figures.get_json(key)
        if value is not None:
            state.figures.put_json(key, erasure.scrub_document(value, member_id))
    state.figures.bump_generation()
    return len(cached)
