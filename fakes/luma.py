"""A local stand-in for Luma's public API (`/v1/calendar/list-events`, `/v1/event/get-guests`).

Speaks the documented format: `x-luma-api-key` auth, `pagination_cursor` /
`pagination_limit` paging with `{entries, has_more, next_cursor}`, 429 with `Retry-After`
and `X-RateLimit-*` headers, both guest shapes (wrapped and flat), plus the failures in
`fakes.common.Faults`.

    python -m fakes.luma --port 8711 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from fakes.common import (
    FakeState,
    Faults,
    ServerThread,
    add_control_routes,
    decode_cursor,
    malformed_response,
    page_slice,
)
from fakes.data import World, WorldConfig, build_world

DEFAULT_KEY = "luma-local-key"


class LumaFake:
    """The fake's data and state; tests hold this to switch faults and change guests."""

    def __init__(
        self, world: World | None = None, api_key: str = DEFAULT_KEY, faults: Faults | None = None
    ) -> None:
        self.world = world or build_world()
        self.api_key = api_key
        self.state = FakeState(faults, seed=self.world.config.seed)
        self.app = create_app(self)

    def events_by_id(self) -> dict[str, dict[str, Any]]:
        return {e["api_id"]: e for e in self.world.luma_events}

    def remove_guest(self, event_id: str, index: int) -> dict[str, Any]:
        """Takes a guest off the list, as a host removing them would."""
        return self.world.luma_guests[event_id].pop(index)

    def update_guest(self, event_id: str, index: int, **fields: Any) -> dict[str, Any]:
        """Sets (None: clears) guest fields in either shape; `email` covers both spellings."""
        entry = self.world.luma_guests[event_id][index]
        guest = entry.get("guest", entry)
        for key, value in fields.items():
            names = [k for k in ("email", "user_email") if k in guest] if key == "email" else [key]
            for name in names or [key]:
                guest[name] = value
        return entry

    def serve(self, port: int = 0) -> ServerThread:
        return ServerThread(self.app, port=port).start()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def create_app(fake: LumaFake) -> FastAPI:
    app = FastAPI(title="Luma (local fake)", docs_url=None, redoc_url=None)
    state = fake.state
    add_control_routes(app, state)

    async def guard(request: Request) -> Response | None:
        key = request.headers.get("x-luma-api-key")
        if not key:
            return _error(401, "Missing API key. Pass it in the x-luma-api-key header.")
        if key != fake.api_key:
            return _error(401, "Invalid API key.")
        blocked = state.gate(key)
        if blocked is not None:
            return blocked
        if delay := state.take_delay():
            await asyncio.sleep(delay)
        return None

    def limit_of(request: Request) -> int | Response:
        raw = request.query_params.get("pagination_limit", "50")
        try:
            limit = int(raw)
        except ValueError:
            return _error(400, "pagination_limit must be an integer")
        if limit < 1:
            return _error(400, "pagination_limit must be positive")
        return min(limit, state.faults.max_page_size)

    def finish(request: Request, resp: Response) -> Response:
        state.record(request.url.path, dict(request.query_params), resp.status_code)
        return resp

    @app.get("/v1/calendar/list-events")
    async def list_events(request: Request) -> Response:
        blocked = await guard(request)
        if blocked is not None:
            return finish(request, blocked)
        limit = limit_of(request)
        if isinstance(limit, Response):
            return finish(request, limit)
        after = request.query_params.get("after")
        before = request.query_params.get("before")
        events = sorted(fake.world.luma_events, key=lambda e: (e["start_at"], e["api_id"]))
        try:
            lo = _parse(after)
            hi = _parse(before)
        except ValueError:
            return finish(request, _error(400, "after/before must be ISO 8601 timestamps"))
        events = [
            e
            for e in events
            if (lo is None or _parse(e["start_at"]) >= lo)  # type: ignore[operator]
            and (hi is None or _parse(e["start_at"]) < hi)  # type: ignore[operator]
        ]
        scope = f"events:{after}:{before}"
        return finish(request, _page(request, state, events, scope, limit, wrap_events=True))

    @app.get("/v1/event/get")
    async def get_event(request: Request) -> Response:
        blocked = await guard(request)
        if blocked is not None:
            return finish(request, blocked)
        eid = request.query_params.get("id") or request.query_params.get("api_id")
        event = fake.events_by_id().get(eid or "")
        if event is None:
            return finish(request, _error(404, f"Event {eid!r} not found"))
        return finish(request, JSONResponse({"event": event, "hosts": []}))

    @app.get("/v1/event/get-guests")
    async def get_guests(request: Request) -> Response:
        blocked = await guard(request)
        if blocked is not None:
            return finish(request, blocked)
        limit = limit_of(request)
        if isinstance(limit, Response):
            return finish(request, limit)
        eid = request.query_params.get("event_id") or request.query_params.get("event_api_id")
        if not eid:
            return finish(request, _error(400, "event_id is required"))
        guests = fake.world.luma_guests.get(eid)
        if guests is None:
            return finish(request, _error(404, f"Event {eid!r} not found"))
        return finish(request, _page(request, state, guests, eid, limit, wrap_events=False))

    return app


def _parse(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _page(
    request: Request,
    state: FakeState,
    items: list[dict[str, Any]],
    scope: str,
    limit: int,
    *,
    wrap_events: bool,
) -> Response:
    token = request.query_params.get("pagination_cursor")
    offset, flag = 0, ""
    if token:
        decoded = decode_cursor(token, scope)
        if decoded is None:
            return _error(400, "Invalid pagination_cursor")
        offset, flag = decoded
    page = page_slice(items, scope, offset, flag, limit, state.faults)
    entries = (
        [{"api_id": e["api_id"], "event": e, "tags": []} for e in page.items]
        if wrap_events
        else page.items
    )
    body: dict[str, Any] = {
        "entries": entries,
        "has_more": page.next_cursor is not None,
        "next_cursor": page.next_cursor,
    }
    kind = None if wrap_events else state.take_malformed(page.index, scope)
    if kind is not None:
        return malformed_response(kind, json.dumps(body).encode())
    return JSONResponse(body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a local fake of Luma's public API.")
    parser.add_argument("--port", type=int, default=8711)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--api-key", default=DEFAULT_KEY)
    parser.add_argument("--events", type=int, default=24, help="events on the calendar")
    parser.add_argument("--guests", type=int, default=0, help="guests per event (0 = 15..60)")
    parser.add_argument("--people", type=int, default=400, help="size of the population")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to each reply")
    args = parser.parse_args(argv)
    import uvicorn

    cfg = WorldConfig(seed=args.seed, luma_events=args.events, people=args.people)
    if args.guests:
        cfg.guests_per_event = (args.guests, args.guests)
    fake = LumaFake(build_world(cfg), api_key=args.api_key, faults=Faults(delay_seconds=args.delay))
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
