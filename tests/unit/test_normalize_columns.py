"""The vectorized column cleaners agree with the scalar ones in `fields`, value for value."""

import csv
import io
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.normalize.columns import (
    _localize_one,
    clean,
    clean_frame,
    day_first_dates,
    normalize_phones,
    parse_time_series,
)
from domain.normalize.common import split_full_names, via_distinct
from domain.normalize.fields import normalize_email, normalize_phone, parse_timestamp, split_name
from domain.normalize.luma import normalize_luma_csv
from ingest.exports import read_csv_text


def _phone_samples() -> list[str | None]:
    rng = random.Random(11)
    out: list[str | None] = [
        None,
        "",
        "  ",
        "No answer provided.",
        "12",
        "abc",
        "+1 (212) 555-0101 x12",
        "212\t555 0101",
        "(212)\u2009555-0101",
        "+44\u00a020 7946 0958",
        "+1 212 555 0101",
        "1-212-555-0101",
        "+ 1 (212) 555-0101",
        "+(212) 555-0101",
        "212-555-01011",
        " (212) 555-0101 ",
        "\t212-555-0101",
        " +44 20 7946 0958\t",
        "\t",
    ]
    for _ in range(400):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 13)))
        cc = rng.choice(
            ["", "+1", "+44", "+49", "+33", "+91", "+61", "+86", "+7", "+39", "+234", "+0", "1"]
        )
        sep = rng.choice(["", " ", "-", "."])
        body = sep.join([digits[:3], digits[3:6], digits[6:]])
        out.append(f"{cc}{rng.choice(['', ' '])}{body}")
        out.append(f"({digits[:3]}) {digits[3:6]}-{digits[6:10]}")
    return out


@pytest.mark.parametrize("column", ["mixed", "layouts", "repeated"])
def test_phones_match_phonenumbers(column: str) -> None:
    values = _phone_samples()
    if column == "repeated":  # what North American numbers leave is read per distinct value
        values = [v for v in values if v is None or not v.startswith("(")] * 4
    if column == "layouts":
        # A column written in a few North American layouts, with near misses: a
        # digit's place holding a separator, a letter, one digit short.
        rng = random.Random(5)
        written = []
        for _ in range(300):
            d = "".join(rng.choice("0123456789") for _ in range(10))
            d = rng.choice("23456789") + d[1:]
            written += [f"1-{d[:3]}-{d[3:6]}-{d[6:]}", f"+1 {d[:3]} {d[3:6]} {d[6:]}"]
        written += [" -212-555-0101", "2-12 -555-0101", "1-212-555-010a", "+1 212 555 010"]
        written += ["+1 212.555 0101", "(1-212-555-0101", "1-212-555--101", "1-212-5550-101"]
        values = written + values
    fast = normalize_phones(pl.Series(values, dtype=pl.String)).to_list()
    slow = [normalize_phone(v) for v in values]
    mismatches = [(v, f, s) for v, f, s in zip(values, fast, slow, strict=True) if f != s]
    assert mismatches == []


@pytest.mark.parametrize(
    "value",
    [
        "2026-10-08T15:05:12.000Z",
        "2026-10-08T15:05:12Z",
        "2026-10-08T15:05:12.123456+02:00",
        "2026-10-08 15:05:12-04:00",
        "2026-10-08 15:05:12",
        "2026-10-08T15:05:12",
        "2026-10-08 15:05",
        "10/08/2026 15:05",
        "10/08/2026 3:05 PM",
        "2026-10-08",
        "October 8, 2026 3:05 PM",
        "10/08/26 15:05",  # a spreadsheet's two-digit year
        "10/08/26 3:05 PM",
        "10/08/26",
        "01/01/69 00:00",  # 2069 on both paths (Python's own %y would say 1969)
        "0026-10-08 15:05:12",  # not a time of this era
        "2026-03-08 02:30:00",  # does not exist in New York (spring forward)
        " 2026-10-08T15:05:12Z ",
    ],
)
def test_times_match_scalar_parser(value: str) -> None:
    zone = "America/New_York"
    parsed, present = parse_time_series(pl.Series([value, None]), pl.Series([zone, zone]))
    assert present.to_list() == [True, False]
    try:
        expected = parse_timestamp(value, zone)
    except ValueError:
        expected = None
    got = parsed[0]
    if value.startswith("2026-03-08 02:30"):
        # Nonexistent local time: the vectorized path refuses it rather than guessing.
        assert got is None or got == expected
    else:
        assert got == expected


