"""Exception handlers: every error leaves as the one JSON error shape, never as a bare 500."""

from __future__ import annotations

from collections.abc import Mapping

import redis
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.edge import error_body
from api.protection import RedisDownError
from infra.documents import DocumentError
from infra.locks import LockTimeoutError
from infra.settings import Settings

log = structlog.get_logger("api")


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def _json(body: bytes, status: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status, headers, media_type="application/json")


def add_error_handlers(app: FastAPI, cfg: Settings) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if getattr(request.state, "body_too_large", False):
            limit = cfg.max_body_bytes
            message = f"bodies are limited to {limit} bytes"
            return _json(error_body(413, "body_too_large", message, request_id(request)), 413)
        if isinstance(exc.detail, dict):
            detail = {**exc.detail, "request_id": request_id(request)}
            return JSONResponse(status_code=exc.status_code, content=detail, headers=exc.headers)
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = error_body(exc.status_code, error, str(exc.detail), request_id(request))
        return _json(body, exc.status_code, exc.headers)

    for unreachable in (
        ServiceUnavailable,
        SessionExpired,
        RedisDownError,
        redis.RedisError,
        LockTimeoutError,
    ):
        app.add_exception_handler(unreachable, unavailable)
    app.exception_handler(Neo4jError)(graph_error)
    app.exception_handler(RequestValidationError)(bad_request)
    app.exception_handler(DocumentError)(unreadable_document)


async def unavailable(request: Request, _: Exception) -> Response:
    message = "a backing service is unavailable; retry shortly"
    body = error_body(503, "unavailable", message, request_id(request))
    return _json(body, 503, {"Retry-After": "5"})


async def graph_error(request: Request, exc: Neo4jError) -> Response:
    log.error("graph query failed", code=exc.code)
    body = error_body(500, "internal_error", "an unexpected error occurred", request_id(request))
    return _json(body, 500)


async def bad_request(request: Request, exc: RequestValidationError) -> Response:
    errors = [
        {"field": ".".join(str(part) for part in err.get("loc", ())[1:]), "message": err.get("msg")}
        for err in exc.errors()
    ]
    message = "the request is not valid"
    body = error_body(422, "invalid_request", message, request_id(request), details=errors)
    return _json(body, 422)


async def unreadable_document(request: Request, exc: DocumentError) -> Response:
    """A stored analytics document of an unknown version or shape: 503 (the data, not the
    request, is at fault) with what to do. Retrying will not help until it is rewritten,
    so no Retry-After. The log names the document and the failing fields, not the values."""
    version = exc.version if isinstance(exc.version, int) else None
    log.error(
        "stored_document_unreadable",
        document=exc.document,
        reason=exc.reason,
        version=version,
        detail=exc.detail,
        request_id=request_id(request),
    )
    message = (
        f"the stored {exc.document} is in a form this release does not read "
        f"({exc.reason.replace('_', ' ')}); rerun the analytics (materialize "
        "community_analytics and analytics_snapshot) or run `community migrate`"
    )
    return _json(error_body(503, "analytics_unreadable", message, request_id(request)), 503)
