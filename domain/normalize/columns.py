"""Whole-column cleaners for text, phones and timestamps, kept vectorized.

Exports reach millions of rows, so per-row Python is out of the hot path: the common
shapes are handled by polars kernels, and only what is left goes through the lenient
scalar cleaners in `fields` once per distinct value. Both paths give the same answers
(tests compare them).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import phonenumbers
import polars as pl

from domain.model import UTC_DATETIME
from domain.normalize.fields import (
    InvalidValueError,
    day_first_format,
    normalize_phone,
    parse_timestamp,
)

BLANK_RE = r"(?i)^(?:no answer provided\.?|n/a|na|none|null|-)?$"
"""Answers that mean "nothing": empty, "No answer provided." (Luma), n/a, none, …"""
_LONGEST_BLANK = len("no answer provided.")


def clean(col: str | pl.Expr) -> pl.Expr:
    """Trimmed text, with the platforms' many spellings of "no answer" as null."""
    expr = pl.col(col) if isinstance(col, str) else col
    text = expr.cast(pl.String).str.strip_chars()
    blank = (text.str.len_bytes() <= _LONGEST_BLANK) & text.str.contains(BLANK_RE)
    return pl.when(blank).then(None).otherwise(text)


_BLANK_LENGTHS = [0, 1, 2, 3, 4, 18, 19]
"""Byte lengths a `BLANK_RE` match can have ("", "-", "na", "n/a", "none", "no answer
provided" with or without the stop, one "s" possibly as the 2-byte long s that
case-insensitive matching accepts, capped at `_LONGEST_BLANK` like `clean`)."""


def _maybe_blank(text: pl.Expr) -> pl.Expr:
    return text.str.len_bytes().is_in(_BLANK_LENGTHS)


def blank_mask(text: pl.Series) -> pl.Series:
    """Which values `clean` would blank (for trimmed text); the pattern runs only on
    values of a length a blank answer can have, so long columns of ids, names or emails
    cost one length check."""
    maybe = pl.select(_maybe_blank(pl.lit(text))).to_series().fill_null(False)
    out = pl.Series(text.name, dtype=pl.Boolean).extend_constant(False, len(text))
    rows = maybe.arg_true()
    if rows.len() == 0:
        return out
    return out.scatter(rows, text.gather(rows).str.contains(BLANK_RE))


def clean_frame(frame: pl.DataFrame, cols: list[str]) -> list[pl.Expr]:
    """`clean` for several columns of `frame`, touching a column only when some value
    needs it.

    Whether a column needs it is probed on its distinct values when a sample shows the
    column repeats a lot (statuses, companies, first names), which then also get their
    cleaned values by distinct value; other columns are probed and cleaned row by row."""
    if not cols or frame.height == 0:
        return []
    repetitive = _repetitive(frame, cols)
    lists = (
        frame.select(pl.col(c).cast(pl.String).unique().implode() for c in repetitive).row(0)
        if repetitive
        else ()
    )
    distinct = {
        c: pl.Series(c, values, dtype=pl.String)
        for c, values in zip(repetitive, lists, strict=True)
    }
    flags: dict[str, bool] = {}
    for source, names in [(frame, [c for c in cols if c not in distinct])] + [
        (distinct[c].to_frame(), [c]) for c in repetitive
    ]:
        if names:
            flags.update(source.select(_probes(names)).row(0, named=True))
    out = []
    for c in cols:
        edge, blank = flags[f"{c}\x00edge"], flags[f"{c}\x00blank"]
        if not edge and not blank:
            continue
        if c in distinct:
            out.append(_cleaned_by_distinct(c, distinct[c]))
            continue
        text = frame[c].cast(pl.String)
        if edge:
            text = text.str.strip_chars()
        out.append(pl.when(pl.lit(blank_mask(text))).then(None).otherwise(pl.lit(text)).alias(c))
    return out


def _cleaned_by_distinct(col: str, values: pl.Series) -> pl.Expr:
    """Column `col` cleaned through its distinct `values`: blank ones become null by a
    set lookup, untrimmed ones are replaced by their trimmed text."""
    cleaned = pl.select(clean(pl.lit(values))).to_series()
    changed = values.ne_missing(cleaned)
    blanked = values.filter(changed & cleaned.is_null())
    trimmed = changed & cleaned.is_not_null()
    text = pl.col(col).cast(pl.String)
    if trimmed.any():
        text = text.replace(values.filter(trimmed), cleaned.filter(trimmed))
    if blanked.len():
        text = pl.when(pl.col(col).is_in(blanked.implode())).then(None).otherwise(text)
    return text.alias(col)


