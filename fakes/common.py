"""What the Luma and Eventbrite fakes share: switchable failures, paging cursors, a runner.

Failures are off by default and switched on per test through `Faults` (in process) or
`POST /_fake/faults` (when the fake runs as its own process).
"""

from __future__ import annotations

import base64
import random
import socket
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response


@dataclass
class Faults:
    """Each knob imitates one way the real platforms misbehave."""

    fail_first: int = 0  # the first N API requests answer 503
    error_rate: float = 0.0  # share of requests answering 500/502/503 at random (seeded)
    throttle_first: int = 0  # the first N API requests answer 429 with Retry-After
    retry_after: float = 1.0  # seconds announced in Retry-After
    rate_limit_per_minute: int = 0  # server-side limit per key and window, 0 = none
    rate_window_seconds: float = 60.0  # the limit's window (Luma: one minute)
    delay_seconds: float = 0.0  # every API response waits this long (slow server)
    stall_first: int = 0  # the first N API requests let through hang (the client times out)
    stall_seconds: float = 5.0  # how long a stalled request hangs before it answers
    malformed_page: int | None = None  # page index (0-based) of a guest list served broken
    malformed_kind: str = "html"  # "html" (an error page with status 200) or "truncated" JSON
    malformed_times: int = 1  # how many times it is served broken; -1 = always
    repeat_page: int | None = None  # this page is served a second time as the next page
    stuck_page: int | None = None  # this page's next cursor points back at itself
    fault_event: str | None = None  # limit the page faults to one event's guest list
    max_page_size: int = 100


@dataclass
class FakeStats:
    requests: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    stalled: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)


class FakeState:
    """Mutable state of one fake: its data, its failures and what it has been asked."""

    def __init__(self, faults: Faults | None = None, seed: int = 7) -> None:
        self.faults = faults or Faults()
        self.stats = FakeStats()
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self._window: dict[str, tuple[float, int]] = {}

    def set_faults(self, **changes: Any) -> None:
        known = {f.name for f in fields(Faults)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        with self.lock:
            for k, v in changes.items():
                setattr(self.faults, k, v)

    def reset_stats(self) -> None:
        with self.lock:
            self.stats = FakeStats()

    def record(self, path: str, params: dict[str, str], status: int) -> None:
        with self.lock:
            self.stats.requests += 1
            self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1
            self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
            if len(self.stats.log) < 100_000:
                self.stats.log.append({"path": path, "params": params, "status": status})

    def gate(self, key: str) -> Response | None:
        """Applies throttling and server errors to one API request; None lets it through."""
        f = self.faults
        with self.lock:
            if f.throttle_first > 0:
                f.throttle_first -= 1
                return throttled(f.retry_after, f.rate_limit_per_minute or 200, 0)
            if f.rate_limit_per_minute > 0:
                now = time.monotonic()
                start, count = self._window.get(key, (now, 0))
                if now - start >= f.rate_window_seconds:
                    start, count = now, 0
                if count >= f.rate_limit_per_minute:
                    wait = max(0.05, f.rate_window_seconds - (now - start))
                    return throttled(round(wait + 0.05, 2), f.rate_limit_per_minute, 0)
                self._window[key] = (start, count + 1)
            if f.fail_first > 0:
                f.fail_first -= 1
                return JSONResponse({"message": "Service Unavailable"}, status_code=503)
            if f.error_rate > 0 and self.rng.random() < f.error_rate:
                code = self.rng.choice([500, 502, 503])
                return JSONResponse({"message": "upstream error"}, status_code=code)
        return None

    def take_delay(self) -> float:
        """Seconds this request waits before answering: the slow-server delay, plus a stall
        far past any sane client timeout for the first `stall_first` requests."""
        f = self.faults
        with self.lock:
            if f.stall_first > 0:
                f.stall_first -= 1
                self.stats.stalled += 1
                return f.delay_seconds + f.stall_seconds
            return f.delay_seconds

    def take_malformed(self, page: int, scope: str) -> str | None:
        """The kind of breakage to serve for this page now, if any (counts down)."""
        f = self.faults
        with self.lock:
            if f.malformed_page is None or page != f.malformed_page:
                return None
            if f.fault_event is not None and scope != f.fault_event:
                return None
            if f.malformed_times == 0:
                return None
            if f.malformed_times > 0:
                f.malformed_times -= 1
            return f.malformed_kind


def throttled(retry_after: float, limit: int, remaining: int) -> Response:
    return JSONResponse(
        {"message": "Too many requests, please slow down."},
        status_code=429,
        headers={
            "Retry-After": f"{retry_after:g}",
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(time.time() + retry_after)),
        },
    )


def malformed_response(kind: str, body: bytes) -> Response:
    if kind == "truncated":
        return Response(body[: max(1, len(body) // 2)], media_type="application/json")
    html = "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"
    return Response(html, media_type="text/html", status_code=200)


def encode_cursor(scope: str, offset: int, flag: str = "") -> str:
    raw = f"{scope}|{offset}|{flag}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, scope: str) -> tuple[int, str] | None:
    """The offset and flag in a cursor minted for this scope, or None when it is not one."""
    try:
        padded = token + "=" * (-len(token) % 4)
        got_scope, offset, flag = base64.urlsafe_b64decode(padded).decode().split("|")
        if got_scope != scope:
            return None
        return int(offset), flag
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class PageSlice:
    items: list[Any]
    next_cursor: str | None
    index: int


def page_slice(
    items: list[Any], scope: str, offset: int, flag: str, limit: int, faults: Faults
) -> PageSlice:
    """One page of a listing, with the repeated-page and stuck-cursor faults applied."""
    index = offset // max(limit, 1)
    chunk = items[offset : offset + limit]
    nxt_offset = offset + limit
    has_more = nxt_offset < len(items)
    nxt: str | None = encode_cursor(scope, nxt_offset) if has_more else None
    applies = faults.fault_event is None or faults.fault_event == scope
    if applies and faults.repeat_page is not None and index == faults.repeat_page and not flag:
        nxt = encode_cursor(scope, offset, "again")  # serve these records once more
    if applies and faults.stuck_page is not None and index == faults.stuck_page:
        nxt = encode_cursor(scope, offset, flag)  # the cursor never moves on
    return PageSlice(chunk, nxt, index)


def add_control_routes(app: FastAPI, state: FakeState) -> None:
    """`/_fake/…` lets a test or the demo inspect and switch a fake running elsewhere."""

    @app.get("/_fake/stats")
    def stats() -> dict[str, Any]:
        s = state.stats
        return {
            "requests": s.requests,
            "by_path": s.by_path,
            "statuses": s.statuses,
            "stalled": s.stalled,
        }

    @app.get("/_fake/faults")
    def get_faults() -> dict[str, Any]:
        return asdict(state.faults)

    @app.post("/_fake/faults")
    async def set_faults(request: Request) -> JSONResponse:
        try:
            state.set_faults(**(await request.json()))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"message": str(exc)}, status_code=400)
        return JSONResponse(asdict(state.faults))


class ServerThread:
    """Runs an ASGI app with uvicorn in a daemon thread on a real localhost port."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host=host, port=self.port, log_level="warning", lifespan="off", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"fake server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