def test_a_spreadsheets_two_digit_years_are_this_century() -> None:
    """A report saved from a spreadsheet writes "10/20/26 9:15"; polars' %Y would read
    year 26 and Python's %y 1969-1999 for 69-99: both paths read 20yy."""
    values = ["10/20/26 9:15"] * 40 + ["12/31/99 23:00", "10/20/2026 9:15"]
    parsed, present = parse_time_series(pl.Series(values), "America/New_York")
    assert present.all()
    assert parsed.to_list() == (
        [datetime(2026, 10, 20, 13, 15, tzinfo=UTC)] * 40
        + [datetime(2100, 1, 1, 4, 0, tzinfo=UTC), datetime(2026, 10, 20, 13, 15, tzinfo=UTC)]
    )
    assert parse_timestamp("12/31/99 23:00", "UTC") == datetime(2099, 12, 31, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "expected_days"),
    [
        # Day first: some value reads only so (20/10), so 05/10 is 5 October.
        (["20/10/2026 09:15", "05/10/2026 09:15", "05/10/26"], [(10, 20), (10, 5), (10, 5)]),
        # Month first, as US exports write them.
        (["10/20/2026 09:15", "10/05/2026 09:15"], [(10, 20), (10, 5)]),
        # Either way: month first.
        (["05/10/2026 09:15", "03/04/2026"], [(5, 10), (3, 4)]),
        # Both kinds in one column: month first, and what reads only day first is unparseable.
        (["20/10/2026 09:15", "10/20/2026 09:15"], [None, (10, 20)]),
    ],
)
def test_slash_dates_read_in_the_order_their_column_shows(
    values: list[str], expected_days: list[tuple[int, int] | None]
) -> None:
    zone = "Europe/London"
    parsed, present = parse_time_series(pl.Series(values), zone)
    assert present.all()
    local = [None if v is None else v.astimezone(ZoneInfo(zone)) for v in parsed.to_list()]
    assert [None if v is None else (v.month, v.day) for v in local] == expected_days
    # The scalar parser, told the column's order, reads each value alike.
    day_first = day_first_dates(pl.Series(values))

    def scalar(value: str) -> datetime | None:
        try:
            return parse_timestamp(value, zone, day_first=day_first)
        except ValueError:
            return None

    assert parsed.to_list() == [scalar(v) for v in values]


_EMAILS = [
    "bob@gmail.com",
    " Bob@Gmail.COM ",
    "Bob Smith <Bob@Gmail.com>",
    '"Ng, Cy" <cy@ng.io>',
    "<amy@x.io>",
    "mailto:di@x.io",
    "ed@x.io;ed2@x.io",
    "Gi AT x.io",
    "No answer provided.",
    "<n/a>",
    "a <b> c@d.io",
]


def test_emails_in_a_column_read_as_the_scalar_cleaner_reads_them() -> None:
    """Kept emails equal `fields.normalize_email`; one it refuses is nulled and listed
    with the text as received (not a cleaned form of it)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["guest_id", "name", "email", "approval_status"])
    writer.writerows([f"g{i}", f"Guest {i}", e, "approved"] for i, e in enumerate(_EMAILS))
    frame = read_csv_text(out.getvalue().encode())
    batch = normalize_luma_csv(frame, {"api_id": "e1", "name": "E", "timezone": "UTC"}, "x.csv")
    kept = dict(batch.observations.select("observation_id", "email").iter_rows())
    issues = dict(batch.field_issues.select("record_index", "raw").iter_rows())
    for i, value in enumerate(_EMAILS):
        try:
            expected = normalize_email(value)
        except ValueError:
            assert kept[f"luma:g{i}"] is None and issues[i] == value
            continue
        assert kept[f"luma:g{i}"] == expected and i not in issues


def test_times_mixed_column_and_zones() -> None:
    values = [
        "2026-10-08T15:05:12.000Z",
        "2026-10-08 11:05:12",
        "garbage",
        "No answer provided.",
        None,
    ]
    zones = ["UTC", "America/New_York", "UTC", "UTC", "UTC"]
    parsed, present = parse_time_series(pl.Series(values), pl.Series(zones))
    target = datetime(2026, 10, 8, 15, 5, 12, tzinfo=UTC)
    assert parsed.to_list() == [target, target, None, None, None]
    assert present.to_list() == [True, True, True, False, False]


def test_clean_frame_only_touches_columns_that_need_it() -> None:
    frame = pl.DataFrame(
        {
            "a": [" a ", "No answer provided.", "n/a", "", None, "keep", "\tx"],
            "b": ["x", "y", "z", "w", "v", "u", "t"],
        }
    )
    exprs = clean_frame(frame, ["a", "b"])
    assert len(exprs) == 1
    assert frame.with_columns(exprs)["a"].to_list() == ["a", None, None, None, None, "keep", "x"]


def test_name_split_matches_scalar() -> None:
    names = ["Bob Smith", "Smith, Bob", "Mary Ann van Dyke", "Cher", "  Zoë   Ä  ", "a\tb"]
    names += ["x\u00a0y", "Lee,", ",Ann", "Ann ,Lee", "Ünal Öz", "Dr. J. R. R. Tolkien"]
    names += ["Jo\nAnn  Lee", "van  Dyke ,  Mary\tAnn", "none Smith", "Ann n/a"]
    given, surname = split_full_names(pl.Series(names))
    for name, g, s in zip(names, given.to_list(), surname.to_list(), strict=True):
        assert (g, s) == split_name(name)


_NAME_WORDS = ["Ann", "Lee", "n/a", "none", "NA", "-", "Zoë", "O'Neil", "van", "x,y", ","]
_NAME_SPACES = [" ", "  ", "\t", "\n", "\u00a0", "\u3000", " \n ", "\u2009", "\u2028"]


@st.composite
def _full_names(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(_NAME_WORDS), min_size=1, max_size=4))
    text = draw(st.sampled_from(["", " ", "\t"])) + words[0]
    for word in words[1:]:
        text += draw(st.sampled_from(_NAME_SPACES)) + word
    return text + draw(st.sampled_from(["", " ", "\n"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_full_names(), min_size=1, max_size=20))
def test_name_split_follows_the_scalar_rules(names: list[str]) -> None:
    """Blank-looking parts, runs and kinds of white space, commas: the pipeline's split
    of cleaned names is `split_name`'s."""
    cleaned = pl.select(clean(pl.lit(pl.Series(names, dtype=pl.String)))).to_series()
    given_names, surnames = split_full_names(cleaned)
    for name, g, s in zip(names, given_names.to_list(), surnames.to_list(), strict=True):
        assert (g, s) == split_name(name), repr(name)


