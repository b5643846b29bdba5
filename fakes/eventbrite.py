"""A local stand-in for Eventbrite's API v3 (organizations, events, attendees).

Speaks the documented format: `Authorization: Bearer` auth, `continuation` paging with a
`pagination` object beside the list, `changed_since` on attendees, errors as
`{"error", "error_description", "status_code"}`, 429 with `Retry-After`, plus the failures
in `fakes.common.Faults`.

    python -m fakes.eventbrite --port 8712 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
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
from fakes.data import World, WorldConfig, build_world, iso_s

DEFAULT_TOKEN = "eventbrite-local-token"
DEFAULT_PAGE_SIZE = 50


class EventbriteFake:
    def __init__(
        self,
        world: World | None = None,
        token: str = DEFAULT_TOKEN,
        faults: Faults | None = None,
    ) -> None:
        self.world = world or build_world()
        self.token = token
        self.state = FakeState(faults, seed=self.world.config.seed + 1)
        self.app = create_app(self)

    def org(self) -> dict[str, Any]:
        cfg = self.world.config
        return {"id": cfg.eventbrite_org_id, "name": "Community Org", "vertical": "Default"}

    def change_attendee(self, event_id: str, index: int, **changes: Any) -> dict[str, Any]:
        """Edits one attendee and stamps `changed` with now, as the platform would."""
        att = self.world.eventbrite_attendees[event_id][index]
        for k, v in changes.items():
            if k == "profile":
                att["profile"].update(v)
            else:
                att[k] = v
        if changes.get("cancelled"):
            att["status"] = "Not Attending"
        if changes.get("checked_in"):
            att["status"] = "Checked In"
        att["changed"] = iso_s(datetime.now(UTC))
        return att

    def serve(self, port: int = 0) -> ServerThread:
        return ServerThread(self.app, port=port).start()


def _error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": code, "error_description": description, "status_code": status},
        status_code=status,
    )


def create_app(fake: EventbriteFake) -> FastAPI:
    app = FastAPI(title="Eventbrite (local fake)", docs_url=None, redoc_url=None)
    state = fake.state
    add_control_routes(app, state)

    async def guard(request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        token = request.query_params.get("token")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:
            return _error(401, "NO_AUTH", "An OAuth token is required for this request.")
        if token != fake.token:
            return _error(401, "INVALID_AUTH", "The OAuth token you provided was invalid.")
        blocked = state.gate(token)
        if blocked is not None:
            if blocked.status_code == 429:
                return _with_headers(
                    _error(429, "HIT_RATE_LIMIT", "Hit rate limit; retry later."), blocked
                )
            return blocked
        if delay := state.take_delay():
            await asyncio.sleep(delay)
        return None

    def finish(request: Request, resp: Response) -> Response:
        state.record(request.url.path, dict(request.query_params), resp.status_code)
        return resp

    def page_size(request: Request) -> int | Response:
        raw = request.query_params.get("page_size", str(DEFAULT_PAGE_SIZE))
        try:
            size = int(raw)
        except ValueError:
            return _error(400, "ARGUMENTS_ERROR", "page_size must be an integer")
        if size < 1:
            return _error(400, "ARGUMENTS_ERROR", "page_size must be positive")
        return min(size, state.faults.max_page_size)

    @app.get("/v3/users/me/organizations/")
    async def organizations(request: Request) -> Response:
        blocked = await guard(request)
        if blocked is not None:
            return finish(request, blocked)
        body = {
            "organizations": [fake.org()],
            "pagination": {
                "object_count": 1,
                "page_number": 1,
                "page_size": 50,
                "page_count": 1,
                "has_more_items": False,
            },
        }
        return finish(request, JSONResponse(body))

    @app.get("/v3/organizations/{org_id}/events/")
    async def events(org_id: str, request: Request) -> Response:
        blocked = await guard(request)
        if blocked is not None:
            return finish(request, blocked)
        if org_id != fake.org()["id"]:
            return finish(
                request, _error(403, "NOT_AUTHORIZED", "You do not have access to this org.")
            )
        size = page_size(request)
        if isinstance(size, Response):
            return finish(request, size)
        items = sorted(fake.world.eventbrite_events, key=lambda e: (e["start"]["utc"], e["id"]))
        return finish(request, _page(request, state, items, f"org:{org_id}", size, "events"))

    @app.get("/v3/events/{event_id}/")
    async def event(event_id: str, request: Request) -> Response:
        blocked = await guard(request)
        if blocked is not None:
            return finish(request, blocked)
        found = [e for e in fake.world.eventbrite_events if e["id"] == event_id]
        if not found:
            return finish(
                request, _error(404, "NOT_FOUND", "The event you requested does not exist.")
            )
        return finish(request, JSONResponse(found[0]))

    @app.get("/v3/events/{event_id}/attendees/")
    async def attendees(event_id: str, request: Request) -> Response:
        blocked = await guard(request)
        if blocked is not None:
            return finish(request, blocked)
        items = fake.world.eventbrite_attendees.get(event_id)
        if items is None:
            return finish(
                request, _error(404, "NOT_FOUND", "The event you requested does not exist.")
            )
        size = page_size(request)
        if isinstance(size, Response):
            return finish(request, size)
        since = request.query_params.get("changed_since")
        if since:
            try:
                cutoff = datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError:
                return finish(
                    request, _error(400, "ARGUMENTS_ERROR", "changed_since must be ISO 8601 UTC")
                )
            items = [
                a
                for a in items
                if datetime.fromisoformat(a["changed"].replace("Z", "+00:00")) >= cutoff
            ]
        status = request.query_params.get("status")
        if status:
            wanted = {
                "attending": lambda a: not a["cancelled"],
                "not_attending": lambda a: a["cancelled"],
                "unpaid": lambda a: False,
            }.get(status)
            if wanted is None:
                return finish(request, _error(400, "ARGUMENTS_ERROR", "unknown status filter"))
            items = [a for a in items if wanted(a)]
        return finish(
            request, _page(request, state, items, event_id, size, "attendees", faults=True)
        )

    return app


def _with_headers(resp: Response, source: Response) -> Response:
    for k in ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        if k in source.headers:
            resp.headers[k] = source.headers[k]
    return resp


def _page(
    request: Request,
    state: FakeState,
    items: list[dict[str, Any]],
    scope: str,
    size: int,
    key: str,
    *,
    faults: bool = False,
) -> Response:
    token = request.query_params.get("continuation")
    offset, flag = 0, ""
    if token:
        decoded = decode_cursor(token, scope)
        if decoded is None:
            return _error(400, "BAD_PAGE", "The continuation token is invalid.")
        offset, flag = decoded
    page = page_slice(items, scope, offset, flag, size, state.faults)
    pagination: dict[str, Any] = {
        "object_count": len(items),
        "page_number": page.index + 1,
        "page_size": size,
        "page_count": max(1, -(-len(items) // size)),
        "has_more_items": page.next_cursor is not None,
    }
    if page.next_cursor is not None:
        pagination["continuation"] = page.next_cursor
    body = {key: page.items, "pagination": pagination}
    kind = state.take_malformed(page.index, scope) if faults else None
    if kind is not None:
        return malformed_response(kind, json.dumps(body).encode())
    return JSONResponse(body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a local fake of Eventbrite's API v3.")
    parser.add_argument("--port", type=int, default=8712)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args(argv)
    import uvicorn

    fake = EventbriteFake(build_world(WorldConfig(seed=args.seed)), token=args.token)
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
