"""Eventbrite: API v3 events and attendees, and the attendee-report CSV.

State: the `cancelled`, `refunded` and `checked_in` booleans decide first (the `status`
text is documented as going away), then `status`; a used barcode also means checked in.
The raw `status` text is kept as `raw_status` (or the deciding boolean's name when the
text is absent).

CSV: the per-event report (`Order #, Order Date, First Name, Last Name, Email, …,
Attendee #, …, Attendee Status, …` then custom questions) and the wider variant that adds
`Name, Company, Job title, Event Name, Checked In`. Rows are keyed by `Attendee #` (one
that a spreadsheet rounded, `7.77E+9`, is quarantined: it no longer tells attendees apart;
a rounded `Order #` is dropped, so it links no one). The
event is, in order: the `event` argument; an `Event ID` column; the `Event Name` column
matched against `known_events` by name; else a synthetic id `name-<slug of Event Name>`.
Zone-less order dates take the event's zone.

Orders: an order of several tickets is one buyer and their guests. Within an event, the
attendees of one order (`order_id`, `Order #`) beyond the buyer get role `plus_one` and
`plus_one_of` = the buyer's observation. The buyer is the attendee whose email is the
order's (`order.email` when the API expands orders, a `Buyer Email` column in reports),
else the first attendee of the order as listed.
"""

from __future__ import annotations

import json
import re
from typing import Any

import polars as pl

from domain.model import Role, Source, Status
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
    norm_key,
    with_index,
    wrong_column_set,
)
from domain.normalize.fields import event_zone, parse_time_or_none, text_or_none

EVENTBRITE_STATUS: dict[str, str] = {
    "attending": Status.GOING.value,
    "checked in": Status.ATTENDED.value,
    "not attending": Status.CANCELLED.value,
    "refunded": Status.CANCELLED.value,
    "cancelled": Status.CANCELLED.value,
    "canceled": Status.CANCELLED.value,
    "deleted": Status.CANCELLED.value,
    "unpaid": Status.REGISTERED.value,
    "pending": Status.REGISTERED.value,
    "waitlist": Status.WAITLISTED.value,
    "waitlisted": Status.WAITLISTED.value,
}

EVENTBRITE_CSV_COLUMNS: tuple[str, ...] = (
    "Order #",
    "Order Date",
    "First Name",
    "Last Name",
    "Name",
    "Email",
    "Quantity",
    "Price Tier",
    "Ticket Type",
    "Attendee #",
    "Group",
    "Order Type",
    "Currency",
    "Total Paid",
    "Fees Paid",
    "Eventbrite Fees",
    "Eventbrite Payment Processing",
    "Attendee Status",
    "Event Name",
    "Event ID",
    "Checked In",
    "Company",
    "Job Title",
    "Cell Phone",
    "Work Phone",
    "Home Phone",
    "Website",
    "Blog",
    "Buyer Email",
    "Purchaser Email",
    "Order Email",
    "Buyer First Name",
    "Buyer Last Name",
)
EVENTBRITE_CSV_REQUIRED: list[tuple[str, ...]] = [
    ("Attendee #",),
    ("Email", "Name", "First Name"),
]


def eventbrite_event(raw: dict[str, Any]) -> dict[str, Any]:
    """One Eventbrite event object as an `events` row."""
    source_id = str(raw.get("id"))
    start = _dict(raw.get("start"))
    end = _dict(raw.get("end"))
    tz, zone_note = event_zone(start.get("timezone") or end.get("timezone"))
    name = raw.get("name")
    address = _dict(_dict(raw.get("venue")).get("address"))
    event_id = f"{Source.EVENTBRITE}:{source_id}"

    def when(part: dict[str, Any]) -> Any:
        # The UTC time, else the local one (an unreadable UTC value does not hide it).
        return parse_time_or_none(part.get("utc"), tz) or parse_time_or_none(part.get("local"), tz)

    return {
        "event_id": event_id,
        "source": Source.EVENTBRITE.value,
        "source_event_id": source_id,
        "name": text_or_none(name.get("text") if isinstance(name, dict) else name),
        "starts_at": when(start),
        "ends_at": when(end),
        "timezone": tz,
        "url": text_or_none(raw.get("url")),
        "city": text_or_none(address.get("city")) or text_or_none(raw.get("city")),
        NOTES: [f"event {event_id}: {zone_note}"] if zone_note else [],
    }


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


