"""The one error shape, its OpenAPI documentation, and cached JSON responses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import MAX_OFFSET, AppState
from api.schemas.common import ErrorBody, FieldError

__all__ = [
    "ERROR_RESPONSES",
    "MAX_ID_LENGTH",
    "MAX_OFFSET",
    "ErrorBody",
    "FieldError",
    "cached",
    "dumps",
]

MAX_ID_LENGTH = 200


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _doc("The request contradicts itself"),
    401: _doc("Missing, malformed or invalid bearer token (see WWW-Authenticate)"),
    403: _doc("The caller's role does not allow this, or the address is blocked"),
    404: _doc("Unknown resource"),
    409: _doc("Conflicts with the current state (or an Idempotency-Key reused differently)"),
    413: _doc("Body too large"),
    414: _doc("Query string too long"),
    422: _doc("Invalid parameters or body; `details` lists the fields"),
    429: _doc("Rate limited; see Retry-After"),
    431: _doc("Request headers too large"),
    500: _doc("Unexpected error; quote the request id"),
    503: _doc(
        "A backing service is unavailable (retry after Retry-After), or the stored analytics "
        "are in a form this release does not read (rerun the analytics)"
    ),
}


def dumps(value: Any) -> bytes:
    """Compact JSON; a model is dumped in its JSON form (as FastAPI would send it)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, default=str, separators=(",", ":")).encode()


async def cached(
    state: AppState, route: str, params: dict[str, Any], produce: Callable[[], Any]
) -> Response:
    """A JSON response from the cache, or produced in the threadpool and stored.

    Routes answer through here with a `Response` (and declare `response_model` for the
    schema) so that a hit is sent as the stored bytes, without decoding or validating.
    Only the validated parameters the route passes make up the key, so unknown query
    parameters cannot multiply cache entries. A hit is sent as stored, never decoded.
    """
    key = state.cache.key(route, params)
    body, generation, _ = await state.cache.get(key)
    if body is not None:
        return Response(body, media_type="application/json", headers={"X-Cache": "hit"})
    value = await run_in_threadpool(produce)
    body = dumps(value)
    await state.cache.put(key, generation, body)
    return Response(body, media_type="application/json", headers={"X-Cache": "miss"})
