"""The REST API: health, metrics and read endpoints over the member graph."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from neo4j.exceptions import ServiceUnavailable
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import Principal, require_role
from api.deps import AppState, app_state
from api.protection import cached_json
from api.routes import analytics, members
from infra.logging import configure_logging
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings, get_settings

log = structlog.get_logger("api")


class DependencyHealth(BaseModel):
    status: str
    latency_ms: float | None = None
    error: str | None = None


class Health(BaseModel):
    status: str
    dependencies: dict[str, DependencyHealth]


class EventOut(BaseModel):
    event_id: str
    source: str | None
    name: str | None
    starts_at: str | None
    timezone: str | None
    url: str | None
    city: str | None
    guests: int
    attended: int


class Page(BaseModel):
    items: list[EventOut]
    total: int
    limit: int
    offset: int


async def _check(probe: Callable[[], float], timeout: float) -> DependencyHealth:
    try:
        latency = await asyncio.wait_for(asyncio.to_thread(probe), timeout=timeout)
        return DependencyHealth(status="up", latency_ms=round(latency, 2))
    except Exception as exc:  # any failure of a dependency is reported, not raised
        return DependencyHealth(status="down", error=f"{type(exc).__name__}: {exc}"[:300])


def create_app(settings: Settings | None = None) -> FastAPI:
    """Builds the app; settings are read here, when the server starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or get_settings()
        configure_logging(cfg.log_level)
        graph = GraphStore.from_settings(cfg)
        figures = FigureStore.from_settings(cfg)
        app.state.platform = AppState(cfg, graph, figures)
        try:
            yield
        finally:
            graph.close()
            figures.r.close()

    app = FastAPI(title="Community platform API", version="0.1.0", lifespan=lifespan)
    registry = CollectorRegistry()
    requests = Counter(
        "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "http_request_seconds", "HTTP request latency", ["method", "route"], registry=registry
    )

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Request id, access log and Prometheus figures, labelled by route template."""
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        try:
            response = await call_next(request)
            elapsed = time.perf_counter() - started
            route = getattr(request.scope.get("route"), "path", "unmatched")
            latency.labels(request.method, route).observe(elapsed)
            requests.labels(request.method, route, str(response.status_code)).inc()
            response.headers["X-Request-ID"] = request_id
            log.info(
                "request",
                method=request.method,
                route=route,
                status=response.status_code,
                ms=round(elapsed * 1000, 1),
            )
        finally:
            structlog.contextvars.clear_contextvars()
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = (
            exc.detail
            if isinstance(exc.detail, dict)
            else {"error": "http_error", "message": str(exc.detail)}
        )
        return JSONResponse(status_code=exc.status_code, content=detail, headers=exc.headers)

    @app.exception_handler(ServiceUnavailable)
    async def graph_down(_: Request, exc: ServiceUnavailable) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            content={
                "error": "unavailable",
                "message": f"the graph database is unavailable: {exc}",
            },
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "message": e.get("msg")}
            for e in exc.errors()
        ]
        return JSONResponse(
            status_code=422, content={"error": "invalid_request", "details": errors}
        )

    @app.get("/health", response_model=Health, tags=["ops"])
    async def health(response: Response, state: AppState = Depends(app_state)) -> Health:
        """Each dependency's state and latency; 503 when any is down."""
        neo4j, redis = await asyncio.gather(
            _check(state.graph.ping, 3.0), _check(state.figures.ping, 3.0)
        )
        deps = {"neo4j": neo4j, "redis": redis}
        ok = all(d.status == "up" for d in deps.values())
        response.status_code = 200 if ok else 503
        return Health(status="ok" if ok else "degraded", dependencies=deps)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/events", response_model=Page, tags=["events"])
    async def list_events(
        request: Request,
        response: Response,
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0),
        state: AppState = Depends(app_state),
        _: Principal = Depends(require_role("viewer")),
    ) -> Page:
        """Events, newest first, with guest and check-in counts from the graph."""

        async def produce() -> dict[str, Any]:
            rows, total = await asyncio.to_thread(state.graph.list_events, offset, limit)
            items = [EventOut(**_jsonable(r)) for r in rows]
            return Page(items=items, total=total, limit=limit, offset=offset).model_dump()

        return Page(
            **await cached_json(
                state.figures, request, response, state.settings.cache_ttl_seconds, produce
            )
        )

    app.include_router(members.router)
    app.include_router(analytics.router)
    return app


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.iso_format() if hasattr(v, "iso_format") else v) for k, v in row.items()}
