"""/v1/events."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from api.schemas.common import Paging


class EventOut(BaseModel):
    event_id: str
    source: str | None
    name: str | None
    starts_at: str | None
    timezone: str | None
    url: str | None
    city: str | None
    guests: int
    attended: int


class EventPage(Paging):
    """Events, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "event_id": "luma:evt-founders-nov",
                            "source": "luma",
                            "name": "Founders breakfast",
                            "starts_at": "2026-11-12T15:00:00Z",
                            "timezone": "Europe/Berlin",
                            "url": "https://lu.ma/founders-nov",
                            "city": "Berlin",
                            "guests": 6,
                            "attended": 4,
                        }
                    ],
                    "total": 9,
                    "limit": 50,
                    "offset": 0,
                }
            ]
        }
    )

    items: list[EventOut]
    total: int