def _repetitive(frame: pl.DataFrame, cols: list[str], sample: int = 2000) -> list[str]:
    """Columns whose first `sample` values have few distinct ones (cheap to probe by
    distinct value)."""
    head = frame.head(sample)
    counts = head.select(pl.col(c).n_unique() for c in cols).row(0)
    return [c for c, n in zip(cols, counts, strict=True) if n * 20 <= head.height]


def _probes(cols: list[str]) -> list[pl.Expr]:
    probes = []
    for c in cols:
        text = pl.col(c).cast(pl.String)
        probes.append(
            (text.str.len_bytes() != text.str.strip_chars().str.len_bytes())
            .any()
            .alias(f"{c}\x00edge")
        )
        probes.append(
            text.filter(_maybe_blank(text)).str.contains(BLANK_RE).any().alias(f"{c}\x00blank")
        )
    return probes


# ---------------------------------------------------------------- phones


@functools.cache
def _international_fast_path() -> tuple[frozenset[str], frozenset[str], str]:
    """(all calling codes, "code:length" pairs that are possible, national prefixes).

    Built from phonenumbers' own metadata, for countries whose national prefixes are
    plain digit strings (so a national number not starting with one is parsed as is)."""
    codes: set[str] = set()
    pairs: set[str] = set()
    prefixes: set[str] = set()
    for cc, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        codes.add(str(cc))
        if cc == 1:
            continue
        md = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(cc, regions[0])
        if md is None or md.general_desc is None or md.national_prefix_transform_rule:
            continue
        found: list[str] | None = []
        for pattern in (md.national_prefix_for_parsing, md.national_prefix):
            if pattern is None:
                continue
            if not re.fullmatch(r"\d+(\|\d+)*", pattern):
                found = None
                break
            found = [*(found or []), *pattern.split("|")]
        if found is None:
            continue
        prefixes.update(found)
        lengths = set(md.general_desc.possible_length or ()) | set(
            md.general_desc.possible_length_local_only or ()
        )
        if not lengths or -1 in lengths:
            continue
        pairs.update(f"{cc}:{n}" for n in lengths)
    prefix_re = (
        "^(?:" + "|".join(sorted(prefixes, key=len, reverse=True)) + ")" if prefixes else "^$"
    )
    return frozenset(codes), frozenset(pairs), prefix_re


_SEPARATORS = r"[ ().\-/]"
"""What people write between digits. Numbers with other characters (tabs, other spaces,
extensions, letters) take the `phonenumbers` path."""
_SEPARATOR_LIST = ["(", ")", "-", ".", "/", " "]
_NANP_WRITTEN = (
    rf"^{_SEPARATORS}*(?:\+?{_SEPARATORS}*1{_SEPARATORS}*)?[2-9](?:{_SEPARATORS}*\d){{9}}"
    rf"{_SEPARATORS}*$"
)
"""A North American number written with separators: exactly the text whose digits
(separators removed) read `(+)(1)NXXNXXXXXX`."""


def _digits_of(text: pl.Series) -> pl.Series:
    """`text` without separators (one multi-pattern pass; a regex replace costs several
    times more)."""
    return text.str.replace_many(_SEPARATOR_LIST, [""] * len(_SEPARATOR_LIST))


def via_distinct(values: pl.Series, fn: Callable[[pl.Series], pl.DataFrame]) -> pl.DataFrame:
    """`fn` (one input column -> output columns) applied once per distinct value when
    values repeat (names, handles, companies usually do), else directly."""
    distinct = values.drop_nulls().unique()
    if distinct.len() * 3 > values.len():
        return fn(values)
    mapped = fn(distinct).with_columns(distinct.rename("__key"))
    return (
        pl.DataFrame({"__key": values})
        .join(mapped, on="__key", how="left", maintain_order="left")
        .drop("__key")
    )


