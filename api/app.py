"""The REST API: health, metrics and read endpoints over the member graph."""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psutil
import redis
import structlog
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import Principal, Verifier, check_auth_settings, is_loopback, require_role
from api.business_metrics import BusinessCollector
from api.deps import AppState, app_state
from api.edge import Edge, error_body
from api.protection import ClientAddress, Limiter, RedisDownError, RedisGate, ResponseCache
from api.responses import ERROR_RESPONSES, MAX_OFFSET, cached
from api.routes import admin, analytics, members
from infra.locks import LockTimeoutError
from infra.logging import configure_logging
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings, get_settings

log = structlog.get_logger("api")


class DependencyHealth(BaseModel):
    status: str
    latency_ms: float | None = None
    error: str | None = None


class ProcessHealth(BaseModel):
    memory_rss_mb: float
    cpu_percent: float
    threads: int
    response_ms_p50: float | None
    response_ms_p95: float | None
    response_ms_p99: float | None
    responses_sampled: int


class RunHealth(BaseModel):
    job: str
    run_id: str
    at: str
    age_seconds: float
    step: str | None = None
    error: str | None = None


class PipelineHealth(BaseModel):
    """The pipeline's last successful run (as the code location's sensors recorded it)."""

    last_success: RunHealth | None
    stale: bool  # no success, or the last one older than PIPELINE_STALE_HOURS
    last_failures: list[RunHealth]  # last failed run of each job that failed after its success
    known: bool  # false when Redis could not be read


class Health(BaseModel):
    status: str  # ok, degraded (Redis away: served without cache), down (Neo4j away)
    dependencies: dict[str, DependencyHealth]
    process: ProcessHealth
    pipeline: PipelineHealth | None = None


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


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


