"""The normalized schema every source is mapped into, and the quarantine table.

These polars schemas are the contract between importers, identity resolution and
analytics: each stage reads and writes frames with exactly these columns.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl

UTC_DATETIME = pl.Datetime("us", "UTC")


class Source(StrEnum):
    LUMA = "luma"
    EVENTBRITE = "eventbrite"
    PARTIFUL = "partiful"
    MEETUP = "meetup"


class Status(StrEnum):
    """Attendance states shared by every platform; the raw value is kept beside it."""

    INVITED = "invited"
    REGISTERED = "registered"
    WAITLISTED = "waitlisted"
    DECLINED = "declined"
    GOING = "going"
    MAYBE = "maybe"
    ATTENDED = "attended"
    CANCELLED = "cancelled"


class Role(StrEnum):
    GUEST = "guest"
    HOST = "host"
    PLUS_ONE = "plus_one"


STATUSES: frozenset[str] = frozenset(s.value for s in Status)

HANDLE_LABELS: dict[str, str] = {
    "instagram": "Instagram handle",
    "linkedin": "LinkedIn profile",
    "twitter": "X (Twitter) handle",
    "github": "GitHub username",
    "website": "website address",
}
"""Each platform whose handle a guest may give, with what people call that handle (field
issues name it)."""
HANDLE_PLATFORMS: tuple[str, ...] = tuple(HANDLE_LABELS)

EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),  # "<source>:<source_event_id>", unique across sources
    "source": pl.String(),
    "source_event_id": pl.String(),
    "name": pl.String(),
    "starts_at": UTC_DATETIME,
    "ends_at": UTC_DATETIME,
    "timezone": pl.String(),  # IANA zone of the event, used for zone-less source times
    "url": pl.String(),
    "city": pl.String(),
}

OBSERVATIONS_SCHEMA: dict[str, pl.DataType] = {
    "observation_id": pl.String(),  # "<source>:<source_record_id>", stable across reruns
    "source": pl.String(),
    "source_record_id": pl.String(),
    "source_person_id": pl.String(),  # platform user id when the platform has one
    "event_id": pl.String(),
    "full_name": pl.String(),  # as given
    "first_name": pl.String(),
    "last_name": pl.String(),
    "email": pl.String(),  # lower-cased, trimmed, validated
    "phone": pl.String(),  # E.164
    **{f"handle_{p}": pl.String() for p in HANDLE_PLATFORMS},
    "company": pl.String(),
    "job_title": pl.String(),
    "observed_at": UTC_DATETIME,  # when the source recorded this person (registration)
}

ATTENDANCE_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "observation_id": pl.String(),
    "status": pl.String(),  # one of STATUSES
    "raw_status": pl.String(),
    "role": pl.String(),  # a Role value
    "plus_one_of": pl.String(),  # observation_id of the guest who brought this one
    "registered_at": UTC_DATETIME,
    "checked_in_at": UTC_DATETIME,
}

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "origin": pl.String(),  # file name or API page that held the record
    "record_index": pl.Int64(),  # position in that origin
    "raw": pl.String(),  # the record as received (JSON text)
    "reason": pl.String(),
}


FIELD_ISSUES_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "origin": pl.String(),  # file name or API page that held the record
    "record_index": pl.Int64(),  # position in that origin
    "observation_id": pl.String(),  # the kept record the issue belongs to
    "field": pl.String(),  # normalized field that was set to null (or defaulted)
    "raw": pl.String(),  # the value as received
    "reason": pl.String(),
}
"""A field of a kept record that could not be read: the record is normalized with the
field null (statuses: the source's default status, the raw text kept as `raw_status`)."""


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Adds missing columns as nulls, casts, and orders columns as the schema says."""
    cols = [
        (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in schema.items()
    ]
    return frame.select(cols)
