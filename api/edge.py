"""The edge of the API: one ASGI middleware in front of every route.

In order, before any route code runs: a request id; size limits on headers, query
string and body (the body limit is enforced while it streams, so nothing oversized is
buffered); for `/v1`, authentication and the caller's rate limit — so a request that is
not allowed costs no body parsing. Every answer gets security headers and the request
id; every error, an unexpected one included, is the same JSON shape.

Written as plain ASGI rather than `@app.middleware("http")`, which costs a task and a
stream wrapper per request.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from prometheus_client import Counter, Histogram

from api.auth import AuthError, is_loopback
from api.deps import AppState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = structlog.get_logger("api")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
]
# The interactive docs load their scripts from a CDN; every other answer is plain JSON.
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
DOCS_PATHS = ("/docs", "/redoc", "/docs/oauth2-redirect")


class BodyTooLargeError(Exception):
    pass


def error_body(status: int, error: str, message: str, request_id: str, **extra: Any) -> bytes:
    return json.dumps(
        {"error": error, "message": message, "request_id": request_id, **extra}
    ).encode()


class Edge:
    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: AppState = scope["app"].state.platform
        s = state.settings
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        given = next((v for k, v in headers if k == b"x-request-id"), b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        extra_headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        path: str = scope["path"]
        status_box = [500]

        async def reply(status: int, error: str, message: str, hdrs: dict[str, str]) -> None:
            body = error_body(status, error, message, request_id)
            out = [(k.lower().encode(), v.encode()) for k, v in hdrs.items()]
            await send_wrapped(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *out,
                    ],
                }
            )
            await send_wrapped({"type": "http.response.body", "body": body})

        started_response = [False]

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                started_response[0] = True
                status_box[0] = message["status"]
                hdrs = list(message.get("headers", []))
                hdrs.extend(extra_headers)
                hdrs.extend(SECURITY_HEADERS)
                if not path.startswith(DOCS_PATHS):
                    hdrs.append(API_CSP)
                message["headers"] = hdrs
            await send(message)

        peer = scope["client"][0] if scope.get("client") else "unknown"
        try:
            header_bytes = sum(len(k) + len(v) for k, v in headers)
            if header_bytes > s.max_header_bytes:
                await reply(431, "headers_too_large", "request headers are too large", {})
                return
            if len(scope.get("query_string", b"")) > s.max_query_bytes:
                await reply(414, "query_too_long", "the query string is too long", {})
                return
            length = next((v for k, v in headers if k == b"content-length"), None)
            if length is not None and (not length.isdigit() or int(length) > s.max_body_bytes):
                await reply(
                    413, "body_too_large", f"bodies are limited to {s.max_body_bytes} bytes", {}
                )
                return
            forwarded = next((v for k, v in headers if k == b"x-forwarded-for"), None)
            ip = state.addresses.resolve(peer, forwarded.decode("latin-1") if forwarded else None)
            scope["state"]["client_ip"] = ip
            if path.startswith("/v1/") or path == "/v1":
                refused = await self._authenticate(scope, state, headers, ip, extra_headers)
                if refused is not None:
                    await reply(*refused)
                    return
            await self.app(scope, self._capped(receive, s.max_body_bytes, scope), send_wrapped)
        except BodyTooLargeError:
            if not started_response[0]:
                await reply(
                    413, "body_too_large", f"bodies are limited to {s.max_body_bytes} bytes", {}
                )
        except Exception:
            log.exception("unhandled error", path=path, request_id=request_id)
            if not started_response[0]:
                await reply(500, "internal_error", "an unexpected error occurred", {})
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            self.latency.labels(scope["method"], route).observe(elapsed)
            self.requests.labels(scope["method"], route, str(status_box[0])).inc()
            state.latencies.append(elapsed)
            # Refusals and failures at info (who was refused matters for blocking);
            # successful requests at debug, which costs nothing when filtered out.
            emit = log.info if status_box[0] >= 400 else log.debug
            emit(
                "request",
                method=scope["method"],
                route=route,
                status=status_box[0],
                ms=round(elapsed * 1000, 1),
                request_id=request_id,
                client=scope["state"].get("client_ip", peer),
            )

    @staticmethod
    def _capped(receive: Receive, limit: int, scope: Scope) -> Receive:
        seen = [0]

        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    # FastAPI turns errors while reading a body into a 400; the flag lets
                    # the error handler answer 413 instead.
                    scope["state"]["body_too_large"] = True
                    raise BodyTooLargeError()
            return message

        return wrapped

    async def _authenticate(
        self,
        scope: Scope,
        state: AppState,
        headers: list[tuple[bytes, bytes]],
        ip: str,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> tuple[int, str, str, dict[str, str]] | None:
        """None when the caller may go on; else the refusal (status, error, message, headers)."""
        s = state.settings
        if s.auth_mode == "dev":
            server = scope.get("server")
            host = server[0] if server else ""
            if host and host != "testserver" and not is_loopback(host):
                return 503, "unavailable", "dev authentication is served on loopback only", {}
        auth = next((v for k, v in headers if k == b"authorization"), None)
        scheme, _, token = (auth or b"").decode("latin-1").partition(" ")
        if auth is None or scheme.lower() != "bearer" or not token.strip():
            verdict = await state.limiter.check(f"anon:{ip}", ip, s.rate_limit_anonymous_per_minute)
            if verdict.blocked:
                return 403, "blocked", "this address is blocked for a while", verdict.headers()
            if not verdict.allowed and not verdict.degraded:
                return self._limited(verdict, s.rate_limit_anonymous_per_minute)
            await state.limiter.record_failure(ip)
            err = AuthError(401, "unauthorized", "missing bearer token")
            return 401, err.error, err.message, err.headers()
        # Failed authentication is limited before any verification work: peek first.
        verdict = await state.limiter.check(
            f"anon:{ip}", ip, s.rate_limit_anonymous_per_minute, store=False
        )
        if verdict.blocked:
            return 403, "blocked", "this address is blocked for a while", verdict.headers()
        if not verdict.allowed and not verdict.degraded:
            return self._limited(verdict, s.rate_limit_anonymous_per_minute)
        if verdict.degraded and not verdict.allowed:
            return 503, "unavailable", "rate limiting is unavailable", {"Retry-After": "5"}
        try:
            principal = await state.verifier.verify(token.strip())
        except AuthError as err:
            if err.status_code == 401:
                await state.limiter.check(f"anon:{ip}", ip, s.rate_limit_anonymous_per_minute)
                await state.limiter.record_failure(ip)
            return err.status_code, err.error, err.message, err.headers()
        if not principal.roles:
            return 403, "forbidden", "no role is granted to this account", {}
        verdict = await state.limiter.check(
            f"user:{principal.user_id}", ip, s.rate_limit_per_minute
        )
        if verdict.blocked:
            return 403, "blocked", "this address is blocked for a while", verdict.headers()
        if not verdict.allowed:
            if verdict.degraded:
                return 503, "unavailable", "rate limiting is unavailable", {"Retry-After": "5"}
            return self._limited(verdict, s.rate_limit_per_minute)
        if not verdict.degraded:
            extra_headers.extend(
                (k.lower().encode(), v.encode()) for k, v in verdict.headers().items()
            )
        scope["state"]["principal"] = principal
        return None

    @staticmethod
    def _limited(verdict: Any, limit: int) -> tuple[int, str, str, dict[str, str]]:
        return (
            429,
            "rate_limited",
            f"more than {limit} requests per minute",
            verdict.headers(),
        )