def normalize_phones(values: pl.Series, default_region: str = "US") -> pl.Series:
    """E.164 or null (like `fields.normalize_phone`, value for value).

    North American numbers and plainly written international numbers are done in polars;
    anything unusual (extensions, national prefixes, other regions' local formats) goes
    through `phonenumbers` once per distinct value. What the North American pattern
    leaves is worked on once per distinct value when values repeat."""
    raw = values.cast(pl.String)
    result = pl.Series(values.name, dtype=pl.String).extend_constant(None, len(raw))
    given = raw.is_not_null()
    if default_region == "US" and given.any():
        # Spaces count as separators, so padded numbers need no trimming here.
        nanp = raw.str.contains(_NANP_WRITTEN).fill_null(False)
        if nanp.any():
            at = nanp.arg_true()
            result = result.scatter(at, "+1" + _digits_of(raw.gather(at)).str.slice(-10))
            given = given & ~nanp
    rows = given.arg_true()
    if rows.len() == 0:
        return result
    numbers = via_distinct(
        raw.gather(rows), lambda s: _other_phones(s, default_region).to_frame("p")
    )
    return result.scatter(rows, numbers["p"])


def _other_phones(raw: pl.Series, default_region: str) -> pl.Series:
    """`normalize_phones` without the North American pattern. Each step works only on
    the values no earlier step settled (`rows`, with their trimmed text in `rest`)."""
    result = pl.Series(raw.name, dtype=pl.String).extend_constant(None, len(raw))
    rest = raw.str.strip_chars()
    present = (rest.str.len_bytes() > 0).fill_null(False)
    rows, rest = present.arg_true(), rest.filter(present)
    plus = (rest.str.starts_with("+") & rest.str.contains(r"^[\d+ ().\-/]+$")).fill_null(False)
    if plus.any():
        number = _digits_of(rest.filter(plus)).str.slice(1)
        ok = _plain_international(number)
        if ok.any():
            result = result.scatter(rows.filter(plus).filter(ok), "+" + number.filter(ok))
            settled = plus.scatter(plus.arg_true().filter(~ok), False)
            rows, rest = rows.filter(~settled), rest.filter(~settled)
    if rows.len():
        mapping = {v: normalize_phone(v, default_region) for v in rest.unique().to_list()}
        result = result.scatter(
            rows, rest.replace_strict(mapping, default=None, return_dtype=pl.String)
        )
    return result


def _plain_international(number: pl.Series) -> pl.Series:
    """Which digit strings (after the "+") are a calling code followed by a national
    number of a possible length that starts with no national prefix: those are
    already E.164 as written."""
    codes, pairs, prefix_re = _international_fast_path()
    code_list = list(codes)
    digits = pl.col("d")
    code = (
        pl.when(digits.str.slice(0, 1).is_in(code_list))
        .then(digits.str.slice(0, 1))
        .when(digits.str.slice(0, 2).is_in(code_list))
        .then(digits.str.slice(0, 2))
        .when(digits.str.slice(0, 3).is_in(code_list))
        .then(digits.str.slice(0, 3))
    )
    frame = pl.DataFrame({"d": number}).with_columns(code.alias("cc"))
    frame = frame.with_columns(digits.str.slice(pl.col("cc").str.len_bytes()).alias("n"))
    national = pl.col("n")
    length_pair = pl.col("cc") + pl.lit(":") + national.str.len_bytes().cast(pl.String)
    return frame.select(
        (
            pl.col("cc").is_not_null()
            & (pl.col("cc") != "1")
            & ~national.str.contains("[^0-9]")
            & ~national.str.contains(prefix_re)
            & length_pair.is_in(list(pairs))
        ).fill_null(False)
    ).to_series()


# ---------------------------------------------------------------- timestamps

_ISO_HEADS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
_OTHER_FORMATS: tuple[tuple[str, str], ...] = (
    ("naive", "%Y-%m-%d %H:%M"),
    ("naive", "%Y-%m-%dT%H:%M"),
    ("naive", "%m/%d/%Y %H:%M:%S"),
    ("naive", "%m/%d/%Y %H:%M"),
    ("naive", "%m/%d/%Y %I:%M %p"),
    ("naive", "%m/%d/%Y %I:%M:%S %p"),
    ("naive", "%m/%d/%y %H:%M:%S"),
    ("naive", "%m/%d/%y %H:%M"),
    ("naive", "%m/%d/%y %I:%M %p"),
    ("date", "%Y-%m-%d"),
    ("date", "%m/%d/%Y"),
    ("date", "%m/%d/%y"),
)
"""`%y`: the two-digit years a spreadsheet writes when it saves a CSV ("10/20/26 9:15"),
read as 20yy like `fields.parse_timestamp` reads them."""
_EARLIEST = datetime(1000, 1, 1)
"""Parsed times before this are not times: polars reads the year of "10/20/26" under `%Y`
as year 26, where Python's `%Y` wants four digits."""
_EARLIEST_UTC = _EARLIEST.replace(tzinfo=UTC)
_SUFFIX = re.compile(r"^(?:\.(\d{1,9}))?\s*(Z|UTC|GMT|[+-]\d\d(?::?\d\d)?)?$", re.IGNORECASE)


