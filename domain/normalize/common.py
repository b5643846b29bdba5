"""Vectorized building blocks every source normalizer shares.

Each source first maps its input to a *staging* frame of raw strings with the columns
below (all optional except `_idx` and `_id`), then calls `finish`, which validates,
cleans and splits the rows into observations, attendance and quarantine. Keeping the
checks in one place is what makes the quarantine reasons and the field formats the same
for every platform, and keeps the hot path in polars expressions (no per-row Python).

Staging columns:
    _idx          record index in its origin (Int64)
    _id           source record id (None -> quarantined as "missing <id label>")
    _person       platform user id
    _event_id     normalized event id ("<source>:<source event id>")
    _tz           IANA zone applied to zone-less times of this row
    _full, _first, _last, _email, _phone, _company, _job, _h_<platform>
    _observed, _registered, _checked   timestamps as text (or already UTC datetimes)
    _checked_flag bool: the source says "checked in" without a time
    _raw_status   status as the source wrote it
    _status       mapped `Status` value; null while `_raw_status` is set = unknown status
    _role, _plus_one_of
    _synthetic    bool: a record made up from a count (no first/last name split)
    _pre_reason   a reason decided before `finish` (e.g. wrong column set)
    _raw          the record as JSON text (else built from `raw_cols`)

Handles are stored canonical: lower case, without "@", URL prefix or trailing slash
(LinkedIn keeps the profile slug after "/in/"; website keeps host and path). A handle
that does not look like one becomes null rather than quarantining the record: handles are
optional evidence. Phones follow the same rule. Emails do not: a present but unparseable
email quarantines the record, because identity resolution leans on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import polars as pl

from domain.model import (
    ATTENDANCE_SCHEMA,
    EVENTS_SCHEMA,
    HANDLE_PLATFORMS,
    OBSERVATIONS_SCHEMA,
    QUARANTINE_SCHEMA,
    UTC_DATETIME,
    Role,
    Status,
    conform,
)
from domain.normalize.batch import NormalizedBatch
from domain.normalize.fields import InvalidValueError, normalize_phone, parse_timestamp

RECORD_INDEX = "__record_index"
"""Optional column an export reader adds so record indexes stay file positions."""

EMAIL_RE = r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]+)+$"
BLANK_ANSWERS = ["", "no answer provided.", "n/a", "na", "none", "null", "-"]

_AWARE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M%z")
_NAIVE_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
)
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y")


def clean(col: str | pl.Expr) -> pl.Expr:
    """Trimmed text, with the platforms' many spellings of "no answer" as null."""
    expr = pl.col(col) if isinstance(col, str) else col
    text = expr.cast(pl.String).str.strip_chars()
    return pl.when(text.str.to_lowercase().is_in(BLANK_ANSWERS)).then(None).otherwise(text)


def col_or_null(frame: pl.DataFrame, name: str | None) -> pl.Expr:
    if name is not None and name in frame.columns:
        return clean(name)
    return pl.lit(None, dtype=pl.String)


def norm_key(text: str) -> str:
    """Comparable form of a column label or status: lower case, single spaces, plain quotes."""
    text = text.replace("\u2019", "'").replace("_", " ").replace("-", " ")
    return " ".join(text.lower().split())


# ---------------------------------------------------------------- column labels

_LABEL_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("instagram", re.compile(r"\binsta(gram)?\b|\big\b")),
    ("linkedin", re.compile(r"linked ?in")),
    ("twitter", re.compile(r"twitter|\bx\b( handle| username| profile| \(|$)|^x ")),
    ("github", re.compile(r"git ?hub")),
    ("website", re.compile(r"website|personal site|portfolio|homepage|\bblog\b|^url$")),
    ("job_title", re.compile(r"job title|\btitle\b|\bposition\b|\brole\b|what do you do")),
    (
        "company",
        re.compile(r"company|organi[sz]ation|employer|where do you work|work for|\bstartup\b"),
    ),
)


def classify_label(label: str) -> str | None:
    """Which normalized field a question label asks for ("handle_x", "company", "job_title")."""
    key = norm_key(label)
    for field, pattern in _LABEL_RULES:
        if pattern.search(key):
            if field == "job_title" and "company" in key:
                return "company"
            return f"handle_{field}" if field in HANDLE_PLATFORMS else field
    return None


