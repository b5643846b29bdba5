"""/v1/events: the events in the graph with guest and check-in counts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.deps import PageLimit, PageOffset, StateDep, ViewerDep
from api.responses import cached
from api.schemas.events import EventOut, EventPage

router = APIRouter(prefix="/v1", tags=["events"])


@router.get("/events", response_model=EventPage)
async def list_events(
    state: StateDep,
    _: ViewerDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> Response:
    """Events, newest first, with guest and check-in counts from the graph.

    Returns a `Response` from the response cache: a hit is sent as the stored bytes."""

    def produce() -> EventPage:
        rows, total = state.graph.list_events(offset, limit)
        items = [EventOut(**_jsonable(row)) for row in rows]
        return EventPage(items=items, total=total, limit=limit, offset=offset)

    return await cached(state, "events", {"limit": limit, "offset": offset}, produce)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Graph temporal values as ISO text."""
    return {
        key: (value.iso_format() if hasattr(value, "iso_format") else value)
        for key, value in row.items()
    }
