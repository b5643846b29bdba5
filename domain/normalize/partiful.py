"""Partiful guest-list CSV exports (the host's "Export CSV"); Partiful has no API.

Columns: `Name, Status, RSVP date, Invited By, Is Plus One Of`, then one column per
questionnaire question (labels asking for Instagram, LinkedIn, … fill those fields).
Exports carry no email or phone: Partiful people are matched by name, plus-one links and
co-attendance. `RSVP date` has no zone; the event's zone applies.

Event metadata does not come in the file. Convention (implemented by
`ingest.exports.load_exports`): a side file `partiful/events.json` next to the CSVs
holds a list of `{id, title, start, end?, timezone, url, city, file?}`; a CSV belongs to
the entry whose `file` (or, without `file`, whose `id`) equals the CSV's file stem; an
entry without `id` takes its `file` as id.
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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from domain.model import FIELD_ISSUES_SCHEMA, HANDLE_PLATFORMS, Role, Source, Status, conform
from domain.normalize.batch import NormalizedBatch
from domain.normalize.columns import clean_frame
from domain.normalize.common import (
    NOTES,
    RECORD_INDEX,
    FinishConfig,
    col_or_null,
    detect_answer_columns,
    find_column,
    finish,
    norm_key,
    split_full_names,
    with_index,
    wrong_column_set,
)
from domain.normalize.fields import event_zone, parse_time_or_none, text_or_none

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
    source_id = text_or_none(meta.get("id")) or text_or_none(meta.get("file")) or "unnamed"
    tz, zone_note = event_zone(meta.get("timezone"))
    event_id = f"{Source.PARTIFUL}:{source_id}"
    return {
        "event_id": event_id,
        "source": Source.PARTIFUL.value,
        "source_event_id": source_id,
        "name": text_or_none(meta.get("title")) or text_or_none(meta.get("name")),
        "starts_at": parse_time_or_none(meta.get("start"), tz),
        "ends_at": parse_time_or_none(meta.get("end"), tz),
        "timezone": tz,
        "url": text_or_none(meta.get("url")),
        "city": text_or_none(meta.get("city")),
        NOTES: [f"event {event_id}: {zone_note}"] if zone_note else [],
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
    """`normalized_name` of each value. Text of ASCII and the Latin-1 letters (À-ÿ) is
    done in polars: NFKC leaves those characters alone, their lower case is the same in
    Python and Rust, and none of them is a space. Other text goes through
    `normalized_name` (callers pass distinct names)."""
    names = names.cast(pl.String)
    text = pl.lit(names)
    ascii_only = text.str.len_bytes() == text.str.len_chars()
    flags = pl.select(
        (ascii_only | text.str.contains(r"^[\x00-\x7f\u00c0-\u00ff]*$")).alias("simple"),
        # `_SPACE_RUNS` are exactly the ASCII characters Python's `str.split()` splits
        # on, so only those need collapsing.
        (
            text.str.contains_any(_SPACE_RUNS) | text.str.starts_with(" ") | text.str.ends_with(" ")
        ).alias("spaced"),
    )
    out = names.str.to_lowercase()
    runs = (flags["simple"] & flags["spaced"]).arg_true()
    if runs.len():
        collapsed = out.gather(runs).str.replace_all(r"[ \t\n\x0b\x0c\r\x1c-\x1f]+", " ")
        out = out.scatter(runs, collapsed.str.strip_chars(" "))
    slow = (~flags["simple"] & names.is_not_null()).arg_true()
    if slow.len():
        done = [normalized_name(v) for v in names.gather(slow).to_list()]
        out = out.scatter(slow, pl.Series(done, dtype=pl.String))
    return out.rename(names.name)


_SPACE_RUNS = ["  ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f"]
"""Two spaces, or one of the other ASCII characters `str.split()` splits on."""


def name_hash(key: str) -> str:
    """Stable short hash of a normalized name (Python's `hash` is salted per process and
    polars' hash is not stable across versions)."""
    return hashlib.blake2b(key.encode(), digest_size=6).hexdigest()


@dataclass(frozen=True)
class _Layout:
    """Which column of the file feeds which staging field."""

    name: str | None
    host: str | None
    status: str | None
    rsvp_date: str | None
    count: str | None
    answers: dict[str, str]

    @staticmethod
    def of(columns: list[str]) -> _Layout:
        return _Layout(
            name=find_column(columns, "Name"),
            host=find_column(columns, "Is Plus One Of"),
            status=find_column(columns, "Status", "RSVP Status", "RSVP"),
            rsvp_date=find_column(columns, "RSVP date", "RSVP Date", "Date"),
            count=find_column(columns, *_COUNT_COLUMNS),
            answers=detect_answer_columns(columns, PARTIFUL_CSV_COLUMNS),
        )


def normalize_partiful_csv(
    frame: pl.DataFrame, event: dict[str, Any], origin: str
) -> NormalizedBatch:
    """One event's Partiful export (see module docstring for ids and plus-ones)."""
    event_row = partiful_event(event)
    rejected = wrong_column_set(
        frame,
        PARTIFUL_CSV_REQUIRED,
        source=Source.PARTIFUL.value,
        origin=origin,
        events=[event_row],
    )
    if rejected is not None:
        return rejected
    columns = [c for c in frame.columns if c != RECORD_INDEX]
    layout = _Layout.of(columns)
    rows = _file_rows(frame, layout)
    bad_counts = pl.DataFrame(schema={"_idx": pl.Int64, "_count": pl.String})
    if layout.count is not None:
        rows, bad_counts = _with_declared_plus_ones(rows)
    named: dict[str, pl.DataFrame] = {}

    def names_and_ids() -> list[pl.Series]:
        named["rows"] = _with_ids_and_links(rows, event_row)
        return named["rows"].select(_LATE_COLUMNS).get_columns()

    config = FinishConfig(
        source=Source.PARTIFUL.value,
        origin=origin,
        events=[event_row],
        raw_frame=frame,
        raw_cols=columns,
        id_label="Name",
        status_label="Status",
        status_map=PARTIFUL_STATUS,
        already_clean=("_id", "_full", "_first", "_last"),
        dedupe=False,  # ids are unique by construction (name + occurrence)
        tz=event_row["timezone"],
        input_records=rows.height,
    )
    # Names and ids are the long part: the column work that does not read them runs
    # meanwhile.
    staging = rows.select(c for c in _STAGING_COLUMNS if c not in _LATE_COLUMNS)
    batch = finish(staging, config, late=names_and_ids)
    if bad_counts.height:
        batch.field_issues = _count_issues(
            batch, named["rows"], bad_counts, layout.count or "", origin
        )
    return batch


_LATE_COLUMNS = [
    "_id",
    "_observation_id",
    "_event_id",
    "_full",
    "_first",
    "_last",
    "_role",
    "_plus_one_of",
]
_STAGING_COLUMNS = [
    "_idx",
    "_pos",
    "_id",
    "_event_id",
    "_full",
    "_first",
    "_last",
    "_company",
    "_job",
    *[f"_h_{p}" for p in HANDLE_PLATFORMS],
    "_observed",
    "_raw_status",
    "_role",
    "_plus_one_of",
    "_synthetic",
    "_pre_reason",
]


def _file_rows(frame: pl.DataFrame, layout: _Layout) -> pl.DataFrame:
    """One row per file row, raw text under staging names. Names and host names stay
    raw here: `_with_ids_and_links` cleans them once per distinct value."""

    def answer(field: str) -> pl.Expr:
        return col_or_null(frame, layout.answers.get(field))

    return (
        with_index(frame)
        .select(
            "_idx",
            "_pos",
            col_or_null(frame, layout.name).alias("_full"),
            col_or_null(frame, layout.host).alias("_host_name"),
            col_or_null(frame, layout.status).alias("_raw_status"),
            col_or_null(frame, layout.rsvp_date).alias("_observed"),
            answer("company").alias("_company"),
            answer("job_title").alias("_job"),
            *[answer(f"handle_{p}").alias(f"_h_{p}") for p in HANDLE_PLATFORMS],
            col_or_null(frame, layout.count).alias("_count"),
            pl.lit(0, dtype=pl.Int64).alias("_copy"),
            pl.lit(False).alias("_synthetic"),
            pl.lit(None, dtype=pl.String).alias("_pre_reason"),
        )
        .rechunk()
    )


def _with_declared_plus_ones(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Older exports' plus-one counts: N synthetic rows after each host row (see module
    docstring); also the host rows whose count cannot be read (`_idx`, `_count`)."""
    rows = rows.with_columns(clean_frame(rows, ["_full", "_host_name", "_count"]))
    count = pl.col("_count").str.replace(r"^\+", "").cast(pl.Int64, strict=False)
    unreadable = pl.col("_count").is_not_null() & (count.is_null() | (count < 0) | (count > 50))
    rows = rows.with_columns(
        unreadable.alias("_bad_count"),
        pl.when(unreadable | (count <= 0)).then(0).otherwise(count).fill_null(0).alias("_n"),
    )
    bad_counts = rows.filter(pl.col("_bad_count")).select("_idx", "_count")
    hosts = rows.filter(pl.col("_n") > 0)
    if hosts.height == 0:
        return rows, bad_counts
    blanked = ("_company", "_job", *[f"_h_{p}" for p in HANDLE_PLATFORMS])
    synthetic = (
        hosts.with_columns(pl.int_ranges(1, pl.col("_n") + 1).alias("_copy"))
        .explode("_copy")
        .with_columns(
            pl.col("_full").alias("_host_name"),
            pl.when(pl.col("_full").is_null())
            .then(pl.lit("host row has no Name"))
            .alias("_pre_reason"),
            (pl.col("_full") + "'s plus-one " + pl.col("_copy").cast(pl.String)).alias("_full"),
            pl.lit(True).alias("_synthetic"),
            *[pl.lit(None, dtype=pl.String).alias(c) for c in blanked],
        )
    )
    expanded = pl.concat([rows, synthetic.select(rows.columns)]).sort("_idx", "_copy")
    return expanded, bad_counts


@dataclass(frozen=True)
class _NameTable:
    """Every distinct raw name of the file (guest names and host names) with what is
    derived from it, worked out once per name: names repeat far more than rows do.

    `names` holds `clean`, `key` (dense number of the normalized name, null when blank,
    so rows group by integers), `given` and `surname`; `prefixes` will give each key's
    id prefix (`_id_prefixes`) by number."""

    names: pl.DataFrame
    prefixes: Future[pl.Series]


def _name_rows(full: pl.Series, host: pl.Series) -> tuple[pl.Series, pl.Series, pl.Series]:
    """(each guest's row in the name table, each host name's row, the table: the
    distinct raw names). Host names are mostly empty: only given ones are numbered."""
    hosted = pl.select(pl.lit(host).str.len_bytes() > 0).to_series().fill_null(False)
    hosted_rows = hosted.arg_true()
    numbers, raw = number_distinct(pl.concat([full, host.gather(hosted_rows)], rechunk=True))
    host_at = pl.Series(dtype=pl.UInt32).extend_constant(None, host.len())
    host_at = host_at.scatter(hosted_rows, numbers.slice(full.len()))
    return numbers.head(full.len()), host_at, raw


def _name_table(raw: pl.Series, pool: ThreadPoolExecutor, event_sid: str) -> _NameTable:
    """The name table of the distinct raw names; the id digests (the longest part, in
    Python) start as soon as the normalized names are known."""
    frame = raw.to_frame("n")
    cleaning = clean_frame(frame, ["n"])
    cleaned = frame.select(cleaning).to_series() if cleaning else raw
    split = pool.submit(split_full_names, cleaned)
    keys = normalized_names(cleaned)
    keys = pl.select(pl.when(pl.lit(keys) != "").then(pl.lit(keys))).to_series()
    numbers, distinct_keys = number_distinct(keys)
    prefixes = pool.submit(_id_prefixes, distinct_keys, event_sid)
    given, surname = split.result()
    names = pl.DataFrame(
        {"clean": cleaned, "key": numbers, "given": given, "surname": surname}
    ).rechunk()
    return _NameTable(names=names, prefixes=prefixes)


def number_distinct(values: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(number of each value, 0, 1, … per distinct value, null for null; the distinct
    values by number).

    Values are grouped by hash, and each value's first row numbers it without a lookup
    (on a list of unique names that is every row). Equal hashes of different text are
    caught by comparing every value with its number's text; then the text itself is
    looked up."""
    present = values.is_not_null().arg_true()
    text = values.gather(present)
    hashes = text.hash()
    firsts = hashes.arg_unique()
    distinct = text.gather(firsts)
    numbers = pl.int_range(firsts.len(), eager=True, dtype=pl.UInt32)
    found = pl.Series(dtype=pl.UInt32).extend_constant(None, text.len()).scatter(firsts, numbers)
    rest = found.is_null().arg_true()
    if rest.len():
        looked_up = hashes.gather(rest).replace_strict(hashes.gather(firsts), numbers)
        found = found.scatter(rest, looked_up)
    if not distinct.gather(found).equals(text):  # a hash collision: look up the text
        distinct = text.unique(maintain_order=True)
        numbers = pl.int_range(distinct.len(), eager=True, dtype=pl.UInt32)
        found = text.replace_strict(distinct, numbers)
    out = pl.Series(dtype=pl.UInt32).extend_constant(None, values.len()).scatter(present, found)
    return out, distinct


def _id_prefixes(keys: pl.Series, event_sid: str) -> pl.Series:
    """`<event id>:<digest>-` per normalized name (the id without its occurrence): the
    digests as `name_hash` makes them, hex-encoded and joined in polars."""
    digest = hashlib.blake2b
    raw = [digest(k, digest_size=6).digest() for k in keys.cast(pl.Binary).to_list()]
    hexed = pl.lit(pl.Series(raw, dtype=pl.Binary)).bin.encode("hex")
    return pl.select(pl.concat_str(pl.lit(f"{event_sid}:"), hexed, pl.lit("-"))).to_series()


def occurrences(keys: pl.Series) -> pl.Series:
    """1, 2, … for each row among the rows of its key, in row order (null keys: null).

    Sorting `key * 2**32 + row` puts each key's rows together in row order (the values
    are distinct, so the fast unstable sort is enough); a row's number is its distance
    from the start of its run."""
    n = keys.len()
    if keys.drop_nulls().n_unique() == n - keys.null_count():  # no name repeats
        return pl.select(pl.when(pl.lit(keys).is_not_null()).then(pl.lit(1, pl.UInt32))).to_series()
    packed = pl.lit(keys).cast(pl.UInt64) * _ROW_SPAN + pl.int_range(n, dtype=pl.UInt64)
    ordered = pl.select(packed).to_series().drop_nulls().sort().to_frame("s")
    at = pl.int_range(pl.len(), dtype=pl.UInt32)
    run_start = pl.when((pl.col("s") // _ROW_SPAN).diff().fill_null(1) != 0).then(at).otherwise(0)
    numbered = ordered.select(
        (pl.col("s") % _ROW_SPAN).cast(pl.UInt32).alias("row"),
        (at - run_start.cum_max() + 1).alias("number"),
    )
    out = pl.Series(dtype=pl.UInt32).extend_constant(None, n)
    return out.scatter(numbered["row"], numbered["number"])


_ROW_SPAN = 1 << 32
"""Row numbers fit in 32 bits (a file of 4 billion rows is far beyond any export)."""


def _role(is_plus_one: pl.Series, statuses: pl.Series) -> pl.Expr:
    """Plus-one when the row names a host (or was made up from a count), host when its
    status says so, else guest."""
    distinct = statuses.drop_nulls().unique().to_list()
    host_statuses = [v for v in distinct if norm_key(v) in HOST_STATUSES]
    return (
        pl.when(pl.lit(is_plus_one) | pl.col("_synthetic"))
        .then(pl.lit(Role.PLUS_ONE.value))
        .when(pl.col("_raw_status").is_in(host_statuses))
        .then(pl.lit(Role.HOST.value))
        .otherwise(pl.lit(Role.GUEST.value))
    )


def _with_names(
    rows: pl.DataFrame, table: _NameTable, at: pl.Series, host_at: pl.Series
) -> pl.DataFrame:
    """Cleaned name, first/last split, role, name key and host name key of each row."""
    names = table.names
    if names["clean"].null_count():
        is_plus_one = names["clean"].is_not_null().gather(host_at).fill_null(False)
    else:  # no blank name in the file: naming a host is having a host name
        is_plus_one = host_at.is_not_null()
    return rows.with_columns(
        names["clean"].gather(at).alias("_full"),
        names["given"].gather(at).alias("_first"),
        names["surname"].gather(at).alias("_last"),
        names["key"].gather(host_at).alias("_host_key"),
        _role(is_plus_one, rows["_raw_status"]).alias("_role"),
    )


def _with_ids_and_links(rows: pl.DataFrame, event_row: dict[str, Any]) -> pl.DataFrame:
    """Names, role, stable ids (normalized name + occurrence number) and plus-one ->
    host links (see module docstring).

    Finding each row's name in the table, building the table, numbering occurrences and
    the rows' other name columns are independent, and the digests are Python work: they
    run side by side (polars releases the GIL)."""
    at, host_at, raw = _name_rows(rows["_full"], rows["_host_name"])
    with ThreadPoolExecutor(max_workers=4) as pool:
        table = _name_table(raw, pool, event_row["source_event_id"])
        keys = table.names["key"].gather(at)
        occurrence = pool.submit(occurrences, keys)
        rows = _with_names(rows, table, at, host_at)
        rows = rows.with_columns(keys.alias("_key"), occurrence.result().alias("_occ"))
        prefix = table.prefixes.result()
        links = pool.submit(_host_links, rows, prefix)
        # The observation id is made once and the record id read out of it (a slice
        # shares its text). Null where the key is null: so is the occurrence number.
        source = f"{Source.PARTIFUL}:"
        named = pl.select(pl.lit(source) + pl.lit(prefix)).to_series()
        observation_id = pl.concat_str(pl.lit(named).gather(pl.col("_key")), _as_text(rows["_occ"]))
        ids = rows.select(observation_id.alias("_observation_id")).to_series()
        return rows.with_columns(
            pl.lit(event_row["event_id"]).alias("_event_id"),
            ids,
            ids.str.slice(len(source)).alias("_id"),
            links.result().alias("_plus_one_of"),
        )


def _as_text(numbers: pl.Series) -> pl.Expr:
    """Small non-negative integers as text, looked up rather than formatted (occurrence
    numbers rarely pass a few dozen)."""
    top = numbers.max()
    if not isinstance(top, int) or top > _LOOKUP_NUMBERS:
        return pl.lit(numbers).cast(pl.String)
    return pl.lit(pl.Series([str(i) for i in range(top + 1)])).gather(pl.lit(numbers))


_LOOKUP_NUMBERS = 10_000


def _host_links(rows: pl.DataFrame, prefix: pl.Series) -> pl.Series:
    """Observation id of each plus-one's host: the first non-plus-one row whose
    normalized name is the host name's (null when there is none). Built only for the
    rows that name a host."""
    # A key's first non-plus-one row in row order has its lowest occurrence number.
    hosts = (
        rows.lazy()
        .filter((pl.col("_role") != Role.PLUS_ONE.value) & pl.col("_key").is_not_null())
        .select("_key", "_occ")
        .filter(pl.col("_key").is_first_distinct())
        .collect()
    )
    host_occ = pl.Series(dtype=pl.UInt32).extend_constant(None, prefix.len())
    host_occ = host_occ.scatter(hosts["_key"], hosts["_occ"])
    links = pl.Series("_plus_one_of", dtype=pl.String).extend_constant(None, rows.height)
    at = rows["_host_key"].is_not_null().arg_true()
    if at.len() == 0:
        return links
    host_key = rows["_host_key"].gather(at)
    link = pl.concat_str(
        pl.lit(f"{Source.PARTIFUL}:"),
        pl.lit(prefix.gather(host_key)),
        pl.lit(host_occ.gather(host_key)).cast(pl.String),
    )
    return links.scatter(at, pl.select(link).to_series())


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
