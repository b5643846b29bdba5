from datetime import UTC, datetime

import pytest

from domain.normalize.fields import (
    InvalidValueError,
    event_zone,
    normalize_email,
    normalize_phone,
    parse_timestamp,
    split_name,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Bob@Gmail.COM ", "bob@gmail.com"),
        ("<a.b@x.io>", "a.b@x.io"),
        ("Bob Smith <Bob@Gmail.com>", "bob@gmail.com"),  # a mail client's form
        ('"Ng, Cy" < cy@ng.io >', "cy@ng.io"),
        ("MAILTO:Di@x.io", "di@x.io"),
        ("<n/a>", None),
        ("", None),
        (None, None),
        ("No answer provided.", None),
    ],
)
def test_normalize_email(raw: str | None, expected: str | None) -> None:
    assert normalize_email(raw) == expected


def test_unparseable_email_raises() -> None:
    with pytest.raises(InvalidValueError, match="unparseable email"):
        normalize_email("broken-at-example")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(212) 555-0199", "+12125550199"),
        ("+44 20 7946 0958", "+442079460958"),
        ("12", None),
        ("", None),
    ],
)
def test_normalize_phone(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("full", "first", "last", "expected"),
    [
        ("Bob Smith", None, None, ("Bob", "Smith")),
        ("Smith, Bob", None, None, ("Bob", "Smith")),
        ("Mary Ann van Dyke", None, None, ("Mary Ann van", "Dyke")),
        ("Cher", None, None, ("Cher", None)),
        ("Jo\nAnn  Lee", None, None, ("Jo Ann", "Lee")),
        ("van  Dyke ,  Mary\tAnn", None, None, ("Mary Ann", "van Dyke")),
        ("none Smith", None, None, (None, "Smith")),
        ("Ann n/a", None, None, ("Ann", None)),
        ("ignored", "Ann", "Lee", ("Ann", "Lee")),
    ],
)
def test_split_name(
    full: str, first: str | None, last: str | None, expected: tuple[str | None, str | None]
) -> None:
    assert split_name(full, first, last) == expected


def test_zone_less_time_takes_event_zone() -> None:
    # 13:26 in New York (EDT, UTC-4) is 17:26 UTC.
    assert parse_timestamp("2026-09-02 13:26:51", "America/New_York") == datetime(
        2026, 9, 2, 17, 26, 51, tzinfo=UTC
    )


def test_iso_with_z_is_utc() -> None:
    assert parse_timestamp("2026-10-08T15:05:12.000Z") == datetime(
        2026, 10, 8, 15, 5, 12, tzinfo=UTC
    )


def test_broken_time_raises() -> None:
    with pytest.raises(InvalidValueError):
        parse_timestamp("not-a-date")


@pytest.mark.parametrize(
    ("name", "zone", "noted"),
    [
        ("America/New_York", "America/New_York", False),
        ("Europe/London", "Europe/London", False),
        (None, "UTC", False),
        ("  ", "UTC", False),
        ("America/NewYork", "UTC", True),
        ("EST5EDT-ish", "UTC", True),
        ("../../etc/passwd", "UTC", True),
        ("Europe/" + "x" * 300, "UTC", True),  # once "File name too long" from zoneinfo
        ("x" * 40, "UTC", True),
    ],
)
def test_event_zones_are_ones_python_and_polars_know(
    name: str | None, zone: str, noted: bool
) -> None:
    got, note = event_zone(name)
    assert got == zone and (note is not None) == noted
    if note:
        assert repr(name) in note
