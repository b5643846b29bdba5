import polars as pl

from domain.model import STATUSES
from domain.normalize.eventbrite import (
    eventbrite_event,
    normalize_eventbrite_attendees,
    normalize_eventbrite_csv,
)
from ingest.exports import read_csv_text

EVENT = {
    "id": "101",
    "name": {"text": "Product Meetup", "html": "Product Meetup"},
    "url": "https://www.eventbrite.com/e/101",
    "start": {
        "timezone": "America/New_York",
        "local": "2026-10-15T18:30:00",
        "utc": "2026-10-15T22:30:00Z",
    },
    "end": {
        "timezone": "America/New_York",
        "local": "2026-10-15T21:00:00",
        "utc": "2026-10-16T01:00:00Z",
    },
    "venue": {"address": {"city": "New York"}},
}


def attendee(aid: str, **over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": aid,
        "created": "2026-10-01T14:00:00Z",
        "changed": "2026-10-02T14:00:00Z",
        "event_id": "101",
        "order_id": "o" + aid,
        "ticket_class_name": "GA",
        "quantity": 1,
        "profile": {
            "name": "Robert Smith",
            "first_name": "Robert",
            "last_name": "Smith",
            "email": "bob@gmail.com",
        },
        "barcodes": [{"status": "unused", "barcode": "b" + aid}],
        "answers": [],
        "checked_in": False,
        "cancelled": False,
        "refunded": False,
        "status": "Attending",
    }
    base.update(over)
    return base


def test_event_row() -> None:
    row = eventbrite_event(EVENT)
    assert row["event_id"] == "eventbrite:101" and row["name"] == "Product Meetup"
    assert str(row["starts_at"]) == "2026-10-15 22:30:00+00:00" and row["city"] == "New York"
    assert row["timezone"] == "America/New_York"


def test_state_comes_from_booleans_first() -> None:
    attendees = [
        attendee("1"),
        attendee("2", cancelled=True),  # status still says Attending
        attendee("3", refunded=True),
        attendee("4", checked_in=True),
        attendee(
            "5", barcodes=[{"status": "used", "barcode": "x", "changed": "2026-10-15T22:40:00Z"}]
        ),
        attendee("6", status="Not Attending"),
        attendee("7", status=None),
    ]
    batch = normalize_eventbrite_attendees(attendees, {"101": EVENT}, "page-1")
    assert batch.reconciles and batch.quarantine.height == 0
    att = dict(zip(batch.attendance["observation_id"], batch.attendance["status"], strict=True))
    assert att == {
        "eventbrite:1": "going",
        "eventbrite:2": "cancelled",
        "eventbrite:3": "cancelled",
        "eventbrite:4": "attended",
        "eventbrite:5": "attended",
        "eventbrite:6": "cancelled",
        "eventbrite:7": "going",
    }
    raw = dict(zip(batch.attendance["observation_id"], batch.attendance["raw_status"], strict=True))
    assert raw["eventbrite:2"] == "Attending" and raw["eventbrite:7"] is None
    five = batch.attendance.filter(pl.col("observation_id") == "eventbrite:5")
    assert str(five["checked_in_at"][0]) == "2026-10-15 22:40:00+00:00"


def test_profile_and_answers() -> None:
    a = attendee(
        "1",
        profile={
            "name": "Robert Smith",
            "email": " Bob@Gmail.com ",
            "company": "Acme Robotics",
            "job_title": "CTO",
            "cell_phone": "212-555-0101",
            "website": "https://acme.io/",
        },
        answers=[
            {
                "question_id": "1",
                "question": "Instagram handle",
                "type": "text",
                "answer": "@bob.smith",
            },
            {
                "question_id": "2",
                "question": "LinkedIn profile",
                "type": "text",
                "answer": "linkedin.com/in/bobsmith",
            },
            {"question_id": "3", "question": "Anything else?", "type": "text", "answer": "hi"},
        ],
    )
    batch = normalize_eventbrite_attendees([a], {"101": EVENT}, "p")
    row = batch.observations.to_dicts()[0]
    assert row["email"] == "bob@gmail.com" and row["phone"] == "+12125550101"
    assert (row["first_name"], row["last_name"]) == ("Robert", "Smith")
    assert (row["company"], row["job_title"]) == ("Acme Robotics", "CTO")
    assert row["handle_instagram"] == "bob.smith" and row["handle_linkedin"] == "bobsmith"
    assert row["handle_website"] == "acme.io"
    assert batch.events["event_id"].to_list() == ["eventbrite:101"]


