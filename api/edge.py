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

from api.auth import AuthError, Principal, is_loopback
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


Refusal = tuple[int, str, str, dict[str, str]]  # status, error code, message, headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for key, value in headers if key == name), None)


class _Exchange:
    """One request's way out: adds the request id and security headers to whatever is
    sent, remembers the status, and sends refusals in the error shape."""

    def __init__(self, send: Send, request_id: str, path: str) -> None:
        self._send = send
        self.request_id = request_id
        self.path = path
        self.extra_headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id.encode())]
        self.status = 500
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            headers = list(message.get("headers", []))
            headers.extend(self.extra_headers)
            headers.extend(SECURITY_HEADERS)
            if not self.path.startswith(DOCS_PATHS):
                headers.append(API_CSP)
            message["headers"] = headers
        await self._send(message)

    async def reply(self, status: int, error: str, message: str, headers: dict[str, str]) -> None:
        body = error_body(status, error, message, self.request_id)
        extra = [(key.lower().encode(), value.encode()) for key, value in headers.items()]
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *extra,
                ],
            }
        )
        await self.send({"type": "http.response.body", "body": body})


def _oversized(scope: Scope, headers: list[tuple[bytes, bytes]], cfg: Any) -> Refusal | None:
    """Size limits that can be checked before anything is read."""
    if sum(len(key) + len(value) for key, value in headers) > cfg.max_header_bytes:
        return 431, "headers_too_large", "request headers are too large", {}
    if len(scope.get("query_string", b"")) > cfg.max_query_bytes:
        return 414, "query_too_long", "the query string is too long", {}
    length = _header(headers, b"content-length")
    if length is not None and (not length.isdigit() or int(length) > cfg.max_body_bytes):
        return 413, "body_too_large", f"bodies are limited to {cfg.max_body_bytes} bytes", {}
    return None


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
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        given = (_header(headers, b"x-request-id") or b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        exchange = _Exchange(send, request_id, scope["path"])
        peer = scope["client"][0] if scope.get("client") else "unknown"
        try:
            await self._handle(scope, receive, exchange, state, peer)
        except BodyTooLargeError:
            if not exchange.started:
                limit = state.settings.max_body_bytes
                await exchange.reply(
                    413, "body_too_large", f"bodies are limited to {limit} bytes", {}
                )
        except Exception:
            log.exception("unhandled error", path=exchange.path, request_id=request_id)
            if not exchange.started:
                await exchange.reply(500, "internal_error", "an unexpected error occurred", {})
        finally:
            self._record(scope, state, exchange, time.perf_counter() - started, peer)

    async def _handle(
        self, scope: Scope, receive: Receive, exchange: _Exchange, state: AppState, peer: str
    ) -> None:
        """The checks in order, then the app; a refusal is sent and ends the request."""
        cfg = state.settings
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        refused = _oversized(scope, headers, cfg)
        if refused is not None:
            await exchange.reply(*refused)
            return
        forwarded = _header(headers, b"x-forwarded-for")
        ip = state.addresses.resolve(peer, forwarded.decode("latin-1") if forwarded else None)
        scope["state"]["client_ip"] = ip
        if exchange.path.startswith("/v1/") or exchange.path == "/v1":
            refused = await self._authenticate(scope, state, headers, ip, exchange.extra_headers)
            if refused is not None:
                await exchange.reply(*refused)
                return
        await self.app(scope, self._capped(receive, cfg.max_body_bytes, scope), exchange.send)

    def _record(
        self, scope: Scope, state: AppState, exchange: _Exchange, elapsed: float, peer: str
    ) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        self.latency.labels(scope["method"], route).observe(elapsed)
        self.requests.labels(scope["method"], route, str(exchange.status)).inc()
        state.latencies.append(elapsed)
        # Refusals and failures at info (who was refused matters for blocking);
        # successful requests at debug, which costs nothing when filtered out.
        emit = log.info if exchange.status >= 400 else log.debug
        emit(
            "request",
            method=scope["method"],
            route=route,
            status=exchange.status,
            ms=round(elapsed * 1000, 1),
            request_id=exchange.request_id,
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
    ) -> Refusal | None:
        """None when the caller may go on; else the refusal (status, error, message, headers)."""
        cfg = state.settings
        if cfg.auth_mode == "dev":
            server = scope.get("server")
            host = server[0] if server else ""
            if host and host != "testserver" and not is_loopback(host):
                return 503, "unavailable", "dev authentication is served on loopback only", {}
        auth = _header(headers, b"authorization")
        scheme, _, token = (auth or b"").decode("latin-1").partition(" ")
        if auth is None or scheme.lower() != "bearer" or not token.strip():
            return await self._anonymous(state, ip)
        # Failed authentication is limited before any verification work: peek first.
        anonymous_limit = cfg.rate_limit_anonymous_per_minute
        verdict = await state.limiter.check(f"anon:{ip}", ip, anonymous_limit, store=False)
        if verdict.blocked:
            return 403, "blocked", "this address is blocked for a while", verdict.headers()
        if not verdict.allowed and not verdict.degraded:
            return self._limited(verdict, anonymous_limit)
        if verdict.degraded and not verdict.allowed:
            return 503, "unavailable", "rate limiting is unavailable", {"Retry-After": "5"}
        try:
            principal = await state.verifier.verify(token.strip())
        except AuthError as err:
            if err.status_code == 401:
                await state.limiter.check(f"anon:{ip}", ip, anonymous_limit)
                await state.limiter.record_failure(ip)
            return err.status_code, err.error, err.message, err.headers()
        if not principal.roles:
            return 403, "forbidden", "no role is granted to this account", {}
        refused = await self._user_limit(state, principal, ip, extra_headers)
        if refused is None:
            scope["state"]["principal"] = principal
        return refused

    async def _anonymous(self, state: AppState, ip: str) -> Refusal:
        """No bearer token: counted against the address, then refused."""
        limit = state.settings.rate_limit_anonymous_per_minute
        verdict = await state.limiter.check(f"anon:{ip}", ip, limit)
        if verdict.blocked:
            return 403, "blocked", "this address is blocked for a while", verdict.headers()
        if not verdict.allowed and not verdict.degraded:
            return self._limited(verdict, limit)
        await state.limiter.record_failure(ip)
        err = AuthError(401, "unauthorized", "missing bearer token")
        return 401, err.error, err.message, err.headers()

    async def _user_limit(
        self,
        state: AppState,
        principal: Principal,
        ip: str,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> Refusal | None:
        """The verified caller's own budget; its headers go on the answer."""
        limit = state.settings.rate_limit_per_minute
        verdict = await state.limiter.check(f"user:{principal.user_id}", ip, limit)
        if verdict.blocked:
            return 403, "blocked", "this address is blocked for a while", verdict.headers()
        if not verdict.allowed:
            if verdict.degraded:
                return 503, "unavailable", "rate limiting is unavailable", {"Retry-After": "5"}
            return self._limited(verdict, limit)
        if not verdict.degraded:
            extra_headers.extend(
                (key.lower().encode(), value.encode()) for key, value in verdict.headers().items()
            )
        return None

    @staticmethod
    def _limited(verdict: Any, limit: int) -> Refusal:
        return (
            429,
            "rate_limited",
            f"more than {limit} requests per minute",
            verdict.headers(),
        )