def test_via_distinct_maps_each_value_once() -> None:
    calls: list[int] = []

    def upper(s: pl.Series) -> pl.DataFrame:
        calls.append(s.len())
        return pl.DataFrame({"u": s.str.to_uppercase()})

    values = pl.Series(["a", "b", "a", None] * 10)
    assert via_distinct(values, upper)["u"].to_list() == ["A", "B", "A", None] * 10
    assert calls == [2]


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "Europe/London"]
)
def test_localizing_by_hour_segments_matches_replace_time_zone(zone: str) -> None:
    # Random times over a year plus every minute of both DST change days, so segments,
    # nonexistent hours, ambiguous hours and half-hour shifts all occur.
    rng = random.Random(5)
    start = datetime(2026, 1, 1)
    values: list[datetime | None] = [
        start + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(20_000)
    ]
    naive = pl.concat(
        [
            pl.Series([*values, None], dtype=pl.Datetime("us")),
            pl.datetime_range(datetime(2026, 3, 8), datetime(2026, 3, 9), "1m", eager=True),
            pl.datetime_range(datetime(2026, 11, 1), datetime(2026, 11, 2), "1m", eager=True),
            pl.datetime_range(datetime(2026, 4, 5), datetime(2026, 4, 6), "1m", eager=True),
            pl.datetime_range(datetime(2026, 10, 4), datetime(2026, 10, 5), "1m", eager=True),
        ]
    )
    expected = naive.dt.replace_time_zone(
        zone, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC")
    assert _localize_one(naive, zone).to_list() == expected.to_list()


def test_clean_frame_probe_by_distinct_values_sees_late_rows() -> None:
    # The first rows repeat (probed by distinct value); the values needing work come late.
    frame = pl.DataFrame(
        {
            "status": ["going"] * 5000 + [" going ", "N/A"],
            "company": ["Acme"] * 5002,
        }
    )
    exprs = clean_frame(frame, ["status", "company"])
    assert [e.meta.output_name() for e in exprs] == ["status"]
    cleaned = frame.with_columns(exprs)["status"].to_list()
    assert cleaned[-2:] == ["going", None] and cleaned[0] == "going"


def test_iso_times_ignore_suffixes_of_unreadable_text() -> None:
    zones = pl.Series(["America/New_York"] * 4)
    raw = pl.Series(["2026-10-02T09:14:22.000Z", "yesterday", "2026-10-02T09:14:22", None])
    parsed, present = parse_time_series(raw, zones)
    assert parsed.to_list() == [
        datetime(2026, 10, 2, 9, 14, 22, tzinfo=UTC),
        None,
        datetime(2026, 10, 2, 13, 14, 22, tzinfo=UTC),
        None,
    ]
    assert present.to_list() == [True, True, True, False]


def test_finish_gives_the_same_batch_with_and_without_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np

    from bench.normalize import PLATFORMS
    from domain.normalize import common

    for name, (make, normalize) in PLATFORMS.items():
        frame = make(np.random.default_rng(3), 3000)
        monkeypatch.setattr(common, "_PARALLEL_ROWS", 10**9)
        one_by_one = normalize(frame)
        monkeypatch.setattr(common, "_PARALLEL_ROWS", 0)
        side_by_side = normalize(frame)
        for part in ("observations", "attendance", "quarantine", "field_issues"):
            assert getattr(one_by_one, part).equals(getattr(side_by_side, part)), (name, part)
        assert one_by_one.reconciles and side_by_side.reconciles


def test_one_zone_for_all_rows_reads_like_a_column_of_it() -> None:
    values = [
        "2026-10-08 11:05:12",
        "2026-11-01 01:30:00",  # ambiguous in New York: the earlier instant
        "2026-10-08T15:05:12.000Z",
        "10/08/2026 3:05 PM",
        "October 8, 2026 3:05 PM",
        "garbage",
        "",
        None,
    ] * 3
    zone = "America/New_York"
    text = pl.Series(values, dtype=pl.String)
    by_column = parse_time_series(text, pl.Series([zone] * len(values)))
    by_name = parse_time_series(text, zone)
    assert by_name[0].to_list() == by_column[0].to_list()
    assert by_name[1].to_list() == by_column[1].to_list()
    assert by_name[0].null_count() == 9  # garbage, empty and null, three times


_SHAPES = [
    "2026-10-08T15:05:12.000Z",
    "2026-10-08 15:05:12",
    "2026-10-08 15:05",
    "10/08/2026 3:05 PM",
    "2026-10-08",
    "October 8, 2026",
    "10/08/26 15:05",
    "10/08/26",
    "0026-10-08 15:05:12",
    "garbage",
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(_SHAPES), min_size=1, max_size=40))
def test_formats_scored_in_one_query_rank_as_trial_parses_do(sample: list[str]) -> None:
    """Scoring every format in one query ranks them as parsing the sample with each (as
    the column is then read) would: most hits first, ties in listed order, the exact
    shape of the top ISO format before it."""
    from domain.normalize import columns as c

    text = pl.Series(sample, dtype=pl.String)
    candidates = [c._Format("iso", f) for f in c._ISO_HEADS] + [
        c._Format(*f) for f in c._OTHER_FORMATS
    ]
    utc = pl.Series(["UTC"] * len(sample))

    def hits(how: c._Format) -> int:
        # A year before 1000 is not a read: polars' %Y takes "26" as year 26.
        if how.kind == "iso":
            parsed = text.str.slice(0, 19).str.to_datetime(how.fmt, strict=False)
            return int((parsed.dt.year() >= 1000).sum())
        parsed = c._other(text, utc, how.kind, how.fmt)
        return int((parsed.dt.year() >= 1000).sum())

    scored = [(hits(how), how) for how in candidates]
    expected = [how for n, how in sorted(scored, key=lambda r: -r[0]) if n > 0]
    if expected and expected[0].kind == "iso":
        suffix = c._common_suffix(text)
        if suffix is not None:
            expected = [c._Format("exact", expected[0].fmt, suffix), *expected]
    assert list(c._ranked_formats(text)) == expected