async def _check(probe: Callable[[], Any], timeout: float) -> DependencyHealth:
    """A dependency's state; the error is a category, never a driver's text."""
    start = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), timeout=timeout)
        return DependencyHealth(
            status="up", latency_ms=round((time.perf_counter() - start) * 1000, 2)
        )
    except TimeoutError:
        return DependencyHealth(status="down", error="timeout")
    except Exception:  # any failure of a dependency is reported, not raised
        return DependencyHealth(status="down", error="unreachable")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Builds the app; settings are read here, when the server starts."""
    cfg = settings or get_settings()
    check_auth_settings(cfg)
    process = psutil.Process(os.getpid())  # one object: cpu_percent measures between calls

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(cfg.log_level)
        graph = GraphStore.from_settings(cfg)
        figures = FigureStore.from_settings(cfg)
        try:
            await asyncio.to_thread(_check_schema, graph, figures)
        except BaseException:
            graph.close()
            figures.r.close()
            raise
        gate = RedisGate(cfg)
        verifier = Verifier(cfg)
        app.state.platform = AppState(
            settings=cfg,
            graph=graph,
            figures=figures,
            gate=gate,
            limiter=Limiter(gate, cfg),
            cache=ResponseCache(gate, cfg.cache_ttl_seconds),
            verifier=verifier,
            addresses=ClientAddress(cfg.trusted_proxies),
        )
        process.cpu_percent(None)  # starts the CPU measurement
        try:
            yield
        finally:
            graph.close()
            figures.r.close()
            await gate.close()
            await verifier.close()

    app = FastAPI(
        title="Community platform API",
        version="0.2.0",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    registry = CollectorRegistry()
    requests = Counter(
        "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "http_request_seconds", "HTTP request latency", ["method", "route"], registry=registry
    )
    registry.register(BusinessCollector(lambda: getattr(app.state, "platform", None)))
    app.add_middleware(Edge, requests=requests, latency=latency)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=cfg.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        expose_headers=[
            "X-Request-ID",
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ],
        max_age=600,
    )

    def request_id(request: Request) -> str:
        return str(getattr(request.state, "request_id", ""))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if getattr(request.state, "body_too_large", False):
            limit = cfg.max_body_bytes
            body = error_body(
                413, "body_too_large", f"bodies are limited to {limit} bytes", request_id(request)
            )
            return Response(body, 413, media_type="application/json")
        if isinstance(exc.detail, dict):
            detail = {**exc.detail, "request_id": request_id(request)}
            return JSONResponse(status_code=exc.status_code, content=detail, headers=exc.headers)
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = error_body(exc.status_code, error, str(exc.detail), request_id(request))
        return Response(body, exc.status_code, exc.headers, media_type="application/json")

    async def unavailable(request: Request, _: Exception) -> Response:
        body = error_body(
            503,
            "unavailable",
            "a backing service is unavailable; retry shortly",
            request_id(request),
        )
        return Response(body, 503, {"Retry-After": "5"}, media_type="application/json")

    app.add_exception_handler(ServiceUnavailable, unavailable)
    app.add_exception_handler(SessionExpired, unavailable)
    app.add_exception_handler(RedisDownError, unavailable)
    app.add_exception_handler(redis.RedisError, unavailable)
    app.add_exception_handler(LockTimeoutError, unavailable)

    @app.exception_handler(Neo4jError)
    async def graph_error(request: Request, exc: Neo4jError) -> Response:
        log.error("graph query failed", code=exc.code)
        body = error_body(
            500, "internal_error", "an unexpected error occurred", request_id(request)
        )
        return Response(body, 500, media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "message": e.get("msg")}
            for e in exc.errors()
        ]
        body = error_body(
            422, "invalid_request", "the request is not valid", request_id(request), details=errors
        )
        return Response(body, 422, media_type="application/json")

    @app.get("/health", response_model=Health, tags=["ops"])
    async def health(response: Response, state: AppState = Depends(app_state)) -> Health:
        """Each dependency's state; 503 when Neo4j is down, `degraded` without Redis."""

        async def graph_ping() -> None:
            await asyncio.to_thread(state.graph.ping)

        neo4j, redis = await asyncio.gather(
            _check(graph_ping, 3.0), _check(state.gate.client.ping, 1.0)
        )
        if redis.status == "up":
            state.gate.down_until = 0.0  # back: stop degrading at once
        status = "ok"
        if redis.status != "up":
            status = "degraded"
        if neo4j.status != "up":
            status = "down"
        response.status_code = 503 if status == "down" else 200
        pipeline = (
            await asyncio.to_thread(_pipeline_health, state)
            if redis.status == "up"
            else PipelineHealth(last_success=None, stale=True, last_failures=[], known=False)
        )
        proc = process
        samples = list(state.latencies)
        return Health(
            status=status,
            dependencies={"neo4j": neo4j, "redis": redis},
            process=ProcessHealth(
                memory_rss_mb=round(proc.memory_info().rss / 2**20, 1),
                cpu_percent=proc.cpu_percent(None),
                threads=proc.num_threads(),
                response_ms_p50=_percentile(samples, 0.50),
                response_ms_p95=_percentile(samples, 0.95),
                response_ms_p99=_percentile(samples, 0.99),
                responses_sampled=len(samples),
            ),
            pipeline=pipeline,
        )

    exposition: dict[str, Any] = {"at": 0.0, "body": b""}

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def metrics(request: Request, state: AppState = Depends(app_state)) -> Response:
        """Prometheus figures: with `METRICS_TOKEN` as bearer, else for loopback callers only."""
        token = state.settings.metrics_token
        if token is not None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            allowed = hmac.compare_digest(given.encode(), token.get_secret_value().encode())
        else:
            peer = request.client.host if request.client else ""
            allowed = is_loopback(peer) and "x-forwarded-for" not in request.headers
        if not allowed:
            body = error_body(
                403, "forbidden", "metrics need the metrics token", request_id(request)
            )
            return Response(body, 403, media_type="application/json")
        now = time.monotonic()
        if now - exposition["at"] > 1.0:  # one rendering per second, however often scraped
            exposition["body"] = await asyncio.to_thread(generate_latest, registry)
            exposition["at"] = now
        return Response(exposition["body"], media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/events", response_model=Page, tags=["events"])
    async def list_events(
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        state: AppState = Depends(app_state),
        _: Principal = Depends(require_role("viewer")),
    ) -> Response:
        """Events, newest first, with guest and check-in counts from the graph."""

        def produce() -> dict[str, Any]:
            rows, total = state.graph.list_events(offset, limit)
            items = [EventOut(**_jsonable(r)) for r in rows]
            return Page(items=items, total=total, limit=limit, offset=offset).model_dump()

        return await cached(state, "events", {"limit": limit, "offset": offset}, produce)

    app.include_router(members.router)
    app.include_router(analytics.router)
    app.include_router(admin.router)
    return app


def _check_schema(graph: GraphStore, figures: FigureStore) -> None:
    """Refuses to start against a schema this release does not know (SchemaMismatchError);
    a store that cannot be reached is checked later, by /health, and not here."""
    from infra.migrations import check_graph, check_redis

    try:
        check_graph(graph.driver, graph.database)
    except (ServiceUnavailable, SessionExpired, OSError) as exc:
        log.warning("schema_check_skipped", store="neo4j", error=type(exc).__name__)
    try:
        check_redis(figures.r, figures.keys)
    except (redis.RedisError, OSError) as exc:
        log.warning("schema_check_skipped", store="redis", error=type(exc).__name__)


def _pipeline_health(state: AppState) -> PipelineHealth:
    from datetime import UTC, datetime

    from infra.run_status import RunOutcome, RunStatusStore

    store = RunStatusStore(state.figures.r, state.figures.keys)
    now = datetime.now(UTC)

    def out(o: RunOutcome) -> RunHealth:
        return RunHealth(
            job=o.job,
            run_id=o.run_id,
            at=o.at.isoformat(),
            age_seconds=round((now - o.at).total_seconds(), 1),
            step=o.step,
            error=o.error,
        )

    try:
        last = store.last_pipeline_success()
        successes = store.successes()
        failures = store.failures()
    except redis.RedisError:
        return PipelineHealth(last_success=None, stale=True, last_failures=[], known=False)
    open_failures = [
        out(f)
        for job, f in sorted(failures.items())
        if job not in successes or successes[job].at < f.at
    ]
    stale = (
        last is None or (now - last.at).total_seconds() > state.settings.pipeline_stale_hours * 3600
    )
    return PipelineHealth(
        last_success=out(last) if last else None,
        stale=stale,
        last_failures=open_failures,
        known=True,
    )


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.iso_format() if hasattr(v, "iso_format") else v) for k, v in row.items()}
