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
    _pos          row of `raw_frame` holding the record (quarantine shows its cells)
    _raw          the record as JSON text (API records; CSV rows use `_pos`)

Text columns are cleaned by `finish` (trimmed, "No answer provided." and friends to null),
so sources hand over raw cells.

Handles are stored canonical: lower case, without "@", URL prefix or trailing slash
(LinkedIn keeps the profile slug after "/in/"; website keeps host and path).

One bad field never costs a record: a present but unreadable email, phone, handle,
timestamp or status is set to null (a status to the source's default) and listed in the
batch's `field_issues` with its raw value and reason. Only a record that cannot name a
person (no name, valid email, phone, handle or user id) or an event (no record id, no
event) is quarantined.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import polars as pl

from domain.model import (
    ATTENDANCE_SCHEMA,
    EVENTS_SCHEMA,
    FIELD_ISSUES_SCHEMA,
    HANDLE_LABELS,
    HANDLE_PLATFORMS,
    OBSERVATIONS_SCHEMA,
    QUARANTINE_SCHEMA,
    UTC_DATETIME,
    Role,
    Status,
    conform,
)
from domain.normalize.batch import NormalizedBatch
from domain.normalize.columns import (
    Zones,
    blank_mask,
    clean,
    clean_frame,
    day_first_dates,
    normalize_phones,
    parse_time_series,
    via_distinct,
)
from domain.normalize.fields import EMAIL_RE, NAMED_ADDRESS_RE

RECORD_INDEX = "__record_index"
"""Optional column an export reader adds so record indexes stay file positions."""


def col_or_null(frame: pl.DataFrame, name: str | None) -> pl.Expr:
    """The column as text (cleaned later, once, by `finish`), or nulls when absent."""
    if name is not None and name in frame.columns:
        return pl.col(name).cast(pl.String)
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
    for target, pattern in _LABEL_RULES:
        if pattern.search(key):
            if target == "job_title" and "company" in key:
                return "company"
            return f"handle_{target}" if target in HANDLE_PLATFORMS else target
    return None


def detect_answer_columns(columns: Iterable[str], reserved: Iterable[str]) -> dict[str, str]:
    """Maps field -> the first non-reserved column whose label asks for it."""
    skip = {norm_key(c) for c in reserved}
    found: dict[str, str] = {}
    for col in columns:
        if norm_key(col) in skip or col == RECORD_INDEX:
            continue
        target = classify_label(col)
        if target and target not in found:
            found[target] = col
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


def split_full_names(full: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(given, surname) from cleaned full names, by the rules of `fields.split_name`
    ("white space" is Unicode's: Python's `str.split()` also splits on the ASCII
    separators U+001C-U+001F, which names do not hold)."""
    out = _split_frame(full)
    return out["given"], out["surname"]


def _split_frame(full: pl.Series) -> pl.DataFrame:
    text = full.str.strip_chars()
    # Given names: everything before the last run of spaces (a single word is all given
    # name); the surname is what that leaves.
    head = text.str.replace(r"\s+\S+$", "")
    rest = pl.col("t").str.strip_prefix(pl.col("h")).str.strip_chars_start()
    surname = (
        pl.DataFrame({"t": text, "h": head})
        .select(pl.when(pl.col("h") != pl.col("t")).then(rest))
        .to_series()
    )
    given = _single_spaced(head)
    # "Smith, Bob" is rare: only those rows are read the other way.
    comma = text.str.contains(",", literal=True).fill_null(False).arg_true()
    if comma.len():
        words = pl.col("f")
        flipped = pl.DataFrame({"f": text.gather(comma)}).select(
            words.str.replace(r"^[^,]*,", "").str.strip_chars().alias("given"),
            words.str.extract(r"^([^,]*),", 1).str.strip_chars().alias("surname"),
        )
        given = given.scatter(comma, _single_spaced(flipped["given"]))
        surname = surname.scatter(comma, _single_spaced(flipped["surname"]))
    return pl.DataFrame({"given": _blanked(given), "surname": _blanked(surname)})


def _single_spaced(words: pl.Series) -> pl.Series:
    """Words joined by single spaces; only text with another kind of space, or a run of
    them, goes through the replace."""
    odd = words.str.contains(r"\s\s|[^\S ]").fill_null(False).arg_true()
    if odd.len() == 0:
        return words
    return words.scatter(odd, words.gather(odd).str.replace_all(r"\s+", " "))


def _blanked(parts: pl.Series) -> pl.Series:
    """Parts of a name that read as a blank answer ("n/a Smith") as null."""
    blank = blank_mask(parts).arg_true()
    return parts.scatter(blank, None) if blank.len() else parts


# ---------------------------------------------------------------- the shared core


_STAGING: dict[str, pl.DataType] = {
    "_idx": pl.Int64(),
    "_pos": pl.Int64(),
    "_id": pl.String(),
    "_person": pl.String(),
    "_event_id": pl.String(),
    "_tz": pl.String(),
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
    "_raw": pl.String(),
}
_CLEANED = ["_id", "_person", "_full", "_first", "_last", "_company", "_job", "_raw_status"]
"""Text columns `finish` trims and blanks itself; emails, phones, handles and times are
trimmed by their own cleaners, which also treat "No answer provided." as absent."""
_TIMES = ["_observed", "_registered", "_checked"]


def _typed_staging(staging: pl.DataFrame) -> pl.DataFrame:
    """Only the staging columns, typed, with missing ones as nulls."""
    if staging.width == 0:
        return pl.DataFrame(schema=_STAGING)
    cols = []
    for name, dtype in _STAGING.items():
        if name not in staging.columns:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
        elif staging.schema[name] != dtype:
            cols.append(pl.col(name).cast(dtype, strict=False))
        else:
            cols.append(pl.col(name))
    return staging.select(cols)


def _clean_emails(values: pl.Series) -> list[pl.Series]:
    """(`_email`, `_email_given`): lower case; the address of `Name <address>`, without
    the angle brackets or `mailto:` some exports keep; blank answers null. `_email_given`
    is the text as received where it is not an address (null elsewhere), for the
    field-issues table.

    A value that already reads as a lower-case address is its own cleaned form (no
    space, bracket or capital, and no blank answer has an "@"), so one pattern test
    settles most of a column and only the rest is cleaned and tested again."""
    ok = values.str.contains(EMAIL_RE).fill_null(False)
    unreadable = pl.Series("_email_given", dtype=pl.String).extend_constant(None, values.len())
    rest = (~ok & values.is_not_null()).arg_true()
    if rest.len() == 0:
        return [values.rename("_email"), unreadable]
    given = values.gather(rest)
    text = pl.col("e")
    lowered = given.to_frame("e").select(
        pl.coalesce(text.str.extract(NAMED_ADDRESS_RE, 1), text)
        .str.strip_chars("<> \t")
        .str.to_lowercase()
        .str.strip_prefix("mailto:")
        .alias("e")
    )
    cleaned = lowered.select(clean("e")).to_series()
    unread = (cleaned.is_not_null() & ~cleaned.str.contains(EMAIL_RE)).fill_null(False)
    return [
        values.scatter(rest, cleaned).rename("_email"),
        unreadable.scatter(rest.filter(unread), given.filter(unread)),
    ]


def map_statuses(raw: pl.Series, mapping: dict[str, str]) -> pl.Series:
    """Maps cleaned raw statuses through `mapping` (keys compared by `norm_key`), once per
    distinct value; unknown -> null, which `finish` quarantines."""
    table = {norm_key(k): v for k, v in mapping.items()}
    distinct = raw.drop_nulls().unique().to_list()
    lookup = {u: table.get(norm_key(u)) for u in distinct}
    return raw.replace_strict(lookup, default=None, return_dtype=pl.String)


def _raw_json(rows: pl.DataFrame, raw_frame: pl.DataFrame | None, raw_cols: list[str]) -> pl.Series:
    """The quarantined records as received: `_raw`, else their cells of `raw_frame`."""
    if rows.height == 0:
        return pl.Series("raw", [], dtype=pl.String)
    if raw_frame is not None and raw_cols:
        cells = raw_frame.select(raw_cols).gather(rows["_pos"].fill_null(0))
        built = cells.select(pl.struct(raw_cols).struct.json_encode()).to_series()
        return pl.select(pl.coalesce(pl.lit(rows["_raw"]), pl.lit(built))).to_series()
    return rows["_raw"].fill_null("{}")


def quarantine_rows(
    rows: pl.DataFrame,
    source: str,
    origin: str,
    reason: pl.Expr,
    raw_frame: pl.DataFrame | None,
    raw_cols: list[str],
) -> pl.DataFrame:
    raw = _raw_json(rows, raw_frame, raw_cols)
    return conform(
        rows.select(
            pl.lit(source).alias("source"),
            pl.lit(origin).alias("origin"),
            pl.col("_idx").cast(pl.Int64).alias("record_index"),
            pl.lit(raw).alias("raw"),
            reason.alias("reason"),
        ),
        QUARANTINE_SCHEMA,
    )


def _has_values(frame: pl.DataFrame, col: str) -> bool:
    return frame.height > 0 and frame[col].null_count() < frame.height


NOTES = "notes"
"""Key of an event row holding remarks about the event's metadata (an unknown time
zone, say): they become the batch's notes, not a column."""


def event_notes(events: list[dict[str, Any]]) -> list[str]:
    return [note for event in events for note in event.get(NOTES, ())]


def events_frame(events: list[dict[str, Any]]) -> pl.DataFrame:
    if not events:
        return conform(pl.DataFrame(schema=EVENTS_SCHEMA), EVENTS_SCHEMA)
    return conform(pl.DataFrame(events, schema=EVENTS_SCHEMA, orient="row"), EVENTS_SCHEMA)


_PARALLEL_ROWS = 50_000
"""Below this many rows the column work runs one step after another (threads cost more)."""


def _handles(values: pl.Series, platform: str) -> pl.Series:
    mapped = via_distinct(values, lambda s: pl.select(handle_expr(platform, pl.lit(s)).alias("h")))
    return mapped["h"].rename(f"_hn_{platform}")


def _reasons(df: pl.DataFrame, config: FinishConfig) -> pl.Series:
    """The quarantine reason of each row (null = good) before timestamps are read; with
    `config.dedupe`, later copies of an id among otherwise good rows are flagged (the
    first one is kept). The reason text is worked out only for the rows that have one."""
    checks = _structural_checks(config)
    broken = pl.any_horizontal([failed for failed, _ in checks])
    out = _only_where(df, broken, _first_reason(checks), "_reason")
    duplicate_label = config.id_label if config.dedupe else None
    if duplicate_label is None or _surely_unique(df["_id"]):
        return out
    # One pass over integer hashes finds candidate repeats (a hash collision is only a
    # candidate); the careful check on the ids themselves runs on those rows only.
    repeated = df.select(
        pl.col("_id").hash().is_duplicated() & pl.col("_id").is_not_null() & pl.lit(out).is_null()
    ).to_series()
    if repeated.any():
        rows = repeated.arg_true()
        later = ~df["_id"].gather(rows).is_first_distinct()
        if later.any():
            out = out.scatter(rows.filter(later), f"duplicate {duplicate_label} in file")
    return out


def _only_where(df: pl.DataFrame, mask: pl.Expr, value: pl.Expr, name: str) -> pl.Series:
    """`value` on the rows of `mask`, null elsewhere: a text column that is nearly all
    null costs a mask and a few rows instead of a full column of branches."""
    rows = df.select(mask.fill_null(False)).to_series().arg_true()
    out = pl.Series(name, dtype=pl.String).extend_constant(None, df.height)
    if rows.len() == 0:
        return out
    return out.scatter(rows, df[rows].select(value).to_series())


def _surely_unique(ids: pl.Series) -> bool:
    """No id repeats (counting distinct integer hashes is several times cheaper than
    flagging repeats; a hash collision only sends the column to the careful check)."""
    nulls = ids.null_count()
    return ids.hash().n_unique() == ids.len() - max(nulls - 1, 0)


def _given_but_unread(raw: pl.Series, read: pl.Series) -> pl.Series:
    """Rows whose raw value is given (not blank) but could not be read; the blank check
    runs only on the rows that came out null."""
    out = pl.Series(dtype=pl.Boolean).extend_constant(False, raw.len())
    suspects = (read.is_null() & raw.is_not_null()).arg_true()
    if suspects.len() == 0:
        return out
    given = pl.select(clean(pl.lit(raw.gather(suspects))).is_not_null()).to_series()
    return out.scatter(suspects.filter(given), True)


_ISSUE_FIELDS: dict[str, str] = {
    "_observed": "observed_at",
    "_registered": "registered_at",
    "_checked": "checked_in_at",
    "_email": "email",
    "_phone": "phone",
    "_status": "status",
    **{f"_h_{p}": f"handle_{p}" for p in HANDLE_PLATFORMS},
}
UNIDENTIFIED = "cannot identify the person (no name, valid email, phone, handle or user id)"


def _issue_rows(
    df: pl.DataFrame, masks: dict[str, tuple[pl.Series, str, str]], source: str, origin: str
) -> pl.DataFrame:
    """One row per (kept record, unreadable field): where it was, what it held, why."""
    kept = df["_reason"].is_null()
    parts = []
    for col, (mask, raw_col, reason) in masks.items():
        hit = mask.fill_null(False) & kept
        if not hit.any():
            continue
        rows = df.select("_idx", "_id", raw_col).filter(hit)
        parts.append(
            rows.select(
                pl.lit(source).alias("source"),
                pl.lit(origin).alias("origin"),
                pl.col("_idx").cast(pl.Int64).alias("record_index"),
                (pl.lit(f"{source}:") + pl.col("_id")).alias("observation_id"),
                pl.lit(_ISSUE_FIELDS[col]).alias("field"),
                pl.col(raw_col).cast(pl.String).alias("raw"),
                pl.lit(reason).alias("reason"),
            )
        )
    if not parts:
        return pl.DataFrame(schema=FIELD_ISSUES_SCHEMA)
    return conform(pl.concat(parts), FIELD_ISSUES_SCHEMA).sort("record_index", "field")


@dataclass(frozen=True)
class FinishConfig:
    """How `finish` reads one source's staging frame.

    `raw_frame`/`raw_cols`: where quarantined CSV rows find their cells (row `_pos`);
    `id_label`/`status_label`: the source's words in quarantine reasons and field issues;
    `input_records`: the count to reconcile against (default: the staging rows);
    `tz`: zone of zone-less times without a `_tz`; `dedupe`: later copies of an id are
    quarantined; `status_map`: maps `_raw_status` to `_status`; `already_clean`: text
    columns the source cleaned itself."""

    source: str
    origin: str
    events: list[dict[str, Any]]
    id_label: str
    status_label: str
    raw_frame: pl.DataFrame | None = None
    raw_cols: list[str] = field(default_factory=list)
    default_status: str = Status.REGISTERED.value
    input_records: int | None = None
    tz: str | None = None
    dedupe: bool = True
    status_map: dict[str, str] | None = None
    already_clean: Collection[str] = ()


Late = Callable[[], list[pl.Series]]
"""Staging columns that take long to work out, made on demand (see `finish`)."""


def finish(
    staging: pl.DataFrame, config: FinishConfig, late: Late | None = None
) -> NormalizedBatch:
    """Validates a staging frame and builds the batch (see module docstring).

    `late` gives staging columns that take long to work out (Partiful's names and ids),
    row-aligned with `staging`; they replace the staging columns of the same names. The
    column work that does not read them runs meanwhile. A late `_observation_id` is used
    as given (else it is `<source>:<_id>`).

    A record is quarantined only when it cannot name a person and an event: no record id,
    no event, or none of name, valid email, phone, handle and user id. Any other field
    that cannot be read (email, phone, handle, timestamp, status) is set to null (a status
    to `default_status`, the raw text kept) and listed in `field_issues`.

    Quarantined rows keep the record as received: `_raw` when the staging frame has it,
    else the `raw_cols` cells of row `_pos` of `raw_frame`. A `_plus_one_of` naming a
    record of this batch that is quarantined (and not also kept under the same id)
    becomes null: links only point at kept observations."""
    df = _typed_staging(staging)
    late_columns, cleaned, work = _column_work(df, config, late or list)
    df = df.with_columns(late_columns).with_columns(cleaned)
    if "_status" in work:
        df = df.with_columns(work["_status"])
    checks = _field_checks(df, work, config)
    df = df.with_columns(checks.updates)
    df = df.with_columns(_with_unidentified(df, work))
    bad = df.filter(pl.col("_reason").is_not_null())
    quarantine = quarantine_rows(
        bad, config.source, config.origin, pl.col("_reason"), config.raw_frame, config.raw_cols
    )
    observations = _observations(df, bad, work, config)
    return NormalizedBatch(
        input_records=staging.height if config.input_records is None else config.input_records,
        events=events_frame(config.events),
        observations=conform(observations, OBSERVATIONS_SCHEMA),
        attendance=conform(observations, ATTENDANCE_SCHEMA),
        quarantine=quarantine.sort("record_index"),
        field_issues=_issue_rows(df, checks.issues, config.source, config.origin),
        notes=event_notes(config.events),
    )


def _structural_checks(config: FinishConfig) -> list[tuple[pl.Expr, pl.Expr]]:
    """Why a row cannot be a record at all, decided before any field is read: (failed,
    reason) in order of precedence."""
    return [
        (pl.col("_pre_reason").is_not_null(), pl.col("_pre_reason")),
        (pl.col("_id").is_null(), pl.lit(f"missing {config.id_label}")),
        (pl.col("_event_id").is_null(), pl.lit("missing event")),
    ]


def _first_reason(checks: list[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    out: pl.Expr = pl.lit(None, dtype=pl.String)
    for failed, reason in reversed(checks):  # the first failed check wins
        out = pl.when(failed).then(reason).otherwise(out)
    return out


_Task = Callable[[], tuple[list[pl.Series], dict[str, Any]]]
"""One unit of column work: (cleaned staging columns, derived values by name)."""


def _column_work(
    df: pl.DataFrame, config: FinishConfig, late: Late
) -> tuple[list[pl.Series], list[pl.Series], dict[str, Any]]:
    """The late columns, cleaned text columns, and reasons, statuses, parsed times,
    phones, split names and handles derived from the staging frame.

    The tasks read different columns, so on large frames they run side by side (polars
    releases the GIL while it works); what needs a cleaned column (reasons, statuses,
    split names) runs in the task that cleans it, so no step waits for all cleaning."""
    todo = {c for c in _CLEANED if c not in config.already_clean and _has_values(df, c)}
    tasks: dict[str, _Task] = {}  # longest first: the pool takes them in this order
    halved: list[str] = []
    if _has_values(df, "_phone"):
        halved += _add_halves(tasks, "_phone", normalize_phones, df["_phone"])
    zones = _zones(df, config.tz)
    for col in _TIMES:
        if _has_values(df, col) and df.schema[col] != UTC_DATETIME:
            # Halves read slash dates alike: the whole column decides their order.
            parse = partial(parse_time_series, day_first=day_first_dates(df[col]))
            halved += _add_halves(tasks, col, parse, df[col], zones)
    tasks["_status"] = partial(_status_task, df, todo, config.status_map)
    for col in ("_person", "_company", "_job"):
        if col in todo:
            tasks[col] = partial(_clean_task, df, col)
    if _has_values(df, "_email"):
        tasks["_email"] = partial(_email_task, df["_email"])
    for platform in HANDLE_PLATFORMS:
        if _has_values(df, f"_h_{platform}"):
            key = f"_hn_{platform}"
            tasks[key] = partial(_derived, key, _handles, df[f"_h_{platform}"], platform)
    # Reasons and names read ids and names, which may be late.
    after_late: dict[str, Callable[[pl.DataFrame], tuple[list[pl.Series], dict[str, Any]]]] = {
        "_reason": partial(_id_task, todo=todo, config=config),
        "_names": partial(_names_task, todo=todo),
    }
    late_columns, done = _run_with_late(
        df, tasks, after_late, late, parallel=df.height >= _PARALLEL_ROWS
    )
    cleaned = [col for columns, _ in done.values() for col in columns]
    derived = {key: value for _, found in done.values() for key, value in found.items()}
    for key in halved:
        first, second = derived.pop(f"{key}:0"), derived.pop(f"{key}:1")
        if isinstance(first, tuple):
            derived[key] = tuple(pl.concat(pair) for pair in zip(first, second, strict=True))
        else:
            derived[key] = pl.concat([first, second])
    return late_columns, cleaned, derived


def _run_with_late(
    df: pl.DataFrame,
    tasks: dict[str, _Task],
    after_late: dict[str, Callable[[pl.DataFrame], Any]],
    late: Late,
    *,
    parallel: bool,
) -> tuple[list[pl.Series], dict[str, Any]]:
    """Runs `late` and `tasks` side by side, then `after_late` on the frame with the late
    columns in place. The late work is submitted first and only this thread waits for
    it, so the pool never blocks on it."""
    if not parallel:
        late_columns = late()
        full = df.with_columns(late_columns)
        done = {name: task() for name, task in tasks.items()}
        return late_columns, done | {name: task(full) for name, task in after_late.items()}
    with ThreadPoolExecutor(max_workers=4) as pool:
        late_future = pool.submit(late)
        futures = {name: pool.submit(task) for name, task in tasks.items()}
        late_columns = late_future.result()
        full = df.with_columns(late_columns)
        futures |= {name: pool.submit(task, full) for name, task in after_late.items()}
        return late_columns, {name: future.result() for name, future in futures.items()}


def _zones(df: pl.DataFrame, tz: str | None) -> Zones:
    """Each row's zone when rows carry their own, else the one zone of them all."""
    if _has_values(df, "_tz"):
        return df["_tz"].fill_null(tz or "UTC")
    return tz or "UTC"


def _add_halves(
    tasks: dict[str, _Task],
    key: str,
    fn: Callable[..., Any],
    rows: pl.Series,
    *extra: pl.Series | str,
) -> list[str]:
    """`fn(rows, *extra)` as two tasks, one per half of the rows (row-wise work only;
    Series in `extra` are halved alike). Phones and times are the longest pieces of work;
    halves keep the pool evenly loaded instead of leaving one thread the last long task."""
    if rows.len() < _PARALLEL_ROWS:
        tasks[key] = partial(_derived, key, fn, rows, *extra)
        return []
    half = rows.len() // 2
    for part, piece in ((0, slice(0, half)), (1, slice(half, None))):
        args = [arg[piece] if isinstance(arg, pl.Series) else arg for arg in (rows, *extra)]
        tasks[f"{key}:{part}"] = partial(_derived, f"{key}:{part}", fn, *args)
    return [key]


def _derived(
    key: str, fn: Callable[..., Any], *args: Any
) -> tuple[list[pl.Series], dict[str, Any]]:
    return [], {key: fn(*args)}


def _cleaned(df: pl.DataFrame, cols: list[str]) -> list[pl.Series]:
    exprs = clean_frame(df, cols)
    return df.select(exprs).get_columns() if exprs else []


def _clean_task(df: pl.DataFrame, col: str) -> tuple[list[pl.Series], dict[str, Any]]:
    return _cleaned(df, [col]), {}


def _id_task(
    df: pl.DataFrame, *, todo: Collection[str], config: FinishConfig
) -> tuple[list[pl.Series], dict[str, Any]]:
    cleaned = _cleaned(df, ["_id"]) if "_id" in todo else []
    frame = df.select("_id", "_pre_reason", "_event_id").with_columns(cleaned)
    return cleaned, {"_reason": _reasons(frame, config)}


def _names_task(
    df: pl.DataFrame, *, todo: Collection[str]
) -> tuple[list[pl.Series], dict[str, Any]]:
    """Cleaned names, and the full names split where the source gave no first or last."""
    cleaned = _cleaned(df, [c for c in ("_full", "_first", "_last") if c in todo])
    frame = df.select("_full", "_first", "_last").with_columns(cleaned)
    if not bool(frame.select((~_OWN_NAMES & pl.col("_full").is_not_null()).any()).item()):
        return cleaned, {}
    return cleaned, {"_split": via_distinct(frame["_full"], _split_frame)}


def _status_task(
    df: pl.DataFrame, todo: Collection[str], mapping: dict[str, str] | None
) -> tuple[list[pl.Series], dict[str, Any]]:
    cleaned = _cleaned(df, ["_raw_status"]) if "_raw_status" in todo else []
    if mapping is None:
        return cleaned, {}
    raw = cleaned[0] if cleaned else df["_raw_status"]
    return cleaned, {"_status": map_statuses(raw, mapping).alias("_status")}


def _email_task(values: pl.Series) -> tuple[list[pl.Series], dict[str, Any]]:
    return _clean_emails(values), {}


_OWN_NAMES = pl.col("_first").is_not_null() | pl.col("_last").is_not_null()
"""The source gave a first or last name of its own (then the full name is not split)."""


@dataclass
class _FieldChecks:
    """Unreadable fields found so far: column -> (mask of rows, column holding the raw
    value, reason), and the column updates that null them and keep their raw text."""

    issues: dict[str, tuple[pl.Series, str, str]] = field(default_factory=dict)
    updates: list[pl.Series | pl.Expr] = field(default_factory=list)


def _field_checks(df: pl.DataFrame, work: dict[str, Any], config: FinishConfig) -> _FieldChecks:
    checks = _FieldChecks(updates=[work["_reason"].alias("_reason")])
    _check_times(checks, work)
    _check_email(checks, df)
    _check_phone(checks, df, work)
    _check_status(checks, df, config)
    _check_handles(checks, df, work)
    return checks


def _check_times(checks: _FieldChecks, work: dict[str, Any]) -> None:
    for col in _TIMES:
        if col not in work:
            checks.updates.append(pl.col(col).cast(UTC_DATETIME))
            continue
        parsed, present = work[col]
        checks.issues[col] = (present & parsed.is_null(), f"_raw{col}", "unparseable timestamp")
        checks.updates += [parsed.rename(col), pl.col(col).alias(f"_raw{col}")]


def _check_email(checks: _FieldChecks, df: pl.DataFrame) -> None:
    if not _has_values(df, "_email"):
        return
    bad_email = df["_email_given"].is_not_null()
    if bad_email.any():
        checks.issues["_email"] = (bad_email, "_email_given", "unparseable email")
        checks.updates.append(
            pl.when(pl.lit(bad_email)).then(None).otherwise(pl.col("_email")).alias("_email")
        )


def _check_phone(checks: _FieldChecks, df: pl.DataFrame, work: dict[str, Any]) -> None:
    if "_phone" not in work:
        return
    phone = work["_phone"].rename("_phone")
    bad_phone = _given_but_unread(df["_phone"], phone)
    if bad_phone.any():
        checks.issues["_phone"] = (bad_phone, "_raw_phone", "unparseable phone number")
        checks.updates.append(pl.col("_phone").alias("_raw_phone"))
    checks.updates.append(phone)


def _check_status(checks: _FieldChecks, df: pl.DataFrame, config: FinishConfig) -> None:
    if config.status_map is None and not _has_values(df, "_raw_status"):
        return
    unknown = df.select(pl.col("_status").is_null() & pl.col("_raw_status").is_not_null())
    if unknown.to_series().any():
        reason = f"unknown {config.status_label}"
        checks.issues["_status"] = (unknown.to_series(), "_raw_status", reason)


def _check_handles(checks: _FieldChecks, df: pl.DataFrame, work: dict[str, Any]) -> None:
    for platform in HANDLE_PLATFORMS:
        col = f"_h_{platform}"
        if f"_hn_{platform}" in work:
            unread = _given_but_unread(df[col], work[f"_hn_{platform}"])
            if unread.any():
                checks.issues[col] = (unread, col, f"unreadable {HANDLE_LABELS[platform]}")


def _with_unidentified(df: pl.DataFrame, work: dict[str, Any]) -> pl.Series:
    """`_reason`, plus UNIDENTIFIED for good rows with nothing left that names a person."""
    named = [pl.col(c).is_not_null() for c in ("_full", "_first", "_last", "_email", "_person")]
    named += [
        pl.lit(work[f"_hn_{p}"]).is_not_null() for p in HANDLE_PLATFORMS if f"_hn_{p}" in work
    ]
    if "_phone" in work:
        named.append(pl.col("_phone").is_not_null())
    rows = df.select(pl.col("_reason").is_null() & ~pl.any_horizontal(named)).to_series()
    if not rows.any():
        return df["_reason"]
    return df["_reason"].scatter(rows.arg_true(), UNIDENTIFIED)


def _kept_links(df: pl.DataFrame, bad: pl.DataFrame, source: str) -> pl.Expr:
    """`_plus_one_of`, null where it names a quarantined record of this batch."""
    plus_one_of = pl.col("_plus_one_of")
    if not (_has_values(df, "_plus_one_of") and _has_values(bad, "_id")):
        return plus_one_of
    bad_ids = bad["_id"].drop_nulls().unique()
    kept = df.filter(pl.col("_reason").is_null() & pl.col("_id").is_in(bad_ids.implode()))
    lost = (f"{source}:" + bad_ids.filter(~bad_ids.is_in(kept["_id"].implode()))).implode()
    return pl.when(plus_one_of.is_in(lost)).then(None).otherwise(plus_one_of)


def _name_exprs(df: pl.DataFrame, work: dict[str, Any]) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(full, first, last): the source's own first/last win, else the full name split
    (once per name); a full name is composed from first/last when missing."""
    full = pl.col("_full")
    if bool(df.select((full.is_null() & _OWN_NAMES).any()).item()):
        composed = pl.concat_str(
            [pl.col("_first"), pl.col("_last")], separator=" ", ignore_nulls=True
        )
        full = pl.coalesce(full, pl.when(composed != "").then(composed))
    first, last = pl.col("_first"), pl.col("_last")
    if "_split" in work:
        first = pl.when(_OWN_NAMES).then(first).otherwise(pl.col("_g"))
        last = pl.when(_OWN_NAMES).then(last).otherwise(pl.col("_s"))
    if _has_values(df, "_synthetic"):
        real = ~pl.col("_synthetic").fill_null(False)
        first, last = pl.when(real).then(first), pl.when(real).then(last)
    return full, first, last


def _derived_columns(work: dict[str, Any]) -> list[pl.Series]:
    """Split names (`_g`, `_s`) and canonical handles (`_hn_<platform>`) as columns."""
    derived: list[pl.Series] = []
    if "_split" in work:
        derived += [work["_split"]["given"].rename("_g"), work["_split"]["surname"].rename("_s")]
    derived += [work[f"_hn_{p}"] for p in HANDLE_PLATFORMS if f"_hn_{p}" in work]
    return derived


def _observations(
    df: pl.DataFrame, bad: pl.DataFrame, work: dict[str, Any], config: FinishConfig
) -> pl.DataFrame:
    """The kept rows as observation + attendance columns, in one lazy pass."""
    full, first, last = _name_exprs(df, work)
    observation_id = (
        pl.col("_observation_id")
        if "_observation_id" in df.columns
        else pl.lit(f"{config.source}:") + pl.col("_id")
    )
    handles = [
        (pl.col(f"_hn_{p}") if f"_hn_{p}" in work else pl.lit(None, dtype=pl.String)).alias(
            f"handle_{p}"
        )
        for p in HANDLE_PLATFORMS
    ]
    checked = pl.col("_checked").is_not_null() | pl.col("_checked_flag").fill_null(False)
    status = (
        pl.when(checked & (pl.col("_status") != Status.CANCELLED.value).fill_null(True))
        .then(pl.lit(Status.ATTENDED.value))
        .otherwise(pl.col("_status").fill_null(config.default_status))
    )
    df = df.with_columns(_derived_columns(work))
    # Columns the source never fills are made again after the filter instead of filtered.
    empty = {c: t for c, t in df.schema.items() if df[c].null_count() == df.height}
    empty.pop("_reason", None)
    good = (
        df.lazy()
        .drop(list(empty))
        .filter(pl.col("_reason").is_null())
        .with_columns(pl.lit(None, dtype=t).alias(c) for c, t in empty.items())
    )
    return good.select(
        observation_id.alias("observation_id"),
        pl.lit(config.source).alias("source"),
        pl.col("_id").alias("source_record_id"),
        pl.col("_person").alias("source_person_id"),
        pl.col("_event_id").alias("event_id"),
        full.alias("full_name"),
        first.alias("first_name"),
        last.alias("last_name"),
        pl.col("_email").alias("email"),
        pl.col("_phone").alias("phone"),
        *handles,
        pl.col("_company").alias("company"),
        pl.col("_job").alias("job_title"),
        pl.coalesce("_observed", "_registered").alias("observed_at"),
        status.alias("status"),
        pl.col("_raw_status").alias("raw_status"),
        pl.col("_role").fill_null(Role.GUEST.value).alias("role"),
        _kept_links(df, bad, config.source).alias("plus_one_of"),
        pl.coalesce("_registered", "_observed").alias("registered_at"),
        pl.col("_checked").alias("checked_in_at"),
    ).collect()


def all_quarantined(
    frame: pl.DataFrame, *, source: str, origin: str, reason: str, events: list[dict[str, Any]]
) -> NormalizedBatch:
    """Every row of a file that cannot be normalized at all (e.g. wrong column set)."""
    raw_cols = [c for c in frame.columns if c != RECORD_INDEX]
    df = (
        with_index(frame).select("_idx", "_pos").with_columns(pl.lit(None, pl.String).alias("_raw"))
    )
    quarantine = quarantine_rows(df, source, origin, pl.lit(reason), frame, raw_cols)
    return NormalizedBatch(
        input_records=frame.height,
        events=events_frame(events),
        quarantine=quarantine,
        notes=event_notes(events),
    )


def with_index(frame: pl.DataFrame) -> pl.DataFrame:
    """Adds `_pos` (row number) and `_idx`: the reader's file positions when it left
    them, else row numbers. Callers make the columns they keep one chunk (`rechunk`): a
    parallel CSV reader leaves dozens, and every later column operation pays for them."""
    frame = frame.with_row_index("_pos").with_columns(pl.col("_pos").cast(pl.Int64))
    if RECORD_INDEX in frame.columns:
        return frame.with_columns(pl.col(RECORD_INDEX).cast(pl.Int64).alias("_idx"))
    return frame.with_columns(pl.col("_pos").alias("_idx"))


def missing_columns(columns: list[str], required: list[tuple[str, ...]]) -> list[str]:
    """Required column groups (any one of each group) absent from `columns`."""
    have = {norm_key(c) for c in columns}
    return ["/".join(group) for group in required if not any(norm_key(c) in have for c in group)]


def wrong_column_set(
    frame: pl.DataFrame,
    required: list[tuple[str, ...]],
    *,
    source: str,
    origin: str,
    events: list[dict[str, Any]],
) -> NormalizedBatch | None:
    """The whole file quarantined when required columns are absent, else None."""
    columns = [c for c in frame.columns if c != RECORD_INDEX]
    missing = missing_columns(columns, required)
    if not missing:
        return None
    reason = f"wrong column set: missing {', '.join(missing)}"
    return all_quarantined(frame, source=source, origin=origin, reason=reason, events=events)


def find_column(columns: list[str], *names: str) -> str | None:
    """The actual column whose label matches one of `names` (case, spacing, _ and - ignored)."""
    by_key = {norm_key(c): c for c in reversed(columns)}
    for name in names:
        col = by_key.get(norm_key(name))
        if col is not None:
            return col
    return None