def test_a_column_of_one_shape_is_read_by_that_shape_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No other format is tried on a column its top format reads entirely (a page of a
    hundred guests used to pay for ten trial parses)."""
    from domain.normalize import columns as c

    tried: list[str] = []
    real_other = c._other

    def counting(*args: object) -> pl.Series:
        tried.append(str(args[-1]))
        return real_other(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(c, "_other", counting)
    values = [f"2026-10-{d:02d}T15:05:12.000Z" for d in range(1, 29)] * 4
    parsed, present = parse_time_series(pl.Series(values), "UTC")
    assert parsed.null_count() == 0 and present.all()
    assert tried == []  # the ISO shape read everything: no date or naive format tried


def test_a_few_odd_values_in_a_column_read_as_the_scalar_parser_reads_them() -> None:
    zone = "America/New_York"
    odd = ["10/08/2026 3:05 PM", "2026-10-08 15:05", "October 8, 2026 3:05 PM", "garbage"]
    values = [f"2026-10-{d:02d}T15:05:12.000Z" for d in range(1, 29)] * 3 + odd
    parsed, present = parse_time_series(pl.Series(values), zone)

    def scalar(value: str) -> datetime | None:
        try:
            return parse_timestamp(value, zone)
        except ValueError:
            return None

    assert parsed.to_list() == [scalar(v) for v in values]
    assert present.all()