def _suffix_parts(suffix: str) -> tuple[int | None, int | None, bool]:
    """Fraction (µs) and UTC offset (s, None = zone-less) of what follows "HH:MM:SS"."""
    match = _SUFFIX.match(suffix)
    if not match:
        return None, None, False
    micros = int((match[1] or "0")[:6].ljust(6, "0"))
    zone = (match[2] or "").upper()
    if not zone:
        return micros, None, True
    if zone in ("Z", "UTC", "GMT"):
        return micros, 0, True
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    sign = -1 if zone[0] == "-" else 1
    return micros, sign * (hours * 3600 + minutes * 60), True


Zones = pl.Series | str
"""Each row's IANA zone, or one zone for every row (no column of a million copies)."""


def _zones_at(zones: Zones, rows: pl.Series) -> Zones:
    return zones if isinstance(zones, str) else zones.gather(rows)


def _localize(naive: pl.Series, zones: Zones) -> pl.Series:
    """Naive local times -> UTC, each in its row's zone (nonexistent local times -> null,
    ambiguous ones -> the earlier instant)."""
    if isinstance(zones, str):
        return _localize_one(naive, zones)
    distinct = zones.unique().to_list()
    if len(distinct) == 1:
        return _localize_one(naive, distinct[0])
    result = pl.Series(naive.name, dtype=UTC_DATETIME).extend_constant(None, len(naive))
    for zone in distinct:
        if zone is None:
            continue
        idx = (zones == zone).arg_true()
        result = result.scatter(idx, _localize_one(naive.gather(idx), zone))
    return result


