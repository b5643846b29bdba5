"""Luma: event objects, guest-export CSVs (one file per event) and API guest entries.

CSV: older exports key guests by `api_id` and carry `custom_source`; newer ones start
with `guest_id` and carry `utm_source` (and sometimes `referrer, referred_by`). Any
column after the fixed set is a custom question headed by its label; labels asking for
Instagram, LinkedIn, Twitter/X, GitHub, a website, a company or a job title fill those
fields. "No answer provided." reads as blank.

API: both guest shapes are accepted: the older wrapped `{api_id, guest: {...}}` and the
current flat `{id, user_id, user_*, event_tickets: [...]}`. Check-in comes from
`checked_in_at` or from the earliest checked-in ticket. Handles and company come from
`registration_answers` by `question_type` (the label decides for `text`/`url` questions).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from domain.model import Source, Status
from domain.normalize.batch import NormalizedBatch
from domain.normalize.common import (
    NOTES,
    RECORD_INDEX,
    FinishConfig,
    classify_label,
    col_or_null,
    detect_answer_columns,
    find_column,
    finish,
    with_index,
    wrong_column_set,
)
from domain.normalize.fields import (
    event_zone,
    parse_time_or_none,
    parse_timestamp,
    text_or_none,
)

LUMA_STATUS: dict[str, str] = {
    "approved": Status.GOING.value,
    "session": Status.GOING.value,
    "pending_approval": Status.REGISTERED.value,
    "invited": Status.INVITED.value,
    "declined": Status.DECLINED.value,
    "waitlist": Status.WAITLISTED.value,
}

LUMA_CSV_COLUMNS: tuple[str, ...] = (
    "api_id",
    "guest_id",
    "name",
    "first_name",
    "last_name",
    "email",
    "phone_number",
    "created_at",
    "registered_at",
    "approval_status",
    "custom_source",
    "utm_source",
    "referrer",
    "referred_by",
    "checked_in_at",
    "qr_code_url",
    "amount",
    "amount_tax",
    "amount_discount",
    "currency",
    "coupon_code",
    "eth_address",
    "solana_address",
    "survey_response_rating",
    "survey_response_feedback",
    "ticket_type_id",
    "ticket_name",
    "user_api_id",
    "user_id",
)
LUMA_CSV_REQUIRED: list[tuple[str, ...]] = [("guest_id", "api_id"), ("email", "name")]


def luma_event(raw: dict[str, Any]) -> dict[str, Any]:
    """One Luma event object (API shape, wrapped or flat) as an `events` row."""
    ev = raw.get("event", raw)
    source_id = str(ev.get("api_id") or ev.get("id"))
    geo = ev.get("geo_address_json") or {}
    tz, zone_note = event_zone(ev.get("timezone"))
    event_id = f"{Source.LUMA}:{source_id}"
    return {
        "event_id": event_id,
        "source": Source.LUMA.value,
        "source_event_id": source_id,
        "name": text_or_none(ev.get("name")),
        "starts_at": parse_time_or_none(ev.get("start_at"), tz),
        "ends_at": parse_time_or_none(ev.get("end_at"), tz),
        "timezone": tz,
        "url": text_or_none(ev.get("url")),
        "city": text_or_none(geo.get("city")) if isinstance(geo, dict) else None,
        NOTES: [f"event {event_id}: {zone_note}"] if zone_note else [],
    }


def normalize_luma_csv(frame: pl.DataFrame, event: dict[str, Any], origin: str) -> NormalizedBatch:
    """Normalizes one event's guest export; `frame` holds the CSV as strings."""
    event_row = luma_event(event)
    columns = [c for c in frame.columns if c != RECORD_INDEX]
    rejected = wrong_column_set(
        frame, LUMA_CSV_REQUIRED, source=Source.LUMA.value, origin=origin, events=[event_row]
    )
    if rejected is not None:
        return rejected
    answers = detect_answer_columns(columns, LUMA_CSV_COLUMNS)
    id_col = find_column(columns, "guest_id") or find_column(columns, "api_id")

    def cell(*names: str) -> pl.Expr:
        return col_or_null(frame, find_column(columns, *names))

    def answer(target: str) -> pl.Expr:
        return col_or_null(frame, answers.get(target))

    raw_status = cell("approval_status")
    staging = (
        with_index(frame)
        .select(
            "_idx",
            "_pos",
            col_or_null(frame, id_col).alias("_id"),
            cell("user_api_id", "user_id").alias("_person"),
            pl.lit(event_row["event_id"]).alias("_event_id"),
            cell("name").alias("_full"),
            cell("first_name").alias("_first"),
            cell("last_name").alias("_last"),
            cell("email").alias("_email"),
            cell("phone_number").alias("_phone"),
            answer("company").alias("_company"),
            answer("job_title").alias("_job"),
            *[answer(f"handle_{p}").alias(f"_h_{p}") for p in _HANDLES],
            cell("created_at", "registered_at").alias("_observed"),
            cell("checked_in_at").alias("_checked"),
            raw_status.alias("_raw_status"),
        )
        .rechunk()
    )
    return finish(
        staging,
        FinishConfig(
            source=Source.LUMA.value,
            origin=origin,
            events=[event_row],
            raw_frame=frame,
            raw_cols=columns,
            id_label="guest id",
            status_map=LUMA_STATUS,
            status_label="approval_status",
            tz=event_row["timezone"],
        ),
    )


