"""Operations: /health for probes and dashboards, /metrics for Prometheus."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import redis
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.auth import is_loopback
from api.deps import AppState, StateDep
from api.edge import error_body
from api.errors import request_id
from api.schemas.ops import (
    UNKNOWN_PIPELINE,
    DependencyHealth,
    Health,
    PipelineHealth,
    ProcessHealth,
    RunHealth,
)
from infra.run_status import RunOutcome, RunStatusStore

router = APIRouter(tags=["ops"])


class PrometheusResponse(Response):
    media_type = CONTENT_TYPE_LATEST


@router.get("/health", response_model=Health)
async def health(response: Response, state: StateDep) -> Health:
    """Each dependency's state; 503 when Neo4j is down, `degraded` without Redis."""

    async def graph_ping() -> None:
        await asyncio.to_thread(state.graph.ping)

    neo4j, redis_health = await asyncio.gather(
        _check(graph_ping, 3.0), _check(state.gate.client.ping, 1.0)
    )
    if redis_health.status == "up":
        state.gate.down_until = 0.0  # back: stop degrading at once
    status: Literal["ok", "degraded", "down"] = "ok"
    if redis_health.status != "up":
        status = "degraded"
    if neo4j.status != "up":
        status = "down"
    response.status_code = 503 if status == "down" else 200
    pipeline = (
        await asyncio.to_thread(_pipeline_health, state)
        if redis_health.status == "up"
        else UNKNOWN_PIPELINE
    )
    return Health(
        status=status,
        dependencies={"neo4j": neo4j, "redis": redis_health},
        process=_process_health(state),
        pipeline=pipeline,
    )


PROMETHEUS_TEXT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus' text exposition format",
        "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
    }
}


# `response_class=Response` (no media type of its own) keeps the errors documented as JSON;
# `responses` documents the text body.
@router.get("/metrics", response_model=str, response_class=Response, responses=PROMETHEUS_TEXT)
async def metrics(request: Request, state: StateDep) -> Response:
    """Prometheus figures: with `METRICS_TOKEN` as bearer, else for loopback callers only.

    Returns a `Response`: the body is Prometheus' text format, not JSON."""
    token = state.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        allowed = hmac.compare_digest(given.encode(), token.get_secret_value().encode())
    else:
        peer = request.client.host if request.client else ""
        allowed = is_loopback(peer) and "x-forwarded-for" not in request.headers
    if not allowed:
        body = error_body(403, "forbidden", "metrics need the metrics token", request_id(request))
        return Response(body, 403, media_type="application/json")
    return PrometheusResponse(await state.telemetry.exposition())


def _percentile(values: list[float], quantile: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000, 2)


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


def _process_health(state: AppState) -> ProcessHealth:
    samples = list(state.latencies)
    process = state.process
    return ProcessHealth(
        memory_rss_mb=round(process.memory_info().rss / 2**20, 1),
        cpu_percent=process.cpu_percent(None),
        threads=process.num_threads(),
        response_ms_p50=_percentile(samples, 0.50),
        response_ms_p95=_percentile(samples, 0.95),
        response_ms_p99=_percentile(samples, 0.99),
        responses_sampled=len(samples),
    )


def _pipeline_health(state: AppState) -> PipelineHealth:
    store = RunStatusStore(state.figures.r, state.figures.keys)
    now = datetime.now(UTC)

    def out(outcome: RunOutcome) -> RunHealth:
        return RunHealth(
            job=outcome.job,
            run_id=outcome.run_id,
            at=outcome.at.isoformat(),
            age_seconds=round((now - outcome.at).total_seconds(), 1),
            step=outcome.step,
            error=outcome.error,
        )

    try:
        last = store.last_pipeline_success()
        successes = store.successes()
        failures = store.failures()
    except redis.RedisError:
        return UNKNOWN_PIPELINE
    open_failures = [
        out(failure)
        for job, failure in sorted(failures.items())
        if job not in successes or successes[job].at < failure.at
    ]
    age = None if last is None else (now - last.at).total_seconds()
    stale = age is None or age > state.settings.pipeline_stale_hours * 3600
    return PipelineHealth(
        last_success=out(last) if last else None,
        stale=stale,
        last_failures=open_failures,
        known=True,
    )