def detect_answer_columns(columns: Iterable[str], reserved: Iterable[str]) -> dict[str, str]:
    """Maps field -> the first non-reserved column whose label asks for it."""
    skip = {norm_key(c) for c in reserved}
    found: dict[str, str] = {}
    for col in columns:
        if norm_key(col) in skip or col == RECORD_INDEX:
            continue
        field = classify_label(col)
        if field and field not in found:
            found[field] = col
    return found


# ---------------------------------------------------------------- field cleaners


def handle_expr(platform: str, value: pl.Expr) -> pl.Expr:
    """Canonical handle (see module docstring) or null."""
    text = value.cast(pl.String).str.strip_chars().str.to_lowercase()
    text = text.str.replace(r"^https?://", "").str.replace(r"^(www\.|m\.)", "")
    if platform == "website":
        out = text.str.replace(r"[?#].*$", "").str.strip_chars_end("/")
        return pl.when(out.str.contains(r"^[^\s/]+\.[^\s/]+(/\S*)?$")).then(out)
    if platform == "linkedin":
        slug = pl.coalesce(
            text.str.extract(r"linkedin\.com/(?:in|pub)/([^/?#\s]+)", 1),
            pl.when(~text.str.contains(r"[/\s]")).then(text.str.strip_chars_start("@")),
        )
        return pl.when(slug.str.contains(r"^[\w%.-]{2,100}$")).then(slug)
    domains = {
        "instagram": r"instagram\.com",
        "twitter": r"(?:twitter|x)\.com",
        "github": r"github\.com",
    }[platform]
    pattern = {
        "instagram": r"^[a-z0-9._]{1,30}$",
        "twitter": r"^[a-z0-9_]{1,15}$",
        "github": r"^[a-z0-9-]{1,39}$",
    }[platform]
    bare = text.str.replace(rf"^{domains}/", "").str.replace(r"[/?#].*$", "")
    bare = bare.str.strip_chars_start("@").str.strip_chars()
    return pl.when(bare.str.contains(pattern)).then(bare)


_NANP_10 = r"^[2-9]\d{9}$"
_NANP_11 = r"^1[2-9]\d{9}$"


def normalize_phones(values: pl.Series, default_region: str = "US") -> pl.Series:
    """E.164 or null. North American numbers (the bulk) are done in polars; the rest go
    through `phonenumbers` once per distinct value."""
    text = values.cast(pl.String).str.strip_chars()
    frame = pl.DataFrame({"t": text})
    plus = pl.col("t").str.starts_with("+")
    digits = pl.col("t").str.replace_all(r"[\s().\-/]", "")
    digits_only = digits.str.replace(r"^\+", "")
    fast_nanp = default_region == "US"
    fast = (
        pl.when(pl.col("t").is_null() | (pl.col("t") == ""))
        .then(None)
        .when(
            pl.lit(fast_nanp)
            & ~plus
            & digits.str.contains(_NANP_10)
            & pl.col("t").str.contains(r"^[\d\s().\-/]+$")
        )
        .then(pl.lit("+1") + digits)
        .when(
            pl.lit(fast_nanp)
            & digits_only.str.contains(_NANP_11)
            & ~pl.col("t").str.contains(r"[a-zA-Z]")
        )
        .then(pl.lit("+") + digits_only)
        .otherwise(pl.lit("?"))
    )
    frame = frame.with_columns(fast.alias("f"))
    slow = frame.filter(pl.col("f") == "?")["t"].unique().to_list()
    if not slow:
        return frame["f"].rename(values.name)
    mapping = {v: normalize_phone(v, default_region) for v in slow}
    out = frame.select(
        pl.when(pl.col("f") == "?")
        .then(pl.col("t").replace_strict(mapping, default=None, return_dtype=pl.String))
        .otherwise(pl.col("f"))
    ).to_series()
    return out.rename(values.name)


def _naive_datetime(text: pl.Expr) -> pl.Expr:
    parts = [text.str.to_datetime(f, strict=False, time_unit="us") for f in _NAIVE_FORMATS]
    parts += [text.str.to_date(f, strict=False).cast(pl.Datetime("us")) for f in _DATE_FORMATS]
    return pl.coalesce(parts)