def _zone_direct(naive: pl.Series, zone: str) -> pl.Series:
    return naive.dt.replace_time_zone(
        zone, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC")


_MAX_SEGMENTS = 12


def _localize_one(naive: pl.Series, zone: str) -> pl.Series:
    """Naive local times of one zone -> UTC, exactly as `replace_time_zone` would, with
    the zone's rules looked up per hour of the covered span instead of per value.

    An hour whose first and last microsecond have the same UTC offset (or are both
    nonexistent) has that offset throughout; consecutive such hours with the same offset
    form a segment and its rows are shifted by plain arithmetic. Hours with a change
    inside go through `replace_time_zone` value by value."""
    if zone == "UTC" or naive.len() < 10_000:
        return _zone_direct(naive, zone)
    lo, hi = naive.min(), naive.max()
    unit = naive.dtype.time_unit if isinstance(naive.dtype, pl.Datetime) else "us"
    if not isinstance(lo, datetime) or not isinstance(hi, datetime) or (hi - lo).days > 800:
        return _zone_direct(naive, zone)
    start = lo.replace(minute=0, second=0, microsecond=0)
    hours = pl.datetime_range(start, hi, "1h", time_unit=unit, eager=True)
    ends = hours + timedelta(microseconds=3_599_999_999)
    first = hours - _zone_direct(hours, zone).dt.replace_time_zone(None)
    last = ends - _zone_direct(ends, zone).dt.replace_time_zone(None)
    steady = ((first == last) | (first.is_null() & last.is_null())).fill_null(False)
    # Segments: (start hour, offset or None, exact?) wherever the state changes.
    grid = pl.DataFrame(
        {"h": hours, "o": pl.select(pl.when(steady).then(first)).to_series(), "x": ~steady}
    )
    changed = pl.struct("o", "x").ne_missing(pl.struct("o", "x").shift(1)).fill_null(True)
    segments = grid.filter(changed).rows()
    if len(segments) > _MAX_SEGMENTS:
        return _zone_direct(naive, zone)
    local = pl.col("t")
    off: Any = pl.lit(segments[-1][1], dtype=pl.Duration(unit))
    exact: Any = pl.lit(segments[-1][2])
    for (_, offset, is_exact), (nxt, _, _) in reversed(list(itertools.pairwise(segments))):
        off = pl.when(local < nxt).then(pl.lit(offset, dtype=pl.Duration(unit))).otherwise(off)
        exact = pl.when(local < nxt).then(pl.lit(is_exact)).otherwise(exact)
    out = pl.DataFrame({"t": naive}).select(
        (local - off).dt.replace_time_zone("UTC").alias("r"),
        exact.alias("x"),
    )
    result = out["r"].rename(naive.name)
    redo = out["x"] & naive.is_not_null()
    if redo.any():
        idx = redo.arg_true()
        result = result.scatter(idx, _zone_direct(naive.gather(idx), zone))
    return result


def _iso(text: pl.Series, zones: Zones, head_format: str) -> pl.Series | None:
    """ISO-like times: a fast fixed-width parse of the first 19 characters plus a
    per-distinct-value reading of the rest (fraction, offset). None if the rest varies
    too much to map cheaply."""
    if not bool((text.str.len_bytes() > 19).any()):
        # Nothing after the seconds (the usual export): one parse, zone-less.
        return _localize(text.str.to_datetime(head_format, strict=False, cache=False), zones)
    suffix = text.str.slice(19)
    distinct = suffix.unique()
    if distinct.len() > 5000:
        return None
    head = text.str.slice(0, 19).str.to_datetime(head_format, strict=False, cache=False)
    # Only suffixes after a readable head matter (the other rows stay null), so text
    # that is not a time at all does not force the several-shapes path below.
    used = suffix.filter(head.is_not_null()).unique()
    parts = {s: _suffix_parts(s) for s in used.drop_nulls().to_list()}
    shapes = {(p[0], p[1]) for p in parts.values() if p[2]}
    if len(shapes) <= 1:
        # One shape of suffix for the whole column (the usual case): scalar arithmetic.
        micros, offset = next(iter(shapes)) if shapes else (0, 0)
        ok_suffixes = [k for k, p in parts.items() if p[2]]
        local = head + timedelta(microseconds=micros or 0) if micros else head
        if len(ok_suffixes) != len(parts):
            local = pl.select(
                pl.when(pl.lit(suffix).is_in(ok_suffixes)).then(pl.lit(local))
            ).to_series()
        if offset is None:
            return _localize(local, zones)
        shifted = local - timedelta(seconds=offset) if offset else local
        return shifted.dt.replace_time_zone("UTC")
    micros_s = suffix.replace_strict(
        {k: p[0] for k, p in parts.items()}, default=None, return_dtype=pl.Int64
    )
    offset_s = suffix.replace_strict(
        {k: p[1] for k, p in parts.items()}, default=None, return_dtype=pl.Int64
    )
    valid = suffix.replace_strict(
        {k: p[2] for k, p in parts.items()}, default=False, return_dtype=pl.Boolean
    )
    frame = pl.DataFrame({"h": head, "us": micros_s, "off": offset_s, "ok": valid})
    local = frame.select(pl.col("h") + pl.duration(microseconds=pl.col("us"))).to_series()
    aware = frame.select(
        pl.when(pl.col("ok") & pl.col("off").is_not_null())
        .then((local - pl.duration(seconds=pl.col("off"))).dt.replace_time_zone("UTC"))
        .otherwise(None)
    ).to_series()
    naive_rows = frame["ok"] & frame["off"].is_null()
    if naive_rows.any():
        localized = _localize(local, zones)
        return pl.select(
            pl.when(pl.lit(naive_rows)).then(pl.lit(localized)).otherwise(pl.lit(aware))
        ).to_series()
    return aware


def _other(text: pl.Series, zones: Zones, kind: str, fmt: str) -> pl.Series:
    if kind == "date":
        parsed = text.str.to_date(fmt, strict=False).cast(pl.Datetime("us"))
    else:
        parsed = text.str.to_datetime(fmt, strict=False, time_unit="us", cache=False)
    if "%y" in fmt:  # two-digit years are 20yy (polars reads 70-99 as 19yy)
        century = pl.lit(parsed)
        parsed = pl.select(
            pl.when(century < datetime(2000, 1, 1))
            .then(century.dt.offset_by("100y"))
            .otherwise(century)
        ).to_series()
    return _localize(parsed, zones)


def _is_blank(text: pl.Series) -> pl.Series:
    return pl.select(
        (pl.lit(text).str.len_bytes() <= _LONGEST_BLANK) & pl.lit(text).str.contains(BLANK_RE)
    ).to_series()


def _sample(text: pl.Series, size: int = 200) -> pl.Series:
    """The first `size` given (not null, not blank) values."""
    given = text.drop_nulls()
    head = given.head(size * 4)
    head = head.filter(~_is_blank(head))
    if head.len() < size and given.len() > size * 4:
        head = given.filter(~_is_blank(given))
    return head.head(size)


class _Format(NamedTuple):
    """A way to read a time column: `kind` "exact" (`fmt` then exactly `suffix`),
    "iso" (`fmt` on the first 19 characters, the rest read apart), "naive" or "date"."""

    kind: str
    fmt: str
    suffix: str = ""


def _ranked_formats(sample: pl.Series, *, day_first: bool = False) -> list[_Format]:
    """Candidate formats that read some of `sample`, most hits first (formats that read as
    many keep their listed order). The sample's most common ISO shape, suffix included,
    goes first when it reads most of the sample: one exact parse then settles the usual
    column.

    Every format is scored in one query: a page of a hundred guests would otherwise pay
    for ten separate trial parses."""
    candidates = [_Format("iso", f) for f in _ISO_HEADS] + [
        _Format(kind, day_first_format(fmt) if day_first else fmt) for kind, fmt in _OTHER_FORMATS
    ]
    text = pl.lit(sample)

    def reads(how: _Format) -> pl.Expr:
        if how.kind == "iso":
            return text.str.slice(0, 19).str.to_datetime(how.fmt, strict=False)
        if how.kind == "date":
            return text.str.to_date(how.fmt, strict=False).cast(pl.Datetime("us"))
        # Naive times are counted before localizing: in UTC every one of them exists.
        return text.str.to_datetime(how.fmt, strict=False, time_unit="us", cache=False)

    counts = pl.select(
        (reads(how) >= _EARLIEST).sum().alias(str(i)) for i, how in enumerate(candidates)
    ).row(0)
    # A stable sort: formats that read as many keep their listed order.
    ranked = sorted(zip(counts, candidates, strict=True), key=lambda r: -r[0])
    found = [how for n, how in ranked if n > 0]
    suffix = _common_suffix(sample) if found and found[0].kind == "iso" else None
    return [_Format("exact", found[0].fmt, suffix), *found] if suffix is not None else found


def _common_suffix(sample: pl.Series) -> str | None:
    """The sample's most common text after the seconds, when at least half the sample
    has it and it is one `_suffix_parts` reads."""
    suffixes = sample.filter(sample.str.len_bytes() > 19).str.slice(19)
    if suffixes.len() * 2 < sample.len():
        return None
    top = suffixes.value_counts(sort=True).row(0)
    suffix, count = str(top[0]), int(top[1])
    if count * 2 < sample.len() or "%" in suffix or not _suffix_parts(suffix)[2]:
        return None
    return suffix


def _exact(text: pl.Series, zones: Zones, head_format: str, suffix: str) -> pl.Series:
    """Times of exactly `<19-character head><suffix>` (see `_common_suffix`): one parse
    and the suffix's fraction and offset applied as constants."""
    shaped = (text.str.len_bytes() == 19 + len(suffix)) & text.str.ends_with(suffix)
    parsed = text.str.strptime(pl.Datetime("us"), head_format + suffix, strict=False, cache=False)
    local = pl.select(pl.when(pl.lit(shaped)).then(pl.lit(parsed))).to_series()
    micros, offset, _ = _suffix_parts(suffix)
    if micros:
        local = local + timedelta(microseconds=micros)
    if offset is None:
        return _localize(local, zones)
    return (local - timedelta(seconds=offset)).dt.replace_time_zone("UTC")


TZ_UTC = "UTC"


def _parse_rest(text: pl.Series, zones: Zones, *, day_first: bool) -> pl.Series:
    """Values no format read, through `fields.parse_timestamp` once per (value, zone)."""
    zone_column = pl.lit(zones) if isinstance(zones, str) else zones
    pairs = pl.DataFrame({"t": text}).with_columns(z=zone_column)
    fixed: dict[tuple[str, str], Any] = {}
    for value, zone in pairs.unique().iter_rows():
        try:
            fixed[(value, zone)] = parse_timestamp(value, zone, day_first=day_first)
        except (InvalidValueError, ValueError, OverflowError):
            fixed[(value, zone)] = None
    return pl.Series([fixed[(v, z)] for v, z in pairs.iter_rows()], dtype=UTC_DATETIME)


def _parse_as(text: pl.Series, zones: Zones, how: _Format) -> pl.Series | None:
    parsed: pl.Series | None
    if how.kind == "exact":
        parsed = _exact(text, zones, how.fmt, how.suffix)
    elif how.kind == "iso":
        parsed = _iso(text, zones, how.fmt)
    else:
        parsed = _other(text, zones, how.kind, how.fmt)
    if parsed is None or not bool((parsed < _EARLIEST_UTC).any()):
        return parsed
    return pl.select(pl.when(pl.lit(parsed) >= _EARLIEST_UTC).then(pl.lit(parsed))).to_series()


_FEW_LEFT = 32
"""Values left after a format has read the rest, below which they go straight to
`fields.parse_timestamp` (one call each, about 20 µs) rather than through more trial
formats (a millisecond or more each, whatever the number of rows)."""


def day_first_dates(raw: pl.Series) -> bool:
    """Whether a column's slash dates are day/month/year (20/10/2026, as spreadsheets and
    platforms write them in most of the world): some value reads only so and none only
    month first. A column that reads either way is month first, as US exports are; one
    with both kinds is month first too, and its day-first values are unparseable."""
    text = raw.cast(pl.String)
    if not bool(_sample(text).str.contains("/", literal=True).any()):
        return False  # no slash dates (the usual ISO column): nothing to decide
    if not bool(text.str.contains(_ONLY_DAY_FIRST).any()):
        return False
    return not bool(text.str.contains(_ONLY_MONTH_FIRST).any())


_ONLY_DAY_FIRST = r"^\s*(?:1[3-9]|2\d|3[01])/(?:0?[1-9]|1[0-2])/\d"
_ONLY_MONTH_FIRST = r"^\s*(?:0?[1-9]|1[0-2])/(?:1[3-9]|2\d|3[01])/\d"


def parse_time_series(
    raw: pl.Series, zones: Zones, day_first: bool | None = None
) -> tuple[pl.Series, pl.Series]:
    """Text timestamps -> (UTC datetimes, present): null where absent or unparseable;
    `present` marks values that were given (so present & null = unparseable).
    `day_first`: how slash dates read (`day_first_dates` of the column when None; callers
    that split a column decide for the whole of it first).

    Zone-less values take their row's zone. Each candidate format that parses some of a
    sample runs only on the rows still unparsed, so a clean column costs one fast parse;
    what remains goes once per distinct (value, zone) through `fields.parse_timestamp`.
    Blank answers never parse, so whether a value is blank is only asked of the values
    that did not."""
    text = raw.cast(pl.String)
    if day_first is None:
        day_first = day_first_dates(text)
    result = pl.Series(text.name, dtype=UTC_DATETIME).extend_constant(None, len(text))
    # Empty text is absent, like null (exports write absent times as empty cells).
    present = (text.str.len_bytes() > 0).fill_null(False)
    remaining = present
    tried = False
    for how in _ranked_formats(_sample(text), day_first=day_first):
        unread = int(remaining.sum())
        if unread == 0 or (tried and unread <= _FEW_LEFT):
            break  # a few odd values are cheaper read one by one than by trying formats
        tried = True
        everything = bool(remaining.all())
        idx = None if everything else remaining.arg_true()
        subset = text if idx is None else text.gather(idx)
        sub_zones = zones if idx is None else _zones_at(zones, idx)
        parsed = _parse_as(subset, sub_zones, how)
        if parsed is None:
            continue
        if idx is None:
            result = parsed.rename(text.name)
        else:
            ok = parsed.is_not_null()
            if ok.any():
                result = result.scatter(idx.filter(ok), parsed.filter(ok))
        remaining = remaining & result.is_null()
    if remaining.any():
        idx = remaining.arg_true()
        left = text.gather(idx)
        blank = _is_blank(left)
        present = present.scatter(idx.filter(blank), False)
        idx, left = idx.filter(~blank), left.filter(~blank)
        values = _parse_rest(left, _zones_at(zones, idx), day_first=day_first)
        ok = values.is_not_null()
        if ok.any():
            result = result.scatter(idx.filter(ok), values.filter(ok))
    return result, present