def test_bad_attendee_fields_are_nulled_and_bad_attendees_quarantined() -> None:
    attendees = [
        attendee("1"),
        attendee("", status="Attending"),
        attendee("3", profile={"name": "Bob Smith", "email": "bob at gmail"}),
        attendee("4", status="Teleported"),
        attendee("5", created="not a date"),
        attendee("6", event_id=None),
        attendee("1"),
    ]
    batch = normalize_eventbrite_attendees(attendees, {"101": EVENT}, "p")
    assert batch.input_records == 7 and batch.reconciles
    reasons = dict(zip(batch.quarantine["record_index"], batch.quarantine["reason"], strict=True))
    assert reasons == {
        1: "missing attendee id",
        5: "missing event_id",
        6: "duplicate attendee id in file",
    }
    issues = batch.field_issues.select("record_index", "field", "reason").rows()
    assert issues == [
        (2, "email", "unparseable email"),
        (3, "status", "unknown attendee status"),
        (4, "observed_at", "unparseable timestamp"),
    ]
    # The record with the bad email keeps its name and attendance.
    kept = batch.observations.filter(pl.col("observation_id") == "eventbrite:3")
    assert kept["email"].to_list() == [None] and kept["full_name"][0]


PER_EVENT = (
    "Order #,Order Date,First Name,Last Name,Email,Quantity,Price Tier,Ticket Type,Attendee #,Group,"
    "Order Type,Currency,Total Paid,Fees Paid,Eventbrite Fees,Eventbrite Payment Processing,"
    "Attendee Status,Home Address 1,What company do you work for?\n"
    "1,2026-10-01 10:02:11-04:00,Robert,Smith,bob@gmail.com,1,,GA,901,,Free Order,USD,0,0,0,0,Checked In,,Acme\n"
    "2,10/02/2026 09:00,Alice,Chen,ALICE@x.io,1,,GA,902,,Free Order,USD,0,0,0,0,Attending,,\n"
    "3,2026-10-03 09:00:00-04:00,Mei,Tanaka,mei@x.io,1,,GA,903,,Free Order,USD,0,0,0,0,Refunded,,\n"
    "4,2026-10-03 09:00:00-04:00,Tom,N,tom@,1,,GA,904,,Free Order,USD,0,0,0,0,Attending,,\n"
    "5,2026-10-03 09:00:00-04:00,No,Id,no@id.io,1,,GA,,,Free Order,USD,0,0,0,0,Attending,,\n"
    "6,2026-10-03 09:00:00-04:00,Odd,One,odd@x.io,1,,GA,906,,Free Order,USD,0,0,0,0,Transferred,,\n"
    "7,someday,Late,Comer,late@x.io,1,,GA,907,,Free Order,USD,0,0,0,0,Attending,,\n"
)


def test_csv_per_event_report() -> None:
    batch = normalize_eventbrite_csv(read_csv_text(PER_EVENT.encode()), EVENT, "101.csv")
    assert batch.input_records == 7 and batch.reconciles
    att = dict(zip(batch.attendance["observation_id"], batch.attendance["status"], strict=True))
    assert att == {
        "eventbrite:901": "attended",
        "eventbrite:902": "going",
        "eventbrite:903": "cancelled",
        "eventbrite:904": "going",
        "eventbrite:906": "going",
        "eventbrite:907": "going",
    }
    obs = {r["observation_id"]: r for r in batch.observations.iter_rows(named=True)}
    assert obs["eventbrite:901"]["company"] == "Acme"
    assert str(obs["eventbrite:901"]["observed_at"]) == "2026-10-01 14:02:11+00:00"
    # Zone-less order date takes the event's zone (EDT).
    assert str(obs["eventbrite:902"]["observed_at"]) == "2026-10-02 13:00:00+00:00"
    assert obs["eventbrite:902"]["email"] == "alice@x.io"
    reasons = dict(zip(batch.quarantine["record_index"], batch.quarantine["reason"], strict=True))
    assert reasons == {4: "missing Attendee #"}
    issues = batch.field_issues.select("record_index", "field", "raw", "reason").rows()
    assert issues == [
        (3, "email", "tom@", "unparseable email"),
        (5, "status", "Transferred", "unknown Attendee Status"),
        (6, "observed_at", "someday", "unparseable timestamp"),
    ]


