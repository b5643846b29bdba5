"""Per-process clients, created in the app's lifespan and handed to routes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Annotated

import psutil
from fastapi import Depends, Query, Request

from api.auth import Principal, Verifier, require_role
from api.protection import ClientAddress, Limiter, RedisGate, ResponseCache
from api.telemetry import Telemetry
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings


@dataclass
class AppState:
    settings: Settings
    graph: GraphStore
    figures: FigureStore  # synchronous client, for work in the threadpool
    gate: RedisGate  # asynchronous client, for the request path
    limiter: Limiter
    cache: ResponseCache
    verifier: Verifier
    addresses: ClientAddress
    telemetry: Telemetry
    process: psutil.Process  # one object: cpu_percent measures between calls
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=2000))


async def app_state(request: Request) -> AppState:
    """Async on purpose: FastAPI runs a plain-function dependency in the threadpool."""
    state: AppState = request.app.state.platform
    return state


# Typed dependencies for route signatures: `state: StateDep, who: OrganizerDep`.
StateDep = Annotated[AppState, Depends(app_state)]
ViewerDep = Annotated[Principal, Depends(require_role("viewer"))]
OrganizerDep = Annotated[Principal, Depends(require_role("organizer"))]
AdminDep = Annotated[Principal, Depends(require_role("admin"))]

MAX_OFFSET = 100_000  # deeper pages: narrow the query instead

# Paging bounds shared by the list routes: `limit: PageLimit = 50, offset: PageOffset = 0`.
PageLimit = Annotated[int, Query(ge=1, le=500)]
PageOffset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
