import json

import polars as pl

from domain.model import ATTENDANCE_SCHEMA, OBSERVATIONS_SCHEMA
from domain.normalize.common import UNIDENTIFIED
from domain.normalize.luma import luma_event, normalize_luma_csv, normalize_luma_guests
from ingest.exports import read_csv_text

EVENT = {
    "api_id": "evt-1",
    "name": "Demo",
    "start_at": "2026-10-08T15:00:00.000Z",
    "timezone": "America/New_York",
    "geo_address_json": {"city": "New York"},
}

WRAPPED = {
    "api_id": "gst-w1",
    "guest": {
        "api_id": "gst-w1",
        "user_api_id": "usr-bob",
        "name": "Bob Smith",
        "email": "Bob@Gmail.com",
        "phone_number": "+12125550101",
        "approval_status": "approved",
        "created_at": "2026-10-01T14:02:11.000Z",
        "registered_at": "2026-10-01T14:02:11.000Z",
        "checked_in_at": "2026-10-08T15:05:12.000Z",
        "event_ticket": {"amount": 0, "currency": "usd", "name": "Standard"},
        "registration_answers": [
            {
                "label": "Instagram",
                "answer": "@BobSmith",
                "question_id": "q1",
                "question_type": "instagram",
            },
            {
                "label": "LinkedIn",
                "answer": "https://www.linkedin.com/in/bobsmith/",
                "question_id": "q2",
                "question_type": "linkedin",
            },
            {
                "label": "Work",
                "answer": {"company": "Acme Robotics", "job_title": "CTO"},
                "question_id": "q3",
                "question_type": "company",
            },
            {
                "label": "Topics",
                "answer": ["AI", "Robots"],
                "question_id": "q4",
                "question_type": "multi-select",
            },
            {
                "label": "I agree to the code of conduct",
                "answer": True,
                "question_id": "q5",
                "question_type": "agree-check",
            },
            {
                "label": "GitHub profile",
                "answer": "github.com/bobsmith",
                "question_id": "q6",
                "question_type": "url",
            },
        ],
    },
}

FLAT = {
    "id": "gst-f1",
    "user_id": "usr-alice",
    "user_email": "alice.chen@example.com",
    "user_name": "Alice Chen",
    "user_first_name": "Alice",
    "user_last_name": "Chen",
    "approval_status": "approved",
    "utm_source": "newsletter",
    "phone_number": None,
    "registered_at": "2026-10-02T10:00:00.000Z",
    "event_tickets": [
        {"id": "tkt-1", "amount": 0, "currency": "usd", "checked_in_at": None, "name": "GA"},
        {
            "id": "tkt-2",
            "amount": 0,
            "currency": "usd",
            "checked_in_at": "2026-10-08T15:20:00.000Z",
            "name": "GA",
        },
    ],
    "registration_answers": [
        {
            "label": "What company do you work for?",
            "answer": "Chen Labs",
            "question_id": "q1",
            "question_type": "text",
        },
        {
            "label": "Twitter / X",
            "answer": "https://x.com/alicechen",
            "question_id": "q2",
            "question_type": "twitter",
        },
    ],
}


def test_both_api_shapes_normalize() -> None:
    batch = normalize_luma_guests([WRAPPED, FLAT], EVENT, "page-1")
    assert batch.reconciles and batch.quarantine.height == 0
    assert dict(batch.observations.schema) == OBSERVATIONS_SCHEMA
    assert dict(batch.attendance.schema) == ATTENDANCE_SCHEMA
    obs = {r["observation_id"]: r for r in batch.observations.iter_rows(named=True)}
    bob, alice = obs["luma:gst-w1"], obs["luma:gst-f1"]
    assert bob["source_person_id"] == "usr-bob" and alice["source_person_id"] == "usr-alice"
    assert bob["email"] == "bob@gmail.com" and bob["phone"] == "+12125550101"
    assert bob["handle_instagram"] == "bobsmith" and bob["handle_linkedin"] == "bobsmith"
    assert bob["handle_github"] == "bobsmith"
    assert (bob["company"], bob["job_title"]) == ("Acme Robotics", "CTO")
    assert (alice["first_name"], alice["last_name"]) == ("Alice", "Chen")
    assert alice["company"] == "Chen Labs" and alice["handle_twitter"] == "alicechen"
    att = {r["observation_id"]: r for r in batch.attendance.iter_rows(named=True)}
    assert att["luma:gst-w1"]["status"] == "attended"
    # Check-in lives on the tickets in the flat shape.
    assert att["luma:gst-f1"]["status"] == "attended"
    assert str(att["luma:gst-f1"]["checked_in_at"]) == "2026-10-08 15:20:00+00:00"
    assert att["luma:gst-f1"]["raw_status"] == "approved"
    assert batch.events["city"].to_list() == ["New York"]


