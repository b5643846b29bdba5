"""Eventbrite API v3: organizations, their events, and each event's attendees.

Paging follows `pagination.continuation` until `has_more_items` is false; `changed_since`
asks only for attendees changed after the last sync.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from infra.settings import Settings
from ingest.connectors.base import ApiClient, ClientOptions, Listing, PageSink, SourceError

if TYPE_CHECKING:
    import httpx

EVENTBRITE_PATHS: dict[str, str] = {
    "organizations": "users/me/organizations/",
    "events": "organizations/{org_id}/events/",
    "attendees": "events/{event_id}/attendees/",
}
AUTH_ERROR_CODES = frozenset({"INVALID_AUTH", "NO_AUTH", "NOT_AUTHORIZED"})


def eventbrite_options(settings: Settings) -> ClientOptions:
    return ClientOptions.from_settings(
        settings, settings.eventbrite_base_url, settings.eventbrite_requests_per_minute
    )


def iso_z(ts: datetime) -> str:
    """Eventbrite wants UTC to the second with a Z."""
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _continuation(data: dict[str, Any]) -> dict[str, Any] | None:
    pag = data.get("pagination") or {}
    token = pag.get("continuation")
    if not pag.get("has_more_items") or not token:
        return None
    return {"continuation": token}


def _list_of(key: str) -> Any:
    def get(data: dict[str, Any]) -> list[dict[str, Any]]:
        value = data[key]
        if not isinstance(value, list):
            raise TypeError(f"{key} is not a list")
        return value

    return get


def _id(rec: dict[str, Any]) -> str | None:
    rid = rec.get("id")
    return str(rid) if rid is not None else None


class EventbriteClient(ApiClient):
    source = "eventbrite"
    credential = "token"

    def __init__(
        self,
        options: ClientOptions,
        token: str,
        sink: PageSink | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(options, {"authorization": f"Bearer {token}"}, sink, transport)

    @classmethod
    def from_settings(cls, settings: Settings, sink: PageSink | None = None) -> EventbriteClient:
        return cls(eventbrite_options(settings), settings.eventbrite_token.get_secret_value(), sink)

    def auth_hint(self) -> str:
        return "check EVENTBRITE_TOKEN (a private token of the organization's account)"

    def _is_auth_error(self, resp: httpx.Response) -> bool:
        try:
            return resp.json().get("error") in AUTH_ERROR_CODES
        except (ValueError, AttributeError):
            return False

    def organizations(self) -> list[dict[str, Any]]:
        listing = self.paginate(
            EVENTBRITE_PATHS["organizations"],
            {},
            label="organizations",
            items=_list_of("organizations"),
            next_params=_continuation,
            record_id=_id,
        )
        if listing.broken:
            raise SourceError(self.source, f"organizations: {listing.broken[0].reason}")
        return listing.records

    def events(self, org_id: str) -> Listing:
        return self.paginate(
            EVENTBRITE_PATHS["events"].format(org_id=org_id),
            {"page_size": self.options.page_size},
            label=f"events-{org_id}",
            items=_list_of("events"),
            next_params=_continuation,
            record_id=_id,
        )

    def attendees(self, event_id: str, changed_since: datetime | None = None) -> Listing:
        params: dict[str, Any] = {"page_size": self.options.page_size}
        if changed_since is not None:
            params["changed_since"] = iso_z(changed_since)
        return self.paginate(
            EVENTBRITE_PATHS["attendees"].format(event_id=event_id),
            params,
            label=f"attendees-{event_id}",
            items=_list_of("attendees"),
            next_params=_continuation,
            record_id=_id,
        )
