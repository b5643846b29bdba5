"""The REST API: health, metrics and read endpoints over the member graph.

`create_app` assembles the pieces: the lifespan that opens the stores, the Prometheus
figures, the middleware (edge checks, CORS), the error handlers (api/errors.py) and the
routers (api/routes/). Request and response schemas live in api/schemas/.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import psutil
import redis
import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from neo4j.exceptions import ServiceUnavailable, SessionExpired

from api.auth import Verifier, check_auth_settings
from api.business_metrics import BusinessCollector
from api.deps import AppState
from api.edge import Edge
from api.errors import add_error_handlers
from api.protection import ClientAddress, Limiter, RedisGate, ResponseCache
from api.responses import ERROR_RESPONSES
from api.routes import admin, analytics, events, members, ops
from api.telemetry import Telemetry
from infra.logging import configure_logging
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings, get_settings

log = structlog.get_logger("api")

ROUTERS = (ops.router, events.router, members.router, analytics.router, admin.router)
EXPOSED_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Builds the app; settings are read here, when the server starts."""
    cfg = settings or get_settings()
    check_auth_settings(cfg)
    telemetry = Telemetry()
    app = FastAPI(
        title="Community platform API",
        version="0.2.0",
        lifespan=_lifespan(cfg, telemetry),
        responses=ERROR_RESPONSES,
    )
    telemetry.registry.register(BusinessCollector(lambda: getattr(app.state, "platform", None)))
    _add_middleware(app, cfg, telemetry)
    add_error_handlers(app, cfg)
    for router in ROUTERS:
        app.include_router(router)
    return app


def _lifespan(
    cfg: Settings, telemetry: Telemetry
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Opens the stores at start (after checking their schema versions), closes them at stop."""
    process = psutil.Process(os.getpid())

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
        state = _app_state(cfg, graph, figures, telemetry, process)
        app.state.platform = state
        process.cpu_percent(None)  # starts the CPU measurement
        try:
            yield
        finally:
            graph.close()
            figures.r.close()
            await state.gate.close()
            await state.verifier.close()

    return lifespan


def _app_state(
    cfg: Settings,
    graph: GraphStore,
    figures: FigureStore,
    telemetry: Telemetry,
    process: psutil.Process,
) -> AppState:
    gate = RedisGate(cfg)
    return AppState(
        settings=cfg,
        graph=graph,
        figures=figures,
        gate=gate,
        limiter=Limiter(gate, cfg),
        cache=ResponseCache(gate, cfg.cache_ttl_seconds),
        verifier=Verifier(cfg),
        addresses=ClientAddress(cfg.trusted_proxies),
        telemetry=telemetry,
        process=process,
    )


def _add_middleware(app: FastAPI, cfg: Settings, telemetry: Telemetry) -> None:
    app.add_middleware(Edge, requests=telemetry.requests, latency=telemetry.latency)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=cfg.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )


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
