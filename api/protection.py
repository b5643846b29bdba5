"""Redis-backed rate limiting and response caching for the API.

Rate limiting is a fixed one-minute window per caller (`INCR` + `EXPIRE`, atomic in a
pipeline). Cached responses embed the data generation, which every pipeline write and
organizer action bumps, so a change is never served stale beyond that write.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request, Response, status

from infra.redis_store import FigureStore

WINDOW_SECONDS = 60


def check_rate_limit(
    figures: FigureStore, subject: str, limit: int, response: Response | None
) -> None:
    """Counts one request for `subject`; raises 429 with Retry-After when over `limit`."""
    window = int(time.time()) // WINDOW_SECONDS
    key = figures.keys.rate_limit(subject, window)
    pipe = figures.r.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, WINDOW_SECONDS * 2)
    count = int(pipe.execute()[0])
    reset = (window + 1) * WINDOW_SECONDS
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, limit - count)),
        "X-RateLimit-Reset": str(reset),
    }
    if count > limit:
        retry_after = max(1, reset - int(time.time()))
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail={"error": "rate_limited", "message": f"more than {limit} requests per minute"},
            headers={**headers, "Retry-After": str(retry_after)},
        )
    if response is not None:
        response.headers.update(headers)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def cached_json(
    figures: FigureStore,
    request: Request,
    response: Response,
    ttl: int,
    produce: Callable[[], Awaitable[Any]],
) -> Any:
    """Serves a JSON-able result from Redis when fresh, else computes and stores it."""
    if ttl <= 0:
        return await produce()
    generation = figures.generation()
    fingerprint = hashlib.sha256(
        f"{generation}|{request.url.path}|{sorted(request.query_params.multi_items())}".encode()
    ).hexdigest()[:32]
    key = figures.keys.response_cache(request.url.path.strip("/").replace("/", "."), fingerprint)
    hit = figures.r.get(key)
    if hit is not None:
        response.headers["X-Cache"] = "hit"
        return json.loads(str(hit))
    value = await produce()
    figures.r.set(key, json.dumps(value, default=str), ex=ttl)
    response.headers["X-Cache"] = "miss"
    return value
