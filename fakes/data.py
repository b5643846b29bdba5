"""Seeded community data for the fake platforms: one population seen through Luma and Eventbrite.

The same people attend on both platforms under slightly different names and emails
(nicknames, typos, work vs personal address), bring plus-ones, fail to show up and cancel,
so the data exercises identity resolution the way real exports do. Everything derives from
the seed and a fixed anchor date, never from the wall clock, so two runs with the same seed
serve byte-identical pages.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

FIRST_NAMES: dict[str, list[str]] = {
    "Robert": ["Bob", "Rob", "Bobby"],
    "William": ["Bill", "Will", "Liam"],
    "Elizabeth": ["Liz", "Beth", "Lizzie"],
    "Katherine": ["Kate", "Katie", "Kat"],
    "Michael": ["Mike", "Mikey"],
    "Alexander": ["Alex", "Sasha"],
    "Jennifer": ["Jen", "Jenny"],
    "Christopher": ["Chris"],
    "Margaret": ["Maggie", "Meg"],
    "Jonathan": ["Jon", "Johnny"],
    "Samantha": ["Sam"],
    "Daniel": ["Dan", "Danny"],
    "Rebecca": ["Becca", "Becky"],
    "Nicholas": ["Nick"],
    "Victoria": ["Vicky", "Tori"],
    "Priya": [],
    "Wei": [],
    "Aisha": [],
    "Mateo": [],
    "Olga": [],
    "Kwame": [],
    "Yuki": [],
    "Fatima": [],
    "Lena": [],
    "Jordan": [],
    "Diego": [],
    "Amara": [],
    "Noah": [],
    "Ingrid": [],
    "Ravi": [],
    "Chloé": [],
    "José": [],
    "Siobhan": [],
    "Tomasz": [],
    "Mei": [],
}
LAST_NAMES = [
    "Smith", "Chen", "Okafor", "Fischer", "Raman", "O'Neil", "García", "Nguyen", "Kowalski",
    "Haddad", "Müller", "Tanaka", "Johnson", "Patel", "Silva", "Andersson", "Mensah", "Rossi",
    "Kim", "Novak", "Dubois", "Ivanova", "Hernández", "Murphy", "Lee", "Cohen", "Adeyemi",
    "Larsen", "Park", "Moreau", "Schmidt", "Costa", "Khan", "Yilmaz", "Walsh", "Brennan",
]  # fmt: skip
COMPANIES = [
    "Acme Robotics", "Chen Labs", "Northwind", "Globex", "Initech", "Hooli", "Umbrella Bio",
    "Stark Analytics", "Wayne Ventures", "Tyrell Systems", "Soylent Foods", "Pied Piper",
]  # fmt: skip
TITLES = ["Founder", "CTO", "Engineer", "Designer", "Product Manager", "Investor", "Researcher"]
PERSONAL_DOMAINS = ["gmail.com", "outlook.com", "proton.me", "yahoo.com", "icloud.com"]
CITIES = [("New York", "NY", "United States"), ("Brooklyn", "NY", "United States")]
EVENT_KINDS = [
    "Founders Breakfast",
    "AI Builders Night",
    "Design Critique",
    "Climate Tech Meetup",
    "Demo Day",
    "Open Source Saturday",
    "Investor Office Hours",
    "Product Roundtable",
]


def iso_ms(ts: datetime) -> str:
    """Luma's timestamp style: ISO 8601 UTC with milliseconds and a Z."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def iso_s(ts: datetime) -> str:
    """Eventbrite's timestamp style: ISO 8601 UTC to the second with a Z."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Person:
    pid: int
    first: str
    last: str
    personal_email: str
    work_email: str | None
    phone: str | None
    company: str | None
    title: str | None
    instagram: str | None
    linkedin: str | None
    weight: float  # how often this person turns up


@dataclass
class WorldConfig:
    seed: int = 7
    start: date = date(2026, 9, 1)
    days: int = 120
    people: int = 400
    luma_events: int = 24
    eventbrite_events: int = 16
    guests_per_event: tuple[int, int] = (15, 60)
    bad_record_rate: float = 0.01  # records with an unusable email, to be quarantined
    luma_calendar_id: str = "cal-community"
    eventbrite_org_id: str = "1001"
    # Nothing happens after this moment: no check-ins at future events, no future `changed`.
    # None = the wall clock when the world is built.
    now: datetime | None = None

    def clock(self) -> datetime:
        return self.now or datetime.now(UTC)


@dataclass
class World:
    config: WorldConfig
    people: list[Person]
    luma_events: list[dict[str, Any]] = field(default_factory=list)
    luma_guests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    eventbrite_events: list[dict[str, Any]] = field(default_factory=list)
    eventbrite_attendees: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def luma_guest_count(self) -> int:
        return sum(len(v) for v in self.luma_guests.values())

    @property
    def eventbrite_attendee_count(self) -> int:
        return sum(len(v) for v in self.eventbrite_attendees.values())


def _ascii(text: str) -> str:
    table = str.maketrans("éáíóúüñçÉÁÍÓÚÜÑÇ'", "eaiouuncEAIOUUNC ")
    return text.translate(table).replace(" ", "").lower()


def _typo(rng: random.Random, name: str) -> str:
    if len(name) < 4:
        return name
    i = rng.randrange(1, len(name) - 1)
    kind = rng.random()
    if kind < 0.4:
        return name[:i] + name[i + 1 :]  # dropped letter
    if kind < 0.8:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]  # swapped letters
    return name[:i] + name[i] + name[i:]  # doubled letter


def make_people(rng: random.Random, n: int) -> list[Person]:
    firsts = list(FIRST_NAMES)
    people = []
    for pid in range(n):
        first = rng.choice(firsts)
        last = rng.choice(LAST_NAMES)
        handle = f"{_ascii(first)}.{_ascii(last)}"
        if rng.random() < 0.3:
            handle += str(rng.randint(1, 99))
        company = rng.choice(COMPANIES) if rng.random() < 0.7 else None
        work = f"{_ascii(first)[0]}{_ascii(last)}@{_ascii(company)}.com" if company else None
        phone = f"+1212555{rng.randint(0, 9999):04d}" if rng.random() < 0.4 else None
        people.append(
            Person(
                pid=pid,
                first=first,
                last=last,
                personal_email=f"{handle}@{rng.choice(PERSONAL_DOMAINS)}",
                work_email=work,
                phone=phone,
                company=company,
                title=rng.choice(TITLES) if company else None,
                instagram=f"@{_ascii(first)}{_ascii(last)}" if rng.random() < 0.3 else None,
                linkedin=f"linkedin.com/in/{_ascii(first)}{_ascii(last)}"
                if rng.random() < 0.4
                else None,
                weight=rng.paretovariate(1.3),  # a few regulars, many occasional guests
            )
        )
    return people


def _presented_name(rng: random.Random, p: Person) -> tuple[str, str]:
    """The name a person types on one form: nickname, typo or case slip now and then."""
    first, last = p.first, p.last
    nicks = FIRST_NAMES.get(first) or []
    r = rng.random()
    if nicks and r < 0.3:
        first = rng.choice(nicks)
    elif r < 0.36:
        first = _typo(rng, first)
    elif r < 0.4:
        last = _typo(rng, last)
    elif r < 0.43:
        first, last = first.lower(), last.lower()
    return first, last


def _presented_email(rng: random.Random, p: Person, prefer_work: bool) -> str:
    email = p.work_email if (prefer_work and p.work_email) else p.personal_email
    if rng.random() < 0.1:
        email = email.upper() if rng.random() < 0.3 else email.capitalize()
    return email


def _pick_guests(
    rng: random.Random, people: list[Person], cum: list[float], k: int
) -> list[Person]:
    chosen: dict[int, Person] = {}
    target = min(k, len(people))
    while len(chosen) < target:
        for p in rng.choices(people, cum_weights=cum, k=target - len(chosen)):
            chosen.setdefault(p.pid, p)
    return list(chosen.values())[:target]


def _cumulative(people: list[Person]) -> list[float]:
    total = 0.0
    cum = []
    for p in people:
        total += p.weight
        cum.append(total)
    return cum


def _event_times(rng: random.Random, cfg: WorldConfig, i: int, n: int) -> tuple[datetime, datetime]:
    day = cfg.start + timedelta(days=int(i * cfg.days / max(n, 1)) + rng.randint(0, 2))
    day = min(day, cfg.start + timedelta(days=cfg.days - 1))
    hour = rng.choice([13, 15, 22, 23])  # 9-11 am or 6-7 pm New York, in UTC
    start = datetime(day.year, day.month, day.day, hour, rng.choice([0, 30]), tzinfo=UTC)
    return start, start + timedelta(hours=rng.choice([2, 3]))


def _luma_world(rng: random.Random, cfg: WorldConfig, world: World) -> None:
    cum = _cumulative(world.people)
    now = cfg.clock()
    for i in range(cfg.luma_events):
        start, end = _event_times(rng, cfg, i, cfg.luma_events)
        kind = EVENT_KINDS[i % len(EVENT_KINDS)]
        eid = f"evt-{rng.getrandbits(40):010x}"
        city, region, country = rng.choice(CITIES)
        event = {
            "api_id": eid,
            "id": eid,
            "calendar_id": cfg.luma_calendar_id,
            "name": f"{kind} #{i + 1}",
            "description": f"{kind} for the community.",
            "start_at": iso_ms(start),
            "end_at": iso_ms(end),
            "timezone": "America/New_York",
            "url": f"https://lu.ma/{eid[4:]}",
            "visibility": "public",
            "geo_address_json": {"city": city, "region": region, "country": country},
            "location_type": "offline",
            "max_capacity": 120,
            "require_approval": i % 3 == 0,
            "tags": [],
        }
        world.luma_events.append(event)
        flat = i % 2 == 1  # both guest shapes exist in the wild; serve both
        guests: list[dict[str, Any]] = []
        n = rng.randint(*cfg.guests_per_event)
        for p in _pick_guests(rng, world.people, cum, n):
            first, last = _presented_name(rng, p)
            email = _presented_email(rng, p, prefer_work=False)
            if rng.random() < cfg.bad_record_rate:
                email = email.replace("@", " at ")
            registered = start - timedelta(days=rng.uniform(1, 20), minutes=rng.randint(0, 600))
            status = rng.choices(
                ["approved", "pending_approval", "invited", "declined", "waitlist", "session"],
                weights=[75, 5, 6, 5, 6, 3],
            )[0]
            checked = (
                start + timedelta(minutes=rng.randint(-10, 60))
                if status == "approved" and rng.random() < 0.75  # the rest are no-shows
                else None
            )
            if checked is not None and checked > now:
                checked = None  # the event has not happened yet
            registered = min(registered, now - timedelta(minutes=5))
            gid = f"gst-{rng.getrandbits(40):010x}"
            uid = f"usr-{p.pid:06d}"
            answers: list[dict[str, Any]] = []
            if p.company:
                answers.append(
                    {
                        "label": "Company",
                        "question_id": "q-company",
                        "question_type": "company",
                        "answer": {"company": p.company, "job_title": p.title},
                    }
                )
            if p.instagram:
                answers.append(
                    {
                        "label": "Instagram",
                        "question_id": "q-ig",
                        "question_type": "instagram",
                        "answer": p.instagram,
                    }
                )
            if p.linkedin:
                answers.append(
                    {
                        "label": "LinkedIn",
                        "question_id": "q-li",
                        "question_type": "linkedin",
                        "answer": p.linkedin,
                    }
                )
            ticket: dict[str, Any] = {
                "amount": 0,
                "currency": "USD",
                "name": "General",
                "ticket_type_id": "tt-general",
            }
            if flat:
                guests.append(
                    {
                        "id": gid,
                        "user_id": uid,
                        "user_email": email,
                        "user_name": f"{first} {last}",
                        "user_first_name": first,
                        "user_last_name": last,
                        "approval_status": status,
                        "utm_source": rng.choice([None, "newsletter", "twitter"]),
                        "phone_number": p.phone,
                        "registered_at": iso_ms(registered),
                        "registration_answers": answers,
                        "event_tickets": [
                            {
                                "id": f"tkt-{gid[4:]}",
                                **ticket,
                                "checked_in_at": iso_ms(checked) if checked else None,
                            }
                        ],
                    }
                )
            else:
                guests.append(
                    {
                        "api_id": gid,
                        "guest": {
                            "api_id": gid,
                            "user_api_id": uid,
                            "name": f"{first} {last}",
                            "email": email,
                            "user_name": f"{first} {last}",
                            "user_email": email,
                            "phone_number": p.phone,
                            "approval_status": status,
                            "custom_source": None,
                            "created_at": iso_ms(registered),
                            "registered_at": iso_ms(registered),
                            "invited_at": None,
                            "joined_at": iso_ms(registered),
                            "checked_in_at": iso_ms(checked) if checked else None,
                            "check_in_qr_code": f"https://lu.ma/check-in/{gid}",
                            "event_ticket": ticket,
                            "registration_answers": answers,
                        },
                    }
                )
        world.luma_guests[eid] = guests


def _money(minor: int) -> dict[str, Any]:
    return {
        "display": f"${minor / 100:.2f}",
        "currency": "USD",
        "value": minor,
        "major_value": f"{minor / 100:.2f}",
    }


def _eventbrite_world(rng: random.Random, cfg: WorldConfig, world: World) -> None:
    cum = _cumulative(world.people)
    now = cfg.clock()
    for i in range(cfg.eventbrite_events):
        start, end = _event_times(rng, cfg, i, cfg.eventbrite_events)
        kind = EVENT_KINDS[(i + 3) % len(EVENT_KINDS)]
        eid = str(900_000_000 + rng.randint(0, 99_999_999))
        created = min(start - timedelta(days=30), now - timedelta(days=1))
        event = {
            "id": eid,
            "name": {"text": f"{kind} (Eventbrite) #{i + 1}", "html": f"{kind} #{i + 1}"},
            "description": {"text": f"{kind}.", "html": f"<p>{kind}.</p>"},
            "url": f"https://www.eventbrite.com/e/{eid}",
            "start": {
                "timezone": "America/New_York",
                "local": (start - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S"),
                "utc": iso_s(start),
            },
            "end": {
                "timezone": "America/New_York",
                "local": (end - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S"),
                "utc": iso_s(end),
            },
            "created": iso_s(created),
            "changed": iso_s(created),
            "status": "completed" if i < cfg.eventbrite_events // 2 else "live",
            "online_event": False,
            "venue_id": "55001",
            "organization_id": cfg.eventbrite_org_id,
            "capacity": 150,
            "is_free": i % 2 == 0,
            "listed": True,
        }
        world.eventbrite_events.append(event)
        price = 0 if event["is_free"] else 2500
        attendees: list[dict[str, Any]] = []
        n = rng.randint(*cfg.guests_per_event)
        for p in _pick_guests(rng, world.people, cum, n):
            order_id = str(rng.randint(10**9, 10**10 - 1))
            ordered = start - timedelta(days=rng.uniform(1, 25), minutes=rng.randint(0, 600))
            ordered = min(ordered, now - timedelta(minutes=10))
            quantity = 2 if rng.random() < 0.1 else 1  # the second ticket is a plus-one
            guests = [p]
            if quantity == 2:
                guests.append(rng.choice(world.people))
            for k, g in enumerate(guests):
                first, last = _presented_name(rng, g)
                email = _presented_email(rng, g, prefer_work=True)
                if k == 1 and rng.random() < 0.5:
                    email = _presented_email(rng, p, prefer_work=True)  # buyer's address
                if rng.random() < cfg.bad_record_rate:
                    email = email.replace("@", "")
                cancelled = rng.random() < 0.06
                refunded = cancelled and price > 0 and rng.random() < 0.5
                # Draw every number whatever the branch, so the clock cannot shift the stream.
                shows_up = rng.random() < 0.7
                door_minutes = rng.randint(0, 90)
                cancel_hours = rng.randint(0, 48)
                checked_in = (not cancelled) and shows_up and start <= now
                changed = (
                    start + timedelta(minutes=door_minutes)
                    if checked_in
                    else ordered + timedelta(hours=cancel_hours)
                    if cancelled
                    else ordered
                )
                changed = min(changed, now - timedelta(minutes=1))
                status = (
                    "Checked In" if checked_in else "Not Attending" if cancelled else "Attending"
                )
                profile: dict[str, Any] = {
                    "name": f"{first} {last}",
                    "first_name": first,
                    "last_name": last,
                    "email": email,
                    "addresses": {},
                }
                if g.company and rng.random() < 0.6:
                    profile["company"] = g.company
                    profile["job_title"] = g.title
                if g.phone and rng.random() < 0.5:
                    profile["cell_phone"] = g.phone
                attendees.append(
                    {
                        "id": str(rng.randint(10**9, 10**10 - 1)),
                        "created": iso_s(ordered),
                        "changed": iso_s(changed),
                        "event_id": eid,
                        "order_id": order_id,
                        "ticket_class_id": "3001",
                        "ticket_class_name": "General Admission",
                        "quantity": 1,
                        "costs": {
                            "base_price": _money(price),
                            "gross": _money(price),
                            "eventbrite_fee": _money(0),
                            "tax": _money(0),
                        },
                        "profile": profile,
                        "barcodes": [
                            {
                                "status": "used" if checked_in else "unused",
                                "barcode": f"{order_id}{k}",
                                "checkin_type": 2 if checked_in else 0,
                            }
                        ],
                        "answers": [],
                        "checked_in": checked_in,
                        "cancelled": cancelled,
                        "refunded": refunded,
                        "status": status,
                        "guestlist_id": None,
                        "invited_by": None,
                        "delivery_method": "electronic",
                    }
                )
        world.eventbrite_attendees[eid] = attendees


def build_world(cfg: WorldConfig | None = None) -> World:
    """The whole population and both platforms' events and guest lists, from the seed."""
    cfg = cfg or WorldConfig()
    rng = random.Random(cfg.seed)
    world = World(config=cfg, people=make_people(rng, cfg.people))
    _luma_world(random.Random(rng.random()), cfg, world)
    _eventbrite_world(random.Random(rng.random()), cfg, world)
    return world