def parse_times(frame: pl.DataFrame, cols: list[str], tz: str | None = None) -> pl.DataFrame:
    """Parses text timestamps in `cols` to UTC in place; zone-less times take the row's
    `_tz` column (or `tz`). Adds `_ts_bad` (bool): a value was present but unparseable.

    Common formats are parsed by polars; anything left is tried once per distinct value
    with the slower, more lenient `fields.parse_timestamp`."""
    if "_tz" not in frame.columns:
        frame = frame.with_columns(pl.lit(tz or "UTC").alias("_tz"))
    frame = frame.with_columns(pl.col("_tz").fill_null(tz or "UTC"))
    zones = frame["_tz"].unique().to_list()
    bad = pl.lit(False)
    for col in cols:
        if col not in frame.columns:
            continue
        if frame.schema[col] != pl.String:
            frame = frame.with_columns(pl.col(col).cast(UTC_DATETIME))
            continue
        text = clean(col).str.replace(r"Z$", "+00:00").str.replace(r"^(\d{4}-\d\d-\d\d)T", "$1 ")
        aware = pl.coalesce(
            [text.str.to_datetime(f, strict=False, time_zone="UTC") for f in _AWARE_FORMATS]
        )
        naive = _naive_datetime(text)
        local = pl.lit(None, dtype=UTC_DATETIME)
        for zone in zones:
            local = (
                pl.when(pl.col("_tz") == zone)
                .then(
                    naive.dt.replace_time_zone(
                        zone, ambiguous="earliest", non_existent="null"
                    ).dt.convert_time_zone("UTC")
                )
                .otherwise(local)
            )
        frame = frame.with_columns(
            clean(col).alias(f"{col}__text"), pl.coalesce(aware, local).alias(f"{col}__ts")
        )
        missing = frame.filter(
            pl.col(f"{col}__ts").is_null() & pl.col(f"{col}__text").is_not_null()
        )
        if missing.height:
            pairs = missing.select(f"{col}__text", "_tz").unique()
            fixed = []
            for text_value, zone in pairs.iter_rows():
                try:
                    fixed.append((text_value, zone, parse_timestamp(text_value, zone)))
                except (InvalidValueError, ValueError, OverflowError):
                    fixed.append((text_value, zone, None))
            fix = pl.DataFrame(
                fixed,
                schema={f"{col}__text": pl.String, "_tz": pl.String, "__fix": UTC_DATETIME},
                orient="row",
            )
            frame = (
                frame.join(fix, on=[f"{col}__text", "_tz"], how="left")
                .with_columns(pl.coalesce(f"{col}__ts", "__fix").alias(f"{col}__ts"))
                .drop("__fix")
            )
        frame = frame.with_columns(pl.col(f"{col}__ts").alias(col))
        bad = bad | (pl.col(f"{col}__ts").is_null() & pl.col(f"{col}__text").is_not_null())
        frame = frame.with_columns(bad.alias("_ts_bad")).drop(f"{col}__text", f"{col}__ts")
        bad = pl.col("_ts_bad")
    if "_ts_bad" not in frame.columns:
        frame = frame.with_columns(pl.lit(False).alias("_ts_bad"))
    return frame


def name_parts(full: pl.Expr, first: pl.Expr, last: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(full, first, last): the source's own split wins; "Smith, Bob" is understood."""
    comma = full.str.contains(",")
    given = (
        pl.when(comma)
        .then(clean(full.str.replace(r"^[^,]*,", "")))
        .otherwise(clean(full.str.replace(r"\s+\S+$", "")))
    )
    surname = (
        pl.when(comma)
        .then(clean(full.str.extract(r"^([^,]*),", 1)))
        .otherwise(full.str.extract(r"\s(\S+)$", 1))
    )
    has_own = first.is_not_null() | last.is_not_null()
    out_first = pl.when(has_own).then(first).otherwise(given)
    out_last = pl.when(has_own).then(last).otherwise(surname)
    composed = pl.concat_str([first, last], separator=" ", ignore_nulls=True)
    out_full = pl.coalesce(full, pl.when(composed != "").then(composed))
    return out_full, out_first, out_last


# ---------------------------------------------------------------- the shared core


def _ensure(frame: pl.DataFrame, cols: dict[str, pl.DataType]) -> pl.DataFrame:
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in cols.items() if c not in frame.columns]
    return frame.with_columns(missing) if missing else frame


