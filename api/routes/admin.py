"""Admin operations: address blocks and the contact-read access log."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, require_role
from api.deps import AppState, app_state
from api.protection import RedisDownError
from api.responses import MAX_ID_LENGTH, MAX_OFFSET
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
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("admin")),
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
    ip: str = Path(min_length=2, max_length=64),
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("admin")),
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
    member_id: str | None = Query(None, min_length=1, max_length=MAX_ID_LENGTH),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("admin")),
) -> dict[str, Any]:
    """Who read whose contact details, newest first (the values read are never logged)."""
    items = await run_in_threadpool(
        PrivacyStore(state.graph).contact_access, member_id, offset, limit
    )
    return {"items": items, "limit": limit, "offset": offset}