def _attendee_state(att: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(status, raw_status, checked_in_at) from booleans first, then `status`."""
    raw = att.get("status")
    raw_text = str(raw) if raw is not None else None
    listed = att.get("barcodes")
    barcodes = [b for b in listed if isinstance(b, dict)] if isinstance(listed, list) else []
    used = [b for b in barcodes if str(b.get("status", "")).lower() == "used"]
    checked_at = None
    if used:
        checked_at = used[0].get("changed") or used[0].get("created")
    if _bool(att.get("cancelled")):
        return Status.CANCELLED.value, raw_text or "cancelled", None
    if _bool(att.get("refunded")):
        return Status.CANCELLED.value, raw_text or "refunded", None
    if _bool(att.get("checked_in")) or used:
        return Status.ATTENDED.value, raw_text or "checked_in", checked_at
    if raw_text is None:
        known = any(k in att for k in ("checked_in", "cancelled", "refunded"))
        return (Status.GOING.value if known else None), None, None
    return EVENTBRITE_STATUS.get(norm_key(raw_text)), raw_text, None


def normalize_eventbrite_attendees(
    attendees: list[dict[str, Any]], events: dict[str, dict[str, Any]], origin: str
) -> NormalizedBatch:
    """API attendee objects; `events` maps Eventbrite event id -> API event object."""
    event_rows = {eid: eventbrite_event(ev) for eid, ev in events.items()}
    rows: list[dict[str, Any]] = []
    seen_events: dict[str, dict[str, Any]] = {}
    for idx, att in enumerate(attendees):
        raw = json.dumps(att, default=str, ensure_ascii=False)
        if not isinstance(att, dict):
            rows.append({"_idx": idx, "_raw": raw, "_pre_reason": "attendee is not an object"})
            continue
        event_source_id = str(att.get("event_id") or "")
        event_row = event_rows.get(event_source_id)
        if event_row is None and event_source_id:
            event_row = eventbrite_event({"id": event_source_id})
        if event_row:
            seen_events[event_row["event_id"]] = event_row
        rows.append({"_idx": idx, "_raw": raw, **_attendee_staging(att, event_row)})
    staging = pl.DataFrame(
        rows,
        schema_overrides={
            "_idx": pl.Int64,
            "_raw": pl.String,
            "_pre_reason": pl.String,
            "_order": pl.String,
            "_buyer_email": pl.String,
        },
        infer_schema_length=None,
    )
    used_events = list(seen_events.values()) or list(event_rows.values())
    batch = finish(
        staging,
        FinishConfig(
            source=Source.EVENTBRITE.value,
            origin=origin,
            events=used_events,
            id_label="attendee id",
            status_label="attendee status",
            input_records=len(attendees),
        ),
    )
    return link_orders(batch, staging)


def _attendee_staging(att: dict[str, Any], event_row: dict[str, Any] | None) -> dict[str, Any]:
    """One API attendee object under staging names."""
    profile = _dict(att.get("profile"))
    answers = _answers(att.get("answers"))
    status, raw_status, checked_at = _attendee_state(att)
    if status is None and raw_status is None:
        raw_status = "(none)"
    return {
        "_pre_reason": None if event_row else "missing event_id",
        "_id": text_or_none(att.get("id")),
        "_event_id": event_row["event_id"] if event_row else None,
        "_tz": event_row["timezone"] if event_row else None,
        "_full": text_or_none(profile.get("name")),
        "_first": text_or_none(profile.get("first_name")),
        "_last": text_or_none(profile.get("last_name")),
        "_email": text_or_none(profile.get("email")),
        "_phone": text_or_none(profile.get("cell_phone") or profile.get("work_phone")),
        "_company": text_or_none(profile.get("company")) or answers.get("company"),
        "_job": text_or_none(profile.get("job_title")) or answers.get("job_title"),
        "_h_instagram": answers.get("handle_instagram"),
        "_h_linkedin": answers.get("handle_linkedin"),
        "_h_twitter": answers.get("handle_twitter"),
        "_h_github": answers.get("handle_github"),
        "_h_website": text_or_none(profile.get("website")) or answers.get("handle_website"),
        "_observed": text_or_none(att.get("created")),
        "_checked": text_or_none(checked_at),
        "_raw_status": raw_status,
        "_status": status,
        "_order": text_or_none(att.get("order_id")),
        "_buyer_email": text_or_none(_dict(att.get("order")).get("email")),
    }


def link_orders(batch: NormalizedBatch, staging: pl.DataFrame) -> NormalizedBatch:
    """Attendees of a multi-ticket order beyond its buyer become the buyer's plus-ones
    (see module docstring). `staging` holds `_id`, `_idx`, `_order`, `_buyer_email`."""
    if batch.observations.height == 0 or "_order" not in staging.columns:
        return batch
    # Most orders hold one ticket: an integer hash pass finds the few that hold more.
    order = staging["_order"].cast(pl.String)
    shared = order.hash().is_duplicated() & order.is_not_null()
    if not shared.any():
        return batch
    orders = (
        staging.filter(shared)
        .select(
            (
                pl.lit(f"{Source.EVENTBRITE}:") + pl.col("_id").cast(pl.String).str.strip_chars()
            ).alias("observation_id"),
            pl.col("_idx").alias("_at"),
            pl.col("_order").cast(pl.String).str.strip_chars().alias("_order"),
            pl.col("_buyer_email")
            .cast(pl.String)
            .str.strip_chars()
            .str.to_lowercase()
            .alias("_buyer"),
        )
        .filter(pl.col("_order").is_not_null() & (pl.col("_order") != ""))
    )
    if orders.height == 0:
        return batch
    group = ["event_id", "_order"]
    joined = (
        batch.observations.select("observation_id", "event_id", "email")
        .join(orders.unique("observation_id", keep="first"), on="observation_id")
        .filter(pl.len().over(group) > 1)
    )
    if joined.height == 0:
        return batch
    buyers = (
        joined.sort([(pl.col("email") != pl.col("_buyer")).fill_null(True), "_at"])
        .group_by(group, maintain_order=True)
        .agg(pl.col("observation_id").first().alias("_buyer_id"))
    )
    links = (
        joined.join(buyers, on=group)
        .filter(pl.col("observation_id") != pl.col("_buyer_id"))
        .select("observation_id", "event_id", "_buyer_id")
    )
    att = batch.attendance.join(links, on=["observation_id", "event_id"], how="left")
    linked = pl.col("_buyer_id").is_not_null()
    batch.attendance = att.with_columns(
        pl.when(linked).then(pl.lit(Role.PLUS_ONE.value)).otherwise(pl.col("role")).alias("role"),
        pl.coalesce("_buyer_id", "plus_one_of").alias("plus_one_of"),
    ).drop("_buyer_id")
    return batch


def _answers(answers: object) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    if not isinstance(answers, list):
        return out
    for item in answers:
        if not isinstance(item, dict):
            continue
        field = classify_label(str(item.get("question") or ""))
        answer = item.get("answer")
        if field and out.get(field) is None and isinstance(answer, (str, int, float)):
            out[field] = str(answer)
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unnamed"


def normalize_eventbrite_csv(
    frame: pl.DataFrame,
    event: dict[str, Any] | None,
    origin: str,
    known_events: list[dict[str, Any]] | None = None,
) -> NormalizedBatch:
    """Attendee-report CSV (see module docstring for how rows find their event)."""
    columns = [c for c in frame.columns if c != RECORD_INDEX]
    fixed_event = eventbrite_event(event) if event else None
    rejected = wrong_column_set(
        frame,
        EVENTBRITE_CSV_REQUIRED,
        source=Source.EVENTBRITE.value,
        origin=origin,
        events=[fixed_event] if fixed_event else [],
    )
    if rejected is not None:
        return rejected
    if fixed_event:
        event_rows = {fixed_event["event_id"]: fixed_event}
        df = (
            with_index(frame)
            .rechunk()
            .with_columns(
                pl.lit(fixed_event["event_id"]).alias("_event_id"),
                pl.lit(fixed_event["timezone"]).alias("_tz"),
            )
        )
    else:
        df, event_rows = _with_row_events(frame, columns, known_events or [])
    staging = _csv_staging(df, frame, columns)
    batch = finish(
        staging,
        FinishConfig(
            source=Source.EVENTBRITE.value,
            origin=origin,
            events=list(event_rows.values()),
            raw_frame=frame,
            raw_cols=columns,
            id_label="Attendee #",
            status_map=EVENTBRITE_STATUS,
            status_label="Attendee Status",
            default_status=Status.GOING.value,
        ),
    )
    rounded = staging.select(pl.col("_pre_reason") == ROUNDED_ID).to_series().sum()
    if rounded:
        batch.notes.append(
            f"{origin}: {rounded} Attendee # values were rounded by a spreadsheet (written "
            "like 7.77E+9): download the report again from Eventbrite and import it as "
            "downloaded, without saving it from a spreadsheet"
        )
    return link_orders(batch, staging)


SPREADSHEET_NUMBER = r"^\s*\d(?:\.\d+)?[eE]\+?\d+\s*$"
"""A long number as a spreadsheet shows it once it has opened and saved a CSV (7.77E+9):
the digits beyond the first few are lost, so different attendees share one value."""
ROUNDED_ID = (
    "Attendee # rounded by a spreadsheet (scientific notation): the attendee cannot be told apart"
)


def _event_named(
    raw_id: str | None,
    raw_name: str | None,
    by_id: dict[str, dict[str, Any]],
    by_name: dict[str, dict[str, Any]],
) -> dict[str, Any] | None:
    """The events row a CSV row's `Event ID` / `Event Name` cells point at (known events
    first, else one made up from the cells), or None when both are blank."""
    eid = (raw_id or "").strip() or None
    ename = (raw_name or "").strip() or None
    if eid:
        return by_id.get(eid) or eventbrite_event({"id": eid, "name": {"text": ename}})
    if ename:
        return by_name.get(norm_key(ename)) or eventbrite_event(
            {"id": f"name-{_slug(ename)}", "name": {"text": ename}}
        )
    return None


def _with_row_events(
    frame: pl.DataFrame, columns: list[str], known_events: list[dict[str, Any]]
) -> tuple[pl.DataFrame, dict[str, dict[str, Any]]]:
    """Rows with `_event_id` and `_tz` from their own event cells (worked out once per
    distinct pair of cells), and the events they name."""
    known = [eventbrite_event(e) for e in known_events]
    by_id = {e["source_event_id"]: e for e in known}
    by_name = {norm_key(e["name"] or ""): e for e in known if e["name"]}
    id_cell = col_or_null(frame, find_column(columns, "Event ID"))
    name_cell = col_or_null(frame, find_column(columns, "Event Name"))
    df = with_index(frame).rechunk()
    pairs = df.select(id_cell.alias("i"), name_cell.alias("n")).unique()
    event_rows: dict[str, dict[str, Any]] = {}
    ids: dict[str, str] = {}
    zones: dict[str, str] = {}
    for raw_id, raw_name in pairs.iter_rows():
        row = _event_named(raw_id, raw_name, by_id, by_name)
        if row:
            event_rows[row["event_id"]] = row
            key = f"{raw_id or ''}\x1f{raw_name or ''}"
            ids[key], zones[key] = row["event_id"], row["timezone"]
    event_key = pl.concat_str([id_cell.fill_null(""), name_cell.fill_null("")], separator="\x1f")
    df = df.with_columns(
        event_key.replace_strict(ids, default=None, return_dtype=pl.String).alias("_event_id"),
        event_key.replace_strict(zones, default=None, return_dtype=pl.String).alias("_tz"),
    )
    # The distinct pairs come in no fixed order; the events frame should not vary.
    return df, dict(sorted(event_rows.items()))


def _csv_staging(df: pl.DataFrame, frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """The report's cells under staging names (`df`: the rows with their events)."""
    answers = detect_answer_columns(columns, EVENTBRITE_CSV_COLUMNS)

    def cell(*names: str) -> pl.Expr:
        return col_or_null(frame, find_column(columns, *names))

    def answer(target: str, *fixed: str) -> pl.Expr:
        own = find_column(columns, *fixed) if fixed else None
        return col_or_null(frame, own or answers.get(target))

    checked_flag = cell("Checked In").str.to_lowercase().is_in(["yes", "true", "1", "checked in"])
    reason: pl.Expr = pl.when(pl.col("_event_id").is_null()).then(
        pl.lit("missing event (no event given, no Event ID or Event Name)")
    )
    order = cell("Order #")
    attendee = find_column(columns, "Attendee #")
    if attendee and bool(frame[attendee].cast(pl.String).str.contains(SPREADSHEET_NUMBER).any()):
        # A spreadsheet saved the report: its order numbers are rounded too, and a rounded
        # one would join different orders into one.
        rounded = cell("Attendee #").str.contains(SPREADSHEET_NUMBER)
        reason = (
            pl.when(rounded & pl.col("_event_id").is_not_null())
            .then(pl.lit(ROUNDED_ID))
            .otherwise(reason)
        )
        order = pl.when(order.str.contains(SPREADSHEET_NUMBER)).then(None).otherwise(order)
    return df.select(
        "_idx",
        "_pos",
        "_event_id",
        "_tz",
        cell("Attendee #").alias("_id"),
        cell("Name").alias("_full"),
        cell("First Name").alias("_first"),
        cell("Last Name").alias("_last"),
        cell("Email").alias("_email"),
        cell("Cell Phone", "Mobile Phone", "Phone", "Work Phone").alias("_phone"),
        answer("company", "Company").alias("_company"),
        answer("job_title", "Job Title").alias("_job"),
        answer("handle_instagram").alias("_h_instagram"),
        answer("handle_linkedin").alias("_h_linkedin"),
        answer("handle_twitter").alias("_h_twitter"),
        answer("handle_github").alias("_h_github"),
        answer("handle_website", "Website").alias("_h_website"),
        cell("Order Date").alias("_observed"),
        checked_flag.alias("_checked_flag"),
        cell("Attendee Status").alias("_raw_status"),
        reason.alias("_pre_reason"),
        order.alias("_order"),
        cell("Buyer Email", "Purchaser Email", "Order Email").alias("_buyer_email"),
    )
