"""Luma's public API: calendar events and their guest lists, as received.

Guests come back raw in whichever shape the server uses (wrapped `{api_id, guest}` or
flat `{id, ...}`); telling them apart is the normalizer's job.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from infra.settings import Settings
from ingest.connectors.base import ApiClient, ClientOptions, Listing, PageSink

if TYPE_CHECKING:
    import httpx

# The one place Luma's paths live: a renamed endpoint is a one-line change.
LUMA_PATHS: dict[str, str] = {
    "list_events": "calendar/list-events",
    "get_event": "event/get",
    "get_guests": "event/get-guests",
}
GUESTS_EVENT_PARAM = "event_id"  # older clients send `event_api_id`


def luma_options(settings: Settings) -> ClientOptions:
    return ClientOptions.from_settings(
        settings, settings.luma_base_url, settings.luma_requests_per_minute
    )


def guest_id(entry: dict[str, Any]) -> str | None:
    guest = entry.get("guest", entry)
    gid = guest.get("id") or guest.get("api_id") or entry.get("api_id")
    return str(gid) if gid else None


def event_id(entry: dict[str, Any]) -> str | None:
    ev = entry.get("event", entry)
    eid = ev.get("api_id") or ev.get("id") or entry.get("api_id")
    return str(eid) if eid else None


def _cursor(data: dict[str, Any]) -> dict[str, Any] | None:
    nxt = data.get("next_cursor")
    if not data.get("has_more") or not nxt:
        return None
    return {"pagination_cursor": nxt}


def _entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    entries = data["entries"]
    if not isinstance(entries, list):
        raise TypeError("entries is not a list")
    return entries


class LumaClient(ApiClient):
    source = "luma"
    credential = "API key"

    def __init__(
        self,
        options: ClientOptions,
        api_key: str,
        sink: PageSink | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(options, {"x-luma-api-key": api_key}, sink, transport)

    @classmethod
    def from_settings(cls, settings: Settings, sink: PageSink | None = None) -> LumaClient:
        return cls(luma_options(settings), settings.luma_api_key.get_secret_value(), sink)

    def auth_hint(self) -> str:
        return "check LUMA_API_KEY (a key belongs to one calendar)"

    def list_events(self, after: datetime | None = None, before: datetime | None = None) -> Listing:
        """Events of the key's calendar starting in [after, before), raw entries."""
        params: dict[str, Any] = {
            "after": after.isoformat().replace("+00:00", "Z") if after else None,
            "before": before.isoformat().replace("+00:00", "Z") if before else None,
            "pagination_limit": self.options.page_size,
        }
        return self.paginate(
            LUMA_PATHS["list_events"],
            {k: v for k, v in params.items() if v is not None},
            label="events",
            items=_entries,
            next_params=_cursor,
            record_id=event_id,
        )

    def get_guests(self, event_api_id: str) -> Listing:
        """Every guest of one event, following `next_cursor` to the end."""
        return self.paginate(
            LUMA_PATHS["get_guests"],
            {GUESTS_EVENT_PARAM: event_api_id, "pagination_limit": self.options.page_size},
            label=f"guests-{event_api_id}",
            items=_entries,
            next_params=_cursor,
            record_id=guest_id,
        )