def test_csv_with_event_name_and_checked_in_column() -> None:
    text = (
        "Order #,Order Date,Name,Email,Company,Job title,Attendee #,Attendee Status,Checked In,Event Name\n"
        "1,2026-11-01 10:00:00-04:00,Robert Smith,bob@gmail.com,Acme,CTO,1,Attending,Yes,Product Meetup\n"
        "2,2026-11-01 10:00:00-04:00,Ann Lee,ann@lee.io,,,2,Attending,No,Product Meetup\n"
        "3,2026-11-01 10:00:00-04:00,Kai Mo,kai@mo.io,,,3,Attending,No,Unknown Gathering\n"
    )
    batch = normalize_eventbrite_csv(
        read_csv_text(text.encode()), None, "all.csv", known_events=[EVENT]
    )
    assert batch.reconciles and batch.quarantine.height == 0
    att = {r["observation_id"]: r for r in batch.attendance.iter_rows(named=True)}
    assert (
        att["eventbrite:1"]["status"] == "attended"
        and att["eventbrite:1"]["event_id"] == "eventbrite:101"
    )
    assert att["eventbrite:2"]["status"] == "going"
    assert att["eventbrite:3"]["event_id"] == "eventbrite:name-unknown-gathering"
    assert batch.events["event_id"].to_list() == [
        "eventbrite:101",
        "eventbrite:name-unknown-gathering",
    ]
    bob = batch.observations.filter(pl.col("observation_id") == "eventbrite:1").to_dicts()[0]
    assert (bob["first_name"], bob["last_name"], bob["job_title"]) == ("Robert", "Smith", "CTO")
    assert set(batch.attendance["status"]) <= STATUSES


def test_csv_missing_columns() -> None:
    frame = read_csv_text(b"Order #,First Name,Email\n1,Bob,bob@gmail.com\n")
    batch = normalize_eventbrite_csv(frame, EVENT, "x.csv")
    assert batch.reconciles and batch.observations.height == 0
    assert batch.quarantine["reason"].to_list() == ["wrong column set: missing Attendee #"]


def test_csv_without_any_event_is_quarantined() -> None:
    frame = read_csv_text(b"Attendee #,Email,Attendee Status\n1,bob@gmail.com,Attending\n")
    batch = normalize_eventbrite_csv(frame, None, "x.csv")
    assert batch.reconciles and batch.observations.height == 0
    assert batch.quarantine["reason"][0].startswith("missing event")


def test_attendees_of_one_order_beyond_the_buyer_are_plus_ones() -> None:
    def person(aid: str, name: str, email: str, order_id: str, **over: object) -> dict[str, object]:
        return attendee(aid, order_id=order_id, profile={"name": name, "email": email}, **over)

    attendees = [
        person("11", "Guest One", "g1@x.io", "o1"),
        person("12", "Buyer Bee", "bee@x.io", "o1", order={"email": "BEE@x.io"}),
        person("13", "Guest Two", "g2@x.io", "o1"),
        person("21", "Solo Sam", "sam@x.io", "o2"),
        person("31", "First Fay", "fay@x.io", "o3"),
        person("32", "Pal Pat", "pat@x.io", "o3"),
    ]
    batch = normalize_eventbrite_attendees(attendees, {"101": EVENT}, "p")
    att = {r["observation_id"]: r for r in batch.attendance.iter_rows(named=True)}
    # The order's email names the buyer; without one, the first attendee listed is it.
    assert {k: (v["role"], v["plus_one_of"]) for k, v in att.items()} == {
        "eventbrite:11": ("plus_one", "eventbrite:12"),
        "eventbrite:12": ("guest", None),
        "eventbrite:13": ("plus_one", "eventbrite:12"),
        "eventbrite:21": ("guest", None),
        "eventbrite:31": ("guest", None),
        "eventbrite:32": ("plus_one", "eventbrite:31"),
    }


