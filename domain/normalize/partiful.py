"""Partiful guest-list CSV exports (the host's "Export CSV"); Partiful has no API.

Columns: `Name, Status, RSVP date, Invited By, Is Plus One Of`, then one column per
questionnaire question (labels asking for Instagram, LinkedIn, … fill those fields).
Exports carry no email or phone: Partiful people are matched by name, plus-one links and
co-attendance. `RSVP date` has no zone; the event's zone applies.

Event metadata does not come in the file. Convention (implemented by
`resources.exports.load_exports`): a side file `partiful/events.json` next to the CSVs
holds a list of `{id, title, start, end?, timezone, url, city, file?}`; a CSV belongs to
the entry whose `file` (or, without `file`, whose `id`) equals the CSV's file stem.
Without an entry, the stem is read as `<slug>_<YYYY-MM-DD>`: id = stem, title = the slug
in words, start = that date at midnight UTC, timezone UTC.

Observation ids are stable across reruns of the same file:
`partiful:<event id>:<h>-<n>`, where `h` is the first 12 hex digits of BLAKE2b over the
normalized name (NFKC, lower case, single spaces) and `n` counts that name's occurrences
in the file from 1. Reordering rows of the same name swaps their ids, nothing else does.

Plus-ones: newer exports give each plus-one its own row naming its host in
`Is Plus One Of`; the row gets role `plus_one` and `plus_one_of` = the host row's
observation id, resolved by normalized name within the file (first non-plus-one row of
that name). A host name that matches no normalized row leaves `plus_one_of` null; the
plus-one is still kept. Older exports have a count column (`+1s`, `Plus Ones`) instead:
for a count N the host row yields N extra observations named "<host name>'s plus-one k"
(role `plus_one`, linked to the host, same status and RSVP date). Each counts as an input
record (so a file's input = rows + declared plus-ones) and shares the host row's record
index; if the host row is quarantined, so are its plus-ones.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import polars as pl

from domain.model import Role, Source, Status
from domain.normalize.batch import NormalizedBatch
from domain.normalize.common import (
    RECORD_INDEX,
    all_quarantined,
    clean,
    col_or_null,
    detect_answer_columns,
    find_column,
    finish,
    missing_columns,
    status_expr,
    with_index,
)
from domain.normalize.fields import parse_timestamp

PARTIFUL_STATUS: dict[str, str] = {
    "going": Status.GOING.value,
    "approved": Status.GOING.value,
    "host": Status.GOING.value,
    "cohost": Status.GOING.value,
    "co host": Status.GOING.value,
    "maybe": Status.MAYBE.value,
    "interested": Status.MAYBE.value,
    "can't go": Status.DECLINED.value,
    "cant go": Status.DECLINED.value,
    "not going": Status.DECLINED.value,
    "declined": Status.DECLINED.value,
    "invited": Status.INVITED.value,
    "sent": Status.INVITED.value,
    "pending": Status.REGISTERED.value,
    "pending approval": Status.REGISTERED.value,
    "requested": Status.REGISTERED.value,
    "waitlist": Status.WAITLISTED.value,
    "waitlisted": Status.WAITLISTED.value,
    "checked in": Status.ATTENDED.value,
    "attended": Status.ATTENDED.value,
}
HOST_STATUSES = ("host", "cohost", "co host")

PARTIFUL_CSV_COLUMNS: tuple[str, ...] = (
    "Name",
    "Status",
    "RSVP date",
    "Invited By",
    "Is Plus One Of",
    "+1s",
    "Plus Ones",
    "Plus-Ones",
    "+1",
)
PARTIFUL_CSV_REQUIRED: list[tuple[str, ...]] = [("Name",), ("Status", "RSVP Status", "RSVP")]
_COUNT_COLUMNS = ("+1s", "Plus Ones", "Plus-Ones", "+1", "Plus One Count")
_STEM = re.compile(r"^(?P<slug>.+?)[_-](?P<date>\d{4}-\d{2}-\d{2})$")


def partiful_event(meta: dict[str, Any]) -> dict[str, Any]:
    """Side-file metadata (`{id, title, start, end?, timezone, url, city}`) as an events row."""
    source_id = str(meta.get("id"))
    tz = meta.get("timezone") or "UTC"

    def when(value: object) -> Any:
        try:
            return parse_timestamp(value, tz)
        except ValueError:
            return None

    return {
        "event_id": f"{Source.PARTIFUL}:{source_id}",
        "source": Source.PARTIFUL.value,
        "source_event_id": source_id,
        "name": meta.get("title") or meta.get("name"),
        "starts_at": when(meta.get("start")),
        "ends_at": when(meta.get("end")),
        "timezone": tz,
        "url": meta.get("url"),
        "city": meta.get("city"),
    }


def event_meta_from_stem(stem: str) -> dict[str, Any]:
    """Fallback metadata from a `<slug>_<YYYY-MM-DD>` file name (see module docstring)."""
    match = _STEM.match(stem)
    if not match:
        return {"id": stem, "title": stem, "timezone": "UTC"}
    try:
        start = datetime.strptime(match["date"], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        start = None
    title = re.sub(r"[-_]+", " ", match["slug"]).strip().title()
    return {
        "id": stem,
        "title": title,
        "start": start.isoformat() if start else None,
        "timezone": "UTC",
    }


def name_key(expr: pl.Expr) -> pl.Expr:
    return (
        expr.str.normalize("NFKC").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()
    )


def _name_hashes(names: pl.Series) -> pl.Series:
    """Stable short hash per distinct normalized name (Python's hash is salted; polars' is
    not stable across versions)."""
    uniques = names.drop_nulls().unique().to_list()
    mapping = {n: hashlib.blake2b(n.encode(), digest_size=6).hexdigest() for n in uniques}
    return names.replace_strict(mapping, default=None, return_dtype=pl.String)


def normalize_partiful_csv(
    frame: pl.DataFrame, event: dict[str, Any], origin: str
) -> NormalizedBatch:
    """One event's Partiful export (see module docstring for ids and plus-ones)."""
    event_row = partiful_event(event)
    event_sid = event_row["source_event_id"]
    columns = [c for c in frame.columns if c != RECORD_INDEX]
    missing = missing_columns(columns, PARTIFUL_CSV_REQUIRED)
    if missing:
        return all_quarantined(
            frame,
            source=Source.PARTIFUL.value,
            origin=origin,
            reason=f"wrong column set: missing {', '.join(missing)}",
            events=[event_row],
        )

    def c(*names: str) -> pl.Expr:
        return col_or_null(frame, find_column(columns, *names))

    answers = detect_answer_columns(columns, PARTIFUL_CSV_COLUMNS)

    def a(field: str) -> pl.Expr:
        return col_or_null(frame, answers.get(field))

    count_col = find_column(columns, *_COUNT_COLUMNS)
    raw_status = c("Status", "RSVP Status", "RSVP")
    df = with_index(frame).with_columns(
        c("Name").alias("_full"),
        c("Is Plus One Of").alias("_host_name"),
        raw_status.alias("_raw_status"),
        status_expr(raw_status, PARTIFUL_STATUS).alias("_status"),
        c("RSVP date", "RSVP Date", "Date").alias("_observed"),
        a("company").alias("_company"),
        a("job_title").alias("_job"),
        *[a(f"handle_{p}").alias(f"_h_{p}") for p in _HANDLES],
    )
    is_host = raw_status.str.to_lowercase().str.replace_all(r"[-_]", " ").is_in(HOST_STATUSES)
    df = df.with_columns(
        pl.when(pl.col("_host_name").is_not_null())
        .then(pl.lit(Role.PLUS_ONE.value))
        .when(is_host)
        .then(pl.lit(Role.HOST.value))
        .otherwise(pl.lit(Role.GUEST.value))
        .alias("_role"),
        pl.lit(0, dtype=pl.Int64).alias("_copy"),
        pl.lit(False).alias("_synthetic"),
    )
    extra_inputs = 0
    if count_col is not None:
        count_text = clean(count_col)
        count = count_text.str.replace(r"^\+", "").cast(pl.Int64, strict=False)
        df = df.with_columns(
            pl.when(count_text.is_not_null() & (count.is_null() | (count < 0) | (count > 50)))
            .then(pl.lit(f"unparseable plus-one count in {count_col!r}"))
            .alias("_pre_reason"),
            pl.when(count > 0).then(count).otherwise(0).fill_null(0).clip(0, 50).alias("_n"),
        )
        extra = df.filter((pl.col("_n") > 0) & pl.col("_pre_reason").is_null())
        if extra.height:
            extra = (
                extra.with_columns(pl.int_ranges(1, pl.col("_n") + 1).alias("_copy"))
                .explode("_copy")
                .with_columns(
                    pl.col("_full").alias("_host_name"),
                    pl.when(pl.col("_full").is_null())
                    .then(pl.lit("host row has no Name"))
                    .alias("_pre_reason"),
                    (
                        pl.col("_full") + pl.lit("'s plus-one ") + pl.col("_copy").cast(pl.String)
                    ).alias("_full"),
                    pl.lit(Role.PLUS_ONE.value).alias("_role"),
                    pl.lit(True).alias("_synthetic"),
                    pl.lit(None, dtype=pl.String).alias("_company"),
                    pl.lit(None, dtype=pl.String).alias("_job"),
                    *[pl.lit(None, dtype=pl.String).alias(f"_h_{p}") for p in _HANDLES],
                )
            )
            extra_inputs = extra.height
            df = pl.concat([df, extra.select(df.columns)]).sort("_idx", "_copy")
    # Stable ids: hash of the normalized name + its occurrence number in the file.
    df = df.with_columns(name_key(pl.col("_full")).alias("_nkey"))
    df = df.with_columns(
        _name_hashes(df["_nkey"]).alias("_h"),
        (pl.col("_idx").cum_count().over("_nkey")).alias("_occ"),
    )
    df = df.with_columns(
        pl.when(pl.col("_nkey").is_not_null() & (pl.col("_nkey") != ""))
        .then(pl.lit(f"{event_sid}:") + pl.col("_h") + pl.lit("-") + pl.col("_occ").cast(pl.String))
        .alias("_id")
    )
    # Plus-one -> host: the first non-plus-one row of that normalized name.
    hosts = (
        df.filter(pl.col("_id").is_not_null())
        .sort(pl.col("_role") == Role.PLUS_ONE.value, "_idx", "_copy")
        .group_by("_nkey", maintain_order=True)
        .agg((pl.lit(f"{Source.PARTIFUL}:") + pl.col("_id").first()).alias("_plus_one_of"))
        .rename({"_nkey": "_host_key"})
    )
    df = (
        df.with_columns(name_key(pl.col("_host_name")).alias("_host_key"))
        .join(hosts, on="_host_key", how="left")
        .sort("_idx", "_copy")
    )
    staging = df.select(
        "_idx",
        *columns,
        "_id",
        "_full",
        "_company",
        "_job",
        *[f"_h_{p}" for p in _HANDLES],
        "_observed",
        "_raw_status",
        "_status",
        "_role",
        "_plus_one_of",
        "_synthetic",
        pl.lit(event_row["event_id"]).alias("_event_id"),
        (pl.col("_pre_reason") if "_pre_reason" in df.columns else pl.lit(None, pl.String)).alias(
            "_pre_reason"
        ),
    )
    batch = finish(
        staging,
        source=Source.PARTIFUL.value,
        origin=origin,
        events=[event_row],
        raw_cols=columns,
        id_label="Name",
        status_label="Status",
        tz=event_row["timezone"],
        input_records=frame.height + extra_inputs,
    )
    # A host that did not make it into the observations cannot be linked to.
    kept = batch.observations["observation_id"]
    batch.attendance = batch.attendance.with_columns(
        pl.when(pl.col("plus_one_of").is_in(kept.implode()))
        .then(pl.col("plus_one_of"))
        .alias("plus_one_of")
    )
    return batch


_HANDLES = ("instagram", "linkedin", "twitter", "github", "website")
