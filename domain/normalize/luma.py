"""Luma guest exports (CSV, one file per event) into the normalized schema."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from domain.model import (
    ATTENDANCE_SCHEMA,
    EVENTS_SCHEMA,
    OBSERVATIONS_SCHEMA,
    QUARANTINE_SCHEMA,
    Role,
    Source,
    Status,
    conform,
)
from domain.normalize.batch import NormalizedBatch
from domain.normalize.fields import normalize_phone, parse_timestamp

LUMA_STATUS: dict[str, str] = {
    "approved": Status.GOING,
    "session": Status.GOING,
    "pending_approval": Status.REGISTERED,
    "invited": Status.INVITED,
    "declined": Status.DECLINED,
    "waitlist": Status.WAITLISTED,
}
EMAIL_RE = r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]+)+$"
BLANK_ANSWERS = ["", "no answer provided.", "n/a", "none"]


def luma_event(raw: dict[str, Any]) -> dict[str, Any]:
    """One Luma event object (API shape, wrapped or flat) as an `events` row."""
    ev = raw.get("event", raw)
    source_id = str(ev.get("api_id") or ev.get("id"))
    geo = ev.get("geo_address_json") or {}
    return {
        "event_id": f"{Source.LUMA}:{source_id}",
        "source": Source.LUMA.value,
        "source_event_id": source_id,
        "name": ev.get("name"),
        "starts_at": parse_timestamp(ev.get("start_at")),
        "ends_at": parse_timestamp(ev.get("end_at")),
        "timezone": ev.get("timezone") or "UTC",
        "url": ev.get("url"),
        "city": geo.get("city") if isinstance(geo, dict) else None,
    }


def _clean(col: str) -> pl.Expr:
    text = pl.col(col).cast(pl.String).str.strip_chars()
    return pl.when(text.str.to_lowercase().is_in(BLANK_ANSWERS)).then(None).otherwise(text)


def normalize_luma_csv(frame: pl.DataFrame, event: dict[str, Any], origin: str) -> NormalizedBatch:
    """Normalizes one event's guest export; `frame` holds the CSV as strings."""
    event_row = luma_event(event)
    event_id = event_row["event_id"]
    id_col = "guest_id" if "guest_id" in frame.columns else "api_id"
    df = frame.with_row_index("record_index")
    for col in (
        id_col,
        "name",
        "first_name",
        "last_name",
        "email",
        "phone_number",
        "approval_status",
        "checked_in_at",
        "created_at",
    ):
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    df = df.with_columns(
        _clean(id_col).alias("_id"),
        _clean("email").str.to_lowercase().alias("_email"),
        _clean("approval_status").str.to_lowercase().alias("_status"),
    )
    reason = (
        pl.when(pl.col("_id").is_null())
        .then(pl.lit("missing guest id"))
        .when(pl.col("_email").is_not_null() & ~pl.col("_email").str.contains(EMAIL_RE))
        .then(pl.lit("unparseable email"))
        .when(pl.col("_status").is_not_null() & ~pl.col("_status").is_in(list(LUMA_STATUS)))
        .then(pl.lit("unknown approval_status"))
        .when(pl.col("_id").is_duplicated())
        .then(pl.lit("duplicate guest id in file"))
        .otherwise(None)
    )
    df = df.with_columns(reason.alias("_reason"))
    bad = df.filter(pl.col("_reason").is_not_null())
    good = df.filter(pl.col("_reason").is_null())
    raw_cols = list(frame.columns)
    quarantine = bad.select(
        pl.lit(Source.LUMA.value).alias("source"),
        pl.lit(origin).alias("origin"),
        pl.col("record_index").cast(pl.Int64),
        pl.struct(raw_cols)
        .map_elements(lambda s: json.dumps(s, default=str), return_dtype=pl.String)
        .alias("raw")
        if raw_cols
        else pl.lit("{}").alias("raw"),
        pl.col("_reason").alias("reason"),
    )
    # Timestamps can still fail after the cheap checks; those rows move to quarantine too.
    ts_rows: list[dict[str, Any]] = []
    good_rows: list[dict[str, Any]] = []
    for row in good.select("_id", "created_at", "checked_in_at", "record_index").iter_rows(
        named=True
    ):
        try:
            good_rows.append(
                {
                    "_id": row["_id"],
                    "_created": parse_timestamp(row["created_at"]),
                    "_checked": parse_timestamp(row["checked_in_at"]),
                }
            )
        except ValueError as exc:
            ts_rows.append({"record_index": row["record_index"], "reason": str(exc)})
    if ts_rows:
        bad_idx = [r["record_index"] for r in ts_rows]
        ts_bad = good.filter(pl.col("record_index").is_in(bad_idx))
        quarantine = pl.concat(
            [
                quarantine,
                ts_bad.select(
                    pl.lit(Source.LUMA.value).alias("source"),
                    pl.lit(origin).alias("origin"),
                    pl.col("record_index").cast(pl.Int64),
                    pl.struct(raw_cols)
                    .map_elements(lambda s: json.dumps(s, default=str), return_dtype=pl.String)
                    .alias("raw"),
                    pl.lit("unparseable timestamp").alias("reason"),
                ),
            ]
        )
        good = good.filter(~pl.col("record_index").is_in(bad_idx))
    times = pl.DataFrame(
        good_rows,
        schema={
            "_id": pl.String,
            "_created": pl.Datetime("us", "UTC"),
            "_checked": pl.Datetime("us", "UTC"),
        },
    )
    good = good.join(times, on="_id", how="left")
    phones = {v: normalize_phone(v) for v in good["phone_number"].drop_nulls().unique().to_list()}
    name = _clean("name")
    first = pl.coalesce(_clean("first_name"), name.str.replace(r"\s+\S+$", ""))
    last = pl.coalesce(_clean("last_name"), name.str.extract(r"\s(\S+)$"))
    obs = good.select(
        (pl.lit(f"{Source.LUMA}:") + pl.col("_id")).alias("observation_id"),
        pl.lit(Source.LUMA.value).alias("source"),
        pl.col("_id").alias("source_record_id"),
        pl.lit(event_id).alias("event_id"),
        name.alias("full_name"),
        pl.coalesce(first, name).alias("first_name"),
        last.alias("last_name"),
        pl.col("_email").alias("email"),
        pl.col("phone_number")
        .replace_strict(phones, default=None, return_dtype=pl.String)
        .alias("phone"),
        pl.col("_created").alias("observed_at"),
    )
    status = (
        pl.when(pl.col("_checked").is_not_null())
        .then(pl.lit(Status.ATTENDED.value))
        .otherwise(
            pl.col("_status").replace_strict(
                LUMA_STATUS, default=Status.REGISTERED.value, return_dtype=pl.String
            )
        )
    )
    att = good.select(
        pl.lit(event_id).alias("event_id"),
        (pl.lit(f"{Source.LUMA}:") + pl.col("_id")).alias("observation_id"),
        status.alias("status"),
        pl.col("approval_status").alias("raw_status"),
        pl.lit(Role.GUEST.value).alias("role"),
        pl.col("_created").alias("registered_at"),
        pl.col("_checked").alias("checked_in_at"),
    )
    return NormalizedBatch(
        input_records=frame.height,
        events=conform(pl.DataFrame([event_row]), EVENTS_SCHEMA),
        observations=conform(obs, OBSERVATIONS_SCHEMA),
        attendance=conform(att, ATTENDANCE_SCHEMA),
        quarantine=conform(quarantine, QUARANTINE_SCHEMA),
    )
