"""Field-level cleaners shared by every source: emails, phones, names, timestamps."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import polars as pl

EMAIL_RE = r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]+)+$"
"""A lower-case address, as the column cleaner (`common._clean_emails`) and
`normalize_email` both test it."""
NAMED_ADDRESS_RE = r"<\s*([^<>\s]+@[^<>\s]+)\s*>\s*$"
"""The address of a `Name <address>` value (a mail client's form, pasted into a form)."""
_EMAIL = re.compile(EMAIL_RE)
_NAMED_ADDRESS = re.compile(NAMED_ADDRESS_RE)
_BLANKS = {"", "no answer provided.", "n/a", "na", "none", "null", "-"}


class InvalidValueError(ValueError):
    """A field that is present but cannot be normalized; the record is quarantined."""


def text_or_none(value: object) -> str | None:
    """A JSON scalar as text; None, objects and lists as None (a side file or an API
    that puts a list where a name belongs must not fail the import)."""
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def blank_to_none(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text.lower() in _BLANKS else text


def normalize_email(value: object) -> str | None:
    """Lower-cases and validates (`Name <address>` gives its address; angle brackets and
    `mailto:` go); an unparseable address raises (the field is nulled and listed)."""
    text = blank_to_none(value)
    if text is None:
        return None
    named = _NAMED_ADDRESS.search(text)
    text = (named.group(1) if named else text).strip("<> \t").lower().removeprefix("mailto:")
    text = blank_to_none(text)
    if text is None:
        return None
    if not _EMAIL.match(text):
        raise InvalidValueError(f"unparseable email {text!r}")
    return text


def normalize_phone(value: object, default_region: str = "US") -> str | None:
    """E.164, or None when the text is not a plausible number (phones are optional evidence)."""
    text = blank_to_none(value)
    if text is None:
        return None
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def split_name(
    full: str | None, first: str | None = None, last: str | None = None
) -> tuple[str | None, str | None]:
    """First and last name, preferring the source's own split. A full name is split at
    its last word ("Smith, Bob" the other way); the words of each part are joined by
    single spaces, and a part that reads as a blank answer ("n/a Smith") is null."""
    first, last = blank_to_none(first), blank_to_none(last)
    if first or last:
        return first, last
    full = blank_to_none(full)
    if not full:
        return None, None
    if "," in full:  # "Smith, Bob"
        surname, _, given = full.partition(",")
        return blank_to_none(" ".join(given.split())), blank_to_none(" ".join(surname.split()))
    parts = full.split()
    if len(parts) == 1:
        return parts[0], None
    return blank_to_none(" ".join(parts[:-1])), blank_to_none(parts[-1])


def parse_timestamp(
    value: object, tz: str | None = None, *, day_first: bool = False
) -> datetime | None:
    """Parses ISO 8601 and common export formats into UTC; zone-less times take `tz`.
    `day_first`: slash dates are day/month/year (the column they come from says so, see
    `columns.day_first_dates`); otherwise month/day/year, as US exports write them."""
    text = blank_to_none(value)
    if text is None:
        return None
    text = text.replace("Z", "+00:00")
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        for fmt in (
            "%m/%d/%Y %H:%M:%S",
            "%m/%d/%Y %H:%M",
            "%m/%d/%Y %I:%M %p",
            "%m/%d/%Y %I:%M:%S %p",
            "%m/%d/%Y",
            "%m/%d/%y %H:%M:%S",
            "%m/%d/%y %H:%M",
            "%m/%d/%y %I:%M %p",
            "%m/%d/%y",
            "%Y-%m-%d %H:%M:%S%z",
            "%B %d, %Y %I:%M %p",
            "%b %d, %Y %I:%M %p",
        ):
            try:
                parsed = datetime.strptime(text, day_first_format(fmt) if day_first else fmt)
            except ValueError:
                continue
            if "%y" in fmt and parsed.year < 2000:  # a spreadsheet's "10/20/26": 20yy
                parsed = parsed.replace(year=parsed.year + 100)
            break
    if parsed is None or parsed.year < 1000:
        raise InvalidValueError(f"unparseable timestamp {text!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz) if tz else UTC)
    return parsed.astimezone(UTC)


def day_first_format(fmt: str) -> str:
    """The day/month/year form of a month/day/year format."""
    return fmt.replace("%m/%d/", "%d/%m/")


def event_zone(name: object) -> tuple[str, str | None]:
    """(the zone an event's local times are read in, a note when `name` is not a zone
    both Python and polars know). A mistyped zone in a side file ("America/NewYork")
    then reads the event's times as UTC and says so, instead of failing the import."""
    text = blank_to_none(name)
    if text is None:
        return "UTC", None
    if _known_zone(text):
        return text, None
    return "UTC", f"unknown time zone {text!r}: its local times are read as UTC"


@functools.lru_cache(maxsize=256)
def _known_zone(name: str) -> bool:
    if len(name) > _LONGEST_ZONE:  # the zone database looks names up as file paths
        return False
    try:
        ZoneInfo(name)
        pl.Series([None], dtype=pl.Datetime("us")).dt.replace_time_zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, pl.exceptions.PolarsError):
        return False
    return True


_LONGEST_ZONE = 64
"""Longer than any IANA zone name ("America/Argentina/ComodRivadavia" is 32)."""


def parse_time_or_none(value: object, tz: str) -> datetime | None:
    """`parse_timestamp`, with an unreadable value as None (event metadata: an event
    keeps its guests when its start cannot be read)."""
    try:
        return parse_timestamp(value, tz)
    except ValueError:
        return None