def test_api_bad_fields_are_nulled_and_bad_entries_quarantined() -> None:
    entries = [
        {"id": "gst-1", "user_email": "ok@x.io", "approval_status": "invited"},
        {"user_email": "noid@x.io", "approval_status": "approved"},
        {"id": "gst-3", "user_name": "Ann", "user_email": "a@", "approval_status": "approved"},
        {"id": "gst-n", "user_email": "not-an-email", "approval_status": "approved"},
        {"id": "gst-4", "user_email": "s@x.io", "approval_status": "abducted"},
        {"id": "gst-5", "user_email": "d@x.io", "registered_at": "31/31/2026"},
        "garbage",
        {"id": "gst-1", "user_email": "dup@x.io", "approval_status": "approved"},
    ]
    batch = normalize_luma_guests(entries, EVENT, "page-2")  # type: ignore[arg-type]
    assert batch.input_records == 8 and batch.reconciles
    reasons = dict(zip(batch.quarantine["record_index"], batch.quarantine["reason"], strict=True))
    assert reasons == {
        1: "missing guest id",
        3: UNIDENTIFIED,  # the bad email was all it had
        6: "guest entry is not an object",
        7: "duplicate guest id in file",
    }
    assert json.loads(batch.quarantine.filter(pl.col("record_index") == 3)["raw"][0]) == entries[3]
    assert batch.attendance["status"].to_list() == ["invited", "going", "registered", "registered"]
    issues = batch.field_issues.select("observation_id", "field", "reason").rows()
    assert issues == [
        ("luma:gst-3", "email", "unparseable email"),
        ("luma:gst-4", "status", "unknown approval_status"),
        ("luma:gst-5", "observed_at", "unparseable timestamp"),
    ]


def test_empty_page_is_fine() -> None:
    batch = normalize_luma_guests([], EVENT, "page-0")
    assert batch.input_records == 0 and batch.reconciles and batch.events.height == 1


def test_wrapped_event_and_times() -> None:
    row = luma_event(
        {
            "event": {
                "id": "evt-9",
                "name": "X",
                "start_at": "2026-11-01T18:00:00",
                "timezone": "Europe/Berlin",
            }
        }
    )
    assert row["event_id"] == "luma:evt-9"
    assert str(row["starts_at"]) == "2026-11-01 17:00:00+00:00"


def test_csv_custom_questions_map_to_handles() -> None:
    frame = read_csv_text(
        b"guest_id,name,email,created_at,approval_status,utm_source,What's your Instagram?,"
        b"LinkedIn URL,Twitter handle,GitHub,Personal website,Company,Job Title\n"
        b"gst-1,Ann Lee,ann@lee.io,2026-10-01T10:00:00Z,approved,,instagram.com/ann.lee,"
        b"https://linkedin.com/in/ann-lee?trk=x,@annlee,https://github.com/annlee/,"
        b"https://www.AnnLee.dev/,Lee Corp,Engineer\n"
        b"gst-2,Bo Ng,bo@ng.io,2026-10-01T10:00:00Z,approved,,No answer provided.,"
        b"No answer provided.,,,,No answer provided.,\n"
    )
    batch = normalize_luma_csv(frame, EVENT, "f.csv")
    rows = batch.observations.sort("observation_id").to_dicts()
    assert rows[0]["handle_instagram"] == "ann.lee"
    assert rows[0]["handle_linkedin"] == "ann-lee"
    assert rows[0]["handle_twitter"] == "annlee"
    assert rows[0]["handle_github"] == "annlee"
    assert rows[0]["handle_website"] == "annlee.dev"
    assert (rows[0]["company"], rows[0]["job_title"]) == ("Lee Corp", "Engineer")
    assert rows[1]["handle_instagram"] is None and rows[1]["company"] is None


def test_csv_missing_required_columns_quarantines_every_row() -> None:
    frame = read_csv_text(b"name,approval_status\nAnn,approved\nBo,approved\n")
    batch = normalize_luma_csv(frame, EVENT, "f.csv")
    assert batch.input_records == 2 and batch.reconciles and batch.observations.height == 0
    assert set(batch.quarantine["reason"]) == {"wrong column set: missing guest_id/api_id"}


def test_csv_zone_less_time_uses_event_zone() -> None:
    frame = read_csv_text(
        b"api_id,name,email,created_at,approval_status\ngst-1,A B,a@b.io,10/01/2026 09:00,approved\n"
    )
    batch = normalize_luma_csv(frame, EVENT, "f.csv")
    assert str(batch.observations["observed_at"][0]) == "2026-10-01 13:00:00+00:00"