def test_csv_orders_link_plus_ones() -> None:
    text = (
        "Order #,Order Date,Name,Email,Attendee #,Attendee Status,Buyer Email\n"
        "7,2026-11-01 10:00:00-04:00,Ann Lee,ann@lee.io,1,Attending,kai@mo.io\n"
        "7,2026-11-01 10:00:00-04:00,Kai Mo,kai@mo.io,2,Attending,kai@mo.io\n"
        "8,2026-11-01 10:00:00-04:00,Bo Li,bo@li.io,3,Attending,bo@li.io\n"
    )
    batch = normalize_eventbrite_csv(read_csv_text(text.encode()), EVENT, "101.csv")
    links = dict(
        zip(batch.attendance["observation_id"], batch.attendance["plus_one_of"], strict=True)
    )
    assert links == {"eventbrite:1": "eventbrite:2", "eventbrite:2": None, "eventbrite:3": None}


def test_a_report_saved_from_a_spreadsheet_is_not_imported_under_rounded_ids() -> None:
    """A spreadsheet shows long numbers as 7.77E+9 and saves them so: attendees then share
    one rounded Attendee # and different orders one Order #."""
    text = (
        "Order #,Order Date,Name,Email,Attendee #,Attendee Status\n"
        "5.55E+9,10/20/26 9:15,Ann Lee,ann@lee.io,7.77E+9,Attending\n"
        "5.55E+9,10/20/26 9:16,Kai Mo,kai@mo.io,7.77E+9,Attending\n"
        "5.55E+9,10/20/26 9:17,Bo Li,bo@li.io,7770002003,Attending\n"
        "5.55E+9,10/20/26 9:18,Cy Ng,cy@ng.io,7770002004,Attending\n"
    )
    batch = normalize_eventbrite_csv(read_csv_text(text.encode()), EVENT, "report.csv")
    assert batch.reconciles and batch.input_records == 4
    reasons = dict(zip(batch.quarantine["record_index"], batch.quarantine["reason"], strict=True))
    assert set(reasons) == {0, 1}
    assert all(r.startswith("Attendee # rounded by a spreadsheet") for r in reasons.values())
    assert any("2 Attendee # values were rounded by a spreadsheet" in n for n in batch.notes)
    # The rows with whole ids are kept, and a rounded order number links no one.
    links = dict(
        zip(batch.attendance["observation_id"], batch.attendance["plus_one_of"], strict=True)
    )
    assert links == {"eventbrite:7770002003": None, "eventbrite:7770002004": None}


def test_a_report_with_day_first_dates_reads_them_so_in_every_row() -> None:
    """A report from an account outside the US writes 25/12/2026. Big columns are read in
    two halves; a first half of dates that read either way (03/04) must still be 3 April."""
    rows = 60_000
    lines = ["Order #,Order Date,Name,Email,Attendee #,Attendee Status"]
    for i in range(rows):
        day = "03/04/2026 10:00" if i < rows // 2 else "25/12/2026 10:00"
        lines.append(f"{i},{day},Guest {i},g{i}@x.io,{i},Attending")
    frame = read_csv_text("\n".join(lines).encode())
    batch = normalize_eventbrite_csv(frame, EVENT, "uk.csv")
    assert batch.reconciles and batch.field_issues.height == 0
    local = batch.observations.select(
        pl.col("observed_at").dt.convert_time_zone("America/New_York").dt.strftime("%m-%d")
    ).to_series()
    assert local.value_counts().sort("observed_at").rows() == [
        ("04-03", rows // 2),
        ("12-25", rows // 2),
    ]


def test_event_times_fall_back_to_local_and_unknown_zones_to_utc() -> None:
    unreadable_utc = {**EVENT, "start": {**EVENT["start"], "utc": "soon"}}  # type: ignore[dict-item]
    row = eventbrite_event(unreadable_utc)
    assert str(row["starts_at"]) == "2026-10-15 22:30:00+00:00"  # from the local time
    assert row["notes"] == []
    zone = {"timezone": "Mars/Olympus"}
    odd = eventbrite_event(
        {**EVENT, "start": {**EVENT["start"], **zone}, "end": {**EVENT["end"], **zone}}  # type: ignore[dict-item]
    )
    assert odd["timezone"] == "UTC"
    assert odd["notes"] == [
        "event eventbrite:101: unknown time zone 'Mars/Olympus': its local times are read as UTC"
    ]