_STAGING: dict[str, pl.DataType] = {
    "_idx": pl.Int64(),
    "_id": pl.String(),
    "_person": pl.String(),
    "_event_id": pl.String(),
    "_full": pl.String(),
    "_first": pl.String(),
    "_last": pl.String(),
    "_email": pl.String(),
    "_phone": pl.String(),
    "_company": pl.String(),
    "_job": pl.String(),
    **{f"_h_{p}": pl.String() for p in HANDLE_PLATFORMS},
    "_observed": pl.String(),
    "_registered": pl.String(),
    "_checked": pl.String(),
    "_checked_flag": pl.Boolean(),
    "_raw_status": pl.String(),
    "_status": pl.String(),
    "_role": pl.String(),
    "_plus_one_of": pl.String(),
    "_pre_reason": pl.String(),
    "_synthetic": pl.Boolean(),
}


def quarantine_rows(
    frame: pl.DataFrame, source: str, origin: str, reason: pl.Expr, raw_cols: list[str]
) -> pl.DataFrame:
    if "_raw" in frame.columns:
        raw = pl.col("_raw")
    elif raw_cols:
        raw = pl.struct(raw_cols).struct.json_encode()
    else:
        raw = pl.lit("{}")
    return conform(
        frame.select(
            pl.lit(source).alias("source"),
            pl.lit(origin).alias("origin"),
            pl.col("_idx").cast(pl.Int64).alias("record_index"),
            raw.alias("raw"),
            reason.alias("reason"),
        ),
        QUARANTINE_SCHEMA,
    )


def finish(
    staging: pl.DataFrame,
    *,
    source: str,
    origin: str,
    events: list[dict[str, Any]],
    raw_cols: list[str],
    id_label: str,
    status_label: str,
    default_status: str = Status.REGISTERED.value,
    input_records: int | None = None,
    tz: str | None = None,
    dedupe: bool = True,
) -> NormalizedBatch:
    """Validates a staging frame and builds the batch (see module docstring)."""
    df = _ensure(staging, _STAGING)
    df = df.with_columns(pl.col(c).cast(t) for c, t in _STAGING.items() if df.schema[c] == pl.Null)
    if "_tz" in df.columns and df.schema["_tz"] == pl.Null:
        df = df.with_columns(pl.col("_tz").cast(pl.String))
    # Texts: cleaned once; emails validated vectorized.
    df = df.with_columns(
        clean("_id").alias("_id"),
        clean("_email").str.strip_chars("<> ").str.to_lowercase().alias("_email"),
        clean("_raw_status").alias("_raw_status"),
        pl.col("_status").cast(pl.String),
    )
    reason = (
        pl.when(pl.col("_pre_reason").is_not_null())
        .then(pl.col("_pre_reason"))
        .when(pl.col("_id").is_null())
        .then(pl.lit(f"missing {id_label}"))
        .when(pl.col("_email").is_not_null() & ~pl.col("_email").str.contains(EMAIL_RE))
        .then(pl.lit("unparseable email"))
        .when(pl.col("_status").is_null() & pl.col("_raw_status").is_not_null())
        .then(pl.lit(f"unknown {status_label}"))
        .otherwise(None)
    )
    df = df.with_columns(reason.alias("_reason"))
    if dedupe:
        first_seen = pl.col("_id").is_first_distinct().over(pl.col("_reason").is_null())
        df = df.with_columns(
            pl.when(pl.col("_reason").is_null() & ~first_seen)
            .then(pl.lit(f"duplicate {id_label} in file"))
            .otherwise(pl.col("_reason"))
            .alias("_reason")
        )
    bad = df.filter(pl.col("_reason").is_not_null())
    good = df.filter(pl.col("_reason").is_null())
    good = parse_times(good, ["_observed", "_registered", "_checked"], tz)
    ts_bad = good.filter(pl.col("_ts_bad"))
    good = good.filter(~pl.col("_ts_bad"))
    quarantine = pl.concat(
        [
            quarantine_rows(bad, source, origin, pl.col("_reason"), raw_cols),
            quarantine_rows(ts_bad, source, origin, pl.lit("unparseable timestamp"), raw_cols),
        ]
    ).sort("record_index")
    good = good.with_columns(normalize_phones(good["_phone"]).alias("_phone"))
    full, first, last = name_parts(clean("_full"), clean("_first"), clean("_last"))
    real = ~pl.col("_synthetic").fill_null(False)
    first, last = pl.when(real).then(first), pl.when(real).then(last)
    obs_id = pl.lit(f"{source}:") + pl.col("_id")
    observations = good.select(
        obs_id.alias("observation_id"),
        pl.lit(source).alias("source"),
        pl.col("_id").alias("source_record_id"),
        clean("_person").alias("source_person_id"),
        pl.col("_event_id").alias("event_id"),
        full.alias("full_name"),
        first.alias("first_name"),
        last.alias("last_name"),
        pl.col("_email").alias("email"),
        pl.col("_phone").alias("phone"),
        *[handle_expr(p, clean(f"_h_{p}")).alias(f"handle_{p}") for p in HANDLE_PLATFORMS],
        clean("_company").alias("company"),
        clean("_job").alias("job_title"),
        pl.coalesce("_observed", "_registered").alias("observed_at"),
    )
    checked = pl.col("_checked").is_not_null() | pl.col("_checked_flag").fill_null(False)
    status = (
        pl.when(checked & ~pl.col("_status").is_in([Status.CANCELLED.value]).fill_null(False))
        .then(pl.lit(Status.ATTENDED.value))
        .otherwise(pl.col("_status").fill_null(default_status))
    )
    attendance = good.select(
        pl.col("_event_id").alias("event_id"),
        obs_id.alias("observation_id"),
        status.alias("status"),
        pl.col("_raw_status").alias("raw_status"),
        pl.col("_role").fill_null(Role.GUEST.value).alias("role"),
        pl.col("_plus_one_of").alias("plus_one_of"),
        pl.coalesce("_registered", "_observed").alias("registered_at"),
        pl.col("_checked").alias("checked_in_at"),
    )
    events_frame = (
        conform(pl.DataFrame(events, schema=EVENTS_SCHEMA, orient="row"), EVENTS_SCHEMA)
        if events
        else conform(pl.DataFrame(schema=EVENTS_SCHEMA), EVENTS_SCHEMA)
    )
    return NormalizedBatch(
        input_records=staging.height if input_records is None else input_records,
        events=events_frame,
        observations=conform(observations, OBSERVATIONS_SCHEMA),
        attendance=conform(attendance, ATTENDANCE_SCHEMA),
        quarantine=quarantine,
    )


