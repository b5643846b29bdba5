"""Partiful guest-list CSV exports (the host's "Export CSV"); Partiful has no API.

Columns: `Name, Status, RSVP date, Invited By, Is Plus One Of`, then one column per
questionnaire question (labels asking for Instagram, LinkedIn, … fill those fields).
Exports carry no email or phone: Partiful people are matched by name, plus-one links and
co-attendance. `RSVP date` has no zone; the event's zone applies.

Event metadata does not come in the file. Convention (implemented by
`ingest.exports.load_exports`): a side file `partiful/events.json` next to the CSVs
holds a list of `{id, title, start, end?, timezone, url, city, file?}`; a CSV belongs to
the entry whose `file` (or, without `file`, whose `id`) equals the CSV's file stem.
Without an entry, the stem is read as `<slug>_<YYYY-MM-DD>`: id = stem, title = the slug
in words, start = that date at midnight UTC, timezone UTC.

Observation ids are stable across reruns of the same file:
`partiful:<event id>:<h>-<n>`, where `h` is a BLAKE2b digest of 6 bytes (12 hex digits)
of the normalized name (NFKC, lower case, single spaces) and `n` counts that name's
occurrences in the file from 1. Reordering rows of the same name swaps their ids;
adding, removing or reordering other rows changes nothing.

Statuses: Going/Approved -> going, Maybe -> maybe, Can't Go/Declined -> declined,
Invited/Sent -> invited, Pending/Requested -> registered, Waitlist -> waitlisted;
Host/Cohost rows get role `host` (status going). Anything else is quarantined as
"unknown Status".

Plus-ones: newer exports give each plus-one its own row naming its host in
`Is Plus One Of`; the row gets role `plus_one` and `plus_one_of` = the host row's
observation id, resolved by normalized name within the file (first non-plus-one row of
that name). A host name that matches no normalized row leaves `plus_one_of` null; the
plus-one is still kept. Older exports have a count column (`+1s`, `Plus Ones`) instead:
for a count N the host row yields N extra observations named "<host name>'s plus-one k"
(role `plus_one`, linked to the host, same status and RSVP date). Each counts as an input
record (so a file's input = rows + declared plus-ones) and shares the host row's record
index and its status and date (an unreadable status or date is a field issue on each).
An unreadable count declares no plus-ones and is listed in `field_issues` (field
`plus_one_count`); the host row is kept. A plus-one whose host row is quarantined keeps
`plus_one_of` null.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from domain.model import FIELD_ISSUES_SCHEMA, Role, Source, Status, conform
from domain.normalize.batch import NormalizedBatch
from domain.normalize.columns import clean_frame
from domain.normalize.common import (
    RECORD_INDEX,
    col_or_null,
    detect_answer_columns,
    find_column,
    finish,
    norm_key,
    split_full_names,
    with_index,
    wrong_column_set,
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


def normalized_name(name: str) -> str:
    """NFKC, lower case, single spaces: "PRIYA  raman" and "Priya Raman" are one name."""
    return " ".join(unicodedata.normalize("NFKC", name).lower().split())


def normalized_names(names: pl.Series) -> pl.Series:
    """`normalized_name` of each value. ASCII text (NFKC leaves it alone) is done in
    polars; other text goes through `normalized_name`, once per distinct value."""
    names = names.cast(pl.String)
    frame = pl.DataFrame({"n": names})
    # The class below is exactly the ASCII characters Python's `str.split()` splits on.
    ascii_only = pl.col("n").str.len_bytes() == pl.col("n").str.len_chars()
    # Only runs other than one plain space need collapsing (most names have none).
    fast = (
        pl.col("n")
        .str.to_lowercase()
        .str.replace_all(
            r"[\t\n\x0b\x0c\r\x1c-\x1f][\t\n\x0b\x0c\r\x1c-\x1f ]*| [\t\n\x0b\x0c\r\x1c-\x1f ]+",
            " ",
        )
        .str.strip_chars(" ")
    )
    out = frame.select(pl.when(ascii_only).then(fast).alias("k"), ascii_only.alias("a"))
    slow = out["a"].not_() & names.is_not_null()
    if slow.any():
        rest = names.filter(slow)
        distinct = rest.unique()
        done = pl.Series([normalized_name(v) for v in distinct.to_list()], dtype=pl.String)
        mapped = rest.replace_strict(distinct, done, return_dtype=pl.String)
        return out["k"].scatter(slow.arg_true(), mapped).rename(names.name)
    return out["k"].rename(names.name)


def _key_hashes(values: pl.Series) -> pl.Series:
    """polars' hash of each value's normalized name (null for blank), computed once per
    distinct value."""
    raw_h = values.hash()
    first = values.is_not_null() & raw_h.is_first_distinct()
    distinct = values.filter(first)
    keys = normalized_names(distinct)
    key_h = pl.select(
        pl.when(pl.lit(keys).is_not_null() & (pl.lit(keys) != "")).then(pl.lit(keys).hash())
    ).to_series()
    out = raw_h.replace_strict(raw_h.filter(first), key_h, default=None)
    return pl.select(pl.when(pl.lit(values).is_not_null()).then(pl.lit(out))).to_series()


def _occurrences(keys: pl.Series) -> pl.Series:
    """1, 2, 3, … for each row's key in row order (a stable sort instead of a grouped
    count: one pass over integers)."""
    n = keys.len()
    if n == 0:
        return pl.Series("occ", [], dtype=pl.Int64)
    values = keys.fill_null(0).to_numpy()
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    start = np.empty(n, dtype=bool)
    start[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=start[1:])
    pos = np.arange(n, dtype=np.int64)
    occ = np.empty(n, dtype=np.int64)
    occ[order] = pos - np.maximum.accumulate(np.where(start, pos, 0)) + 1
    return pl.Series("occ", occ)


def name_hash(key: str) -> str:
    """Stable short hash of a normalized name (Python's `hash` is salted per process and
    polars' hash is not stable across versions)."""
    return hashlib.blake2b(key.encode(), digest_size=6).hexdigest()


def normalize_partiful_csv(
    frame: pl.DataFrame, event: dict[str, Any], origin: str
) -> NormalizedBatch:
    """One event's Partiful export (see module docstring for ids and plus-ones)."""
    event_row = partiful_event(event)
    event_sid = event_row["source_event_id"]
    columns = [c for c in frame.columns if c != RECORD_INDEX]
    rejected = wrong_column_set(
        frame,
        PARTIFUL_CSV_REQUIRED,
        source=Source.PARTIFUL.value,
        origin=origin,
        events=[event_row],
    )
    if rejected is not None:
        return rejected

    def c(*names: str) -> pl.Expr:
        return col_or_null(frame, find_column(columns, *names))

    answers = detect_answer_columns(columns, PARTIFUL_CSV_COLUMNS)

    def a(field: str) -> pl.Expr:
        return col_or_null(frame, answers.get(field))

    count_col = find_column(columns, *_COUNT_COLUMNS)
    raw_status = c("Status", "RSVP Status", "RSVP")
    df = with_index(frame).select(
        "_idx",
        "_pos",
        c("Name").alias("_full"),
        c("Is Plus One Of").alias("_host_name"),
        raw_status.alias("_raw_status"),
        c("RSVP date", "RSVP Date", "Date").alias("_observed"),
        a("company").alias("_company"),
        a("job_title").alias("_job"),
        *[a(f"handle_{p}").alias(f"_h_{p}") for p in _HANDLES],
        (pl.col(count_col) if count_col else pl.lit(None, dtype=pl.String)).alias("_count"),
    )
    # Trimmed and blank-as-null, each column only as far as its values need it.
    df = df.with_columns(clean_frame(df, ["_full", "_host_name", "_count"]))
    statuses = df["_raw_status"].drop_nulls().unique().to_list()
    host_statuses = [v for v in statuses if norm_key(v) in HOST_STATUSES]
    df = df.with_columns(
        pl.when(pl.col("_host_name").is_not_null())
        .then(pl.lit(Role.PLUS_ONE.value))
        .when(pl.col("_raw_status").is_in(host_statuses))
        .then(pl.lit(Role.HOST.value))
        .otherwise(pl.lit(Role.GUEST.value))
        .alias("_role"),
        pl.lit(0, dtype=pl.Int64).alias("_copy"),
        pl.lit(False).alias("_synthetic"),
        pl.lit(None, dtype=pl.String).alias("_pre_reason"),
    )
    extra_inputs = 0
    bad_counts = pl.DataFrame(schema={"_idx": pl.Int64, "_count": pl.String})
    if count_col is not None:
        count = pl.col("_count").str.replace(r"^\+", "").cast(pl.Int64, strict=False)
        unreadable = pl.col("_count").is_not_null() & (count.is_null() | (count < 0) | (count > 50))
        df = df.with_columns(
            unreadable.alias("_bad_count"),
            pl.when(count > 0).then(count).otherwise(0).fill_null(0).clip(0, 50).alias("_n"),
        )
        bad_counts = df.filter(pl.col("_bad_count")).select("_idx", "_count")
        df = df.with_columns(pl.when(~pl.col("_bad_count")).then(pl.col("_n")).otherwise(0))
        extra = df.filter(pl.col("_n") > 0)
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
    # Stable ids: hash of the normalized name + its occurrence number in the file. Names
    # repeat, so everything derived from a name (its key, digest and first/last split) is
    # worked out once per distinct name; rows find theirs through polars' hash of the raw
    # name, and group by the hash of the key (integers: far cheaper than strings). Those
    # hashes only group within this call; the ids use the stable BLAKE2b digest.
    full = df["_full"]
    raw_h = full.hash()
    first = full.is_not_null() & raw_h.is_first_distinct()
    names = full.filter(first)
    keys = normalized_names(names)
    real_key = keys.is_not_null() & (keys != "")
    key_h = pl.select(pl.when(pl.lit(real_key)).then(pl.lit(keys).hash())).to_series()
    digests = pl.DataFrame({"_kh": key_h, "_key": keys}).filter(real_key).unique("_kh")
    with ThreadPoolExecutor(max_workers=2) as pool:
        hashed = pool.submit(
            lambda: pl.Series(
                [f"{event_sid}:{name_hash(k)}-" for k in digests["_key"].to_list()],
                dtype=pl.String,
            )
        )
        split = pool.submit(split_full_names, names)
        at = raw_h.replace_strict(
            raw_h.filter(first), pl.int_range(names.len(), eager=True), default=None
        )
        at = pl.select(pl.when(pl.lit(full).is_not_null()).then(pl.lit(at))).to_series()
        row_key = key_h.gather(at).rename("_kh")
        occ = _occurrences(row_key)
        host_key = _key_hashes(df["_host_name"])
        given, surname = split.result()
        prefix = key_h.replace_strict(digests["_kh"], hashed.result(), default=None)
    df = df.with_columns(
        given.gather(at).alias("_first"),
        surname.gather(at).alias("_last"),
        row_key,
        host_key.alias("_host_kh"),
        pl.concat_str(prefix.gather(at), pl.lit(occ).cast(pl.String)).alias("_id"),
    )
    # Plus-one -> host: the first non-plus-one row of that normalized name.
    hosts = (
        df.lazy()
        .filter((pl.col("_role") != Role.PLUS_ONE.value) & pl.col("_kh").is_not_null())
        .filter(pl.col("_kh").is_first_distinct())
        .select("_kh", "_id")
        .collect()
    )
    df = df.with_columns(
        pl.col("_host_kh")
        .replace_strict(hosts["_kh"], f"{Source.PARTIFUL}:" + hosts["_id"], default=None)
        .alias("_plus_one_of")
    )
    staging = df.select(
        "_idx",
        "_pos",
        "_id",
        "_full",
        "_first",
        "_last",
        "_company",
        "_job",
        *[f"_h_{p}" for p in _HANDLES],
        "_observed",
        "_raw_status",
        "_role",
        "_plus_one_of",
        "_synthetic",
        pl.lit(event_row["event_id"]).alias("_event_id"),
        "_pre_reason",
    )
    batch = finish(
        staging,
        source=Source.PARTIFUL.value,
        origin=origin,
        events=[event_row],
        raw_frame=frame,
        raw_cols=columns,
        id_label="Name",
        status_map=PARTIFUL_STATUS,
        already_clean=("_id", "_full", "_first", "_last"),
        dedupe=False,  # ids are unique by construction (name + occurrence)
        status_label="Status",
        tz=event_row["timezone"],
        input_records=frame.height + extra_inputs,
    )
    if bad_counts.height:
        batch.field_issues = _count_issues(batch, df, bad_counts, count_col or "", origin)
    return batch


def _count_issues(
    batch: NormalizedBatch, df: pl.DataFrame, bad: pl.DataFrame, count_col: str, origin: str
) -> pl.DataFrame:
    """Unreadable plus-one counts of kept host rows: the host stays, no plus-ones declared."""
    ids = df.filter(pl.col("_copy") == 0).select("_idx", "_id")
    rows = bad.join(ids, on="_idx").select(
        pl.lit(Source.PARTIFUL.value).alias("source"),
        pl.lit(origin).alias("origin"),
        pl.col("_idx").alias("record_index"),
        (pl.lit(f"{Source.PARTIFUL}:") + pl.col("_id")).alias("observation_id"),
        pl.lit("plus_one_count").alias("field"),
        pl.col("_count").alias("raw"),
        pl.lit(f"unparseable plus-one count in {count_col!r}").alias("reason"),
    )
    kept = batch.observations["observation_id"].implode()
    rows = conform(rows.filter(pl.col("observation_id").is_in(kept)), FIELD_ISSUES_SCHEMA)
    return pl.concat([batch.field_issues, rows]).sort("record_index", "field")


_HANDLES = ("instagram", "linkedin", "twitter", "github", "website")