_HANDLES = ("instagram", "linkedin", "twitter", "github", "website")
_TYPE_FIELDS = {
    "instagram": "handle_instagram",
    "linkedin": "handle_linkedin",
    "twitter": "handle_twitter",
    "github": "handle_github",
    "company": "company",
    "job_title": "job_title",
}


def _answer_text(answer: object) -> str | None:
    if answer is None or isinstance(answer, bool):
        return None
    if isinstance(answer, list):
        return ", ".join(str(x) for x in answer if x is not None) or None
    if isinstance(answer, dict):
        return None
    return str(answer)


def luma_answer_fields(answers: object) -> dict[str, str | None]:
    """Handles, company and job title out of `registration_answers`."""
    out: dict[str, str | None] = {}
    if not isinstance(answers, list):
        return out
    for item in answers:
        if not isinstance(item, dict):
            continue
        qtype = str(item.get("question_type") or "").lower()
        label = str(item.get("label") or "")
        answer = item.get("answer")
        if qtype == "company" and isinstance(answer, dict):
            out.setdefault("company", _answer_text(answer.get("company")))
            out.setdefault("job_title", _answer_text(answer.get("job_title")))
            continue
        if qtype in ("agree-check", "agree_check"):
            continue
        field = _TYPE_FIELDS.get(qtype) or classify_label(label)
        if field is None and qtype == "url":
            field = "handle_website"
        if field and out.get(field) is None:
            out[field] = _answer_text(answer)
    return out


def _first_checkin(tickets: list[Any]) -> str | None:
    times = [
        str(t["checked_in_at"]) for t in tickets if isinstance(t, dict) and t.get("checked_in_at")
    ]
    if not times:
        return None
    try:
        return min(times, key=lambda v: str(parse_timestamp(v)))
    except ValueError:
        return times[0]


def normalize_luma_guests(
    entries: list[dict[str, Any]], event: dict[str, Any], origin: str
) -> NormalizedBatch:
    """Normalizes API guest entries of one event (wrapped and flat shapes, mixed freely)."""
    event_row = luma_event(event)
    rows: list[dict[str, Any]] = []
    for idx, entry in enumerate(entries):
        raw = json.dumps(entry, default=str, ensure_ascii=False)
        if not isinstance(entry, dict):
            rows.append({"_idx": idx, "_raw": raw, "_pre_reason": "guest entry is not an object"})
            continue
        wrapped = entry.get("guest")
        guest: dict[str, Any] = wrapped if isinstance(wrapped, dict) else entry
        tickets = guest.get("event_tickets")
        if not isinstance(tickets, list):
            one = guest.get("event_ticket")
            tickets = [one] if isinstance(one, dict) else []
        answers = luma_answer_fields(guest.get("registration_answers"))
        status = guest.get("approval_status")
        rows.append(
            {
                "_idx": idx,
                "_raw": raw,
                "_id": text_or_none(guest.get("id") or guest.get("api_id") or entry.get("api_id")),
                "_person": text_or_none(guest.get("user_id") or guest.get("user_api_id")),
                "_full": text_or_none(guest.get("user_name") or guest.get("name")),
                "_first": text_or_none(guest.get("user_first_name") or guest.get("first_name")),
                "_last": text_or_none(guest.get("user_last_name") or guest.get("last_name")),
                "_email": text_or_none(guest.get("user_email") or guest.get("email")),
                "_phone": text_or_none(guest.get("phone_number")),
                "_company": answers.get("company"),
                "_job": answers.get("job_title"),
                **{f"_h_{p}": answers.get(f"handle_{p}") for p in _HANDLES},
                "_observed": text_or_none(guest.get("registered_at") or guest.get("created_at")),
                "_checked": text_or_none(guest.get("checked_in_at")) or _first_checkin(tickets),
                "_raw_status": text_or_none(status),
                "_status": LUMA_STATUS.get(str(status).strip().lower()) if status else None,
            }
        )
    schema = dict.fromkeys(("_raw", "_pre_reason", "_status"), pl.String)
    staging = pl.DataFrame(
        rows, schema_overrides={"_idx": pl.Int64, **schema}, infer_schema_length=None
    )
    if staging.height:
        staging = staging.with_columns(pl.lit(event_row["event_id"]).alias("_event_id"))
    return finish(
        staging,
        FinishConfig(
            source=Source.LUMA.value,
            origin=origin,
            events=[event_row],
            id_label="guest id",
            status_label="approval_status",
            tz=event_row["timezone"],
            input_records=len(entries),
        ),
    )