def all_quarantined(
    frame: pl.DataFrame, *, source: str, origin: str, reason: str, events: list[dict[str, Any]]
) -> NormalizedBatch:
    """Every row of a file that cannot be normalized at all (e.g. wrong column set)."""
    raw_cols = [c for c in frame.columns if c != RECORD_INDEX]
    df = with_index(frame)
    q = quarantine_rows(df, source, origin, pl.lit(reason), raw_cols)
    events_frame = conform(pl.DataFrame(events, schema=EVENTS_SCHEMA, orient="row"), EVENTS_SCHEMA)
    return NormalizedBatch(input_records=frame.height, events=events_frame, quarantine=q)


def with_index(frame: pl.DataFrame) -> pl.DataFrame:
    """Adds `_idx`: the reader's file positions when it left them, else row numbers."""
    if RECORD_INDEX in frame.columns:
        return frame.with_columns(pl.col(RECORD_INDEX).cast(pl.Int64).alias("_idx"))
    return frame.with_row_index("_idx").with_columns(pl.col("_idx").cast(pl.Int64))


def missing_columns(columns: list[str], required: list[tuple[str, ...]]) -> list[str]:
    """Required column groups (any one of each group) absent from `columns`."""
    have = {norm_key(c) for c in columns}
    return ["/".join(group) for group in required if not any(norm_key(c) in have for c in group)]


def find_column(columns: list[str], *names: str) -> str | None:
    """The actual column whose label matches one of `names` (case, spacing, _ and - ignored)."""
    by_key = {norm_key(c): c for c in reversed(columns)}
    for name in names:
        col = by_key.get(norm_key(name))
        if col is not None:
            return col
    return None


def status_expr(raw: pl.Expr, mapping: dict[str, str]) -> pl.Expr:
    """Maps raw statuses by their `norm_key`; unknown -> null (quarantined by `finish`)."""
    key = (
        raw.str.to_lowercase()
        .str.replace_all("\u2019", "'")
        .str.replace_all(r"[_\-\s]+", " ")
        .str.strip_chars()
    )
    return key.replace_strict({norm_key(k): v for k, v in mapping.items()}, default=None)
