import json
from pathlib import Path

import polars as pl

from domain.model import ATTENDANCE_SCHEMA, OBSERVATIONS_SCHEMA, STATUSES
from domain.normalize.common import UNIDENTIFIED
from domain.normalize.luma import normalize_luma_csv
from ingest.exports import read_csv_text

EVENT = {
    "api_id": "evt-1",
    "name": "Demo",
    "start_at": "2026-10-08T15:00:00.000Z",
    "timezone": "America/New_York",
}


def _csv(text: str) -> pl.DataFrame:
    return read_csv_text(text.encode())


def test_older_columns_normalize() -> None:
    frame = _csv(
        "api_id,name,first_name,last_name,email,phone_number,created_at,approval_status,checked_in_at\n"
        "gst-1,Bob Smith,Bob,Smith,Bob@Gmail.com,(212) 555-0101,2026-09-30T14:02:11.000Z,approved,2026-10-08T15:05:12.000Z\n"
        "gst-2,Ann Lee,,,ann@lee.io,,2026-09-30T14:02:11.000Z,waitlist,\n"
    )
    batch = normalize_luma_csv(frame, EVENT, "evt-1.csv")
    assert batch.reconciles and batch.quarantine.height == 0
    obs = batch.observations.sort("observation_id")
    assert obs["observation_id"].to_list() == ["luma:gst-1", "luma:gst-2"]
    assert obs["email"].to_list() == ["bob@gmail.com", "ann@lee.io"]
    assert obs["phone"].to_list() == ["+12125550101", None]
    assert (
        obs.row(1, named=True)["first_name"] == "Ann"
        and obs.row(1, named=True)["last_name"] == "Lee"
    )
    att = batch.attendance.sort("observation_id")
    assert att["status"].to_list() == ["attended", "waitlisted"]
    assert att["raw_status"].to_list() == ["approved", "waitlist"]
    assert dict(batch.observations.schema) == OBSERVATIONS_SCHEMA
    assert dict(batch.attendance.schema) == ATTENDANCE_SCHEMA


def test_newer_columns_use_guest_id() -> None:
    frame = _csv(
        "guest_id,name,email,created_at,approval_status,utm_source\ngst-9,Sam O,sam@x.io,2026-09-30T14:02:11Z,invited,ig\n"
    )
    batch = normalize_luma_csv(frame, EVENT, "evt-1.csv")
    assert batch.observations["observation_id"].to_list() == ["luma:gst-9"]
    assert batch.attendance["status"].to_list() == ["invited"]


def test_bad_fields_are_nulled_and_only_nameless_records_quarantined() -> None:
    frame = _csv(
        "api_id,name,email,created_at,approval_status\n"
        "gst-1,Ok,ok@x.io,2026-09-30T14:02:11Z,approved\n"
        ",No Id,noid@x.io,2026-09-30T14:02:11Z,approved\n"
        "gst-3,Bad Mail,bad-at-x,2026-09-30T14:02:11Z,approved\n"
        "gst-4,Bad Date,d@x.io,yesterday,approved\n"
        "gst-5,Odd,odd@x.io,2026-09-30T14:02:11Z,teleported\n"
        "gst-6,,bad-at-y,2026-09-30T14:02:11Z,approved\n"
    )
    batch = normalize_luma_csv(frame, EVENT, "evt-1.csv")
    assert batch.input_records == 6 and batch.reconciles
    reasons = dict(
        zip(
            batch.quarantine["record_index"].to_list(),
            batch.quarantine["reason"].to_list(),
            strict=True,
        )
    )
    assert reasons == {1: "missing guest id", 5: UNIDENTIFIED}
    raw = json.loads(batch.quarantine.filter(pl.col("record_index") == 5)["raw"][0])
    assert raw["email"] == "bad-at-y"
    # The others keep their attendance; the bad field is null and on record.
    obs = {r["observation_id"]: r for r in batch.observations.iter_rows(named=True)}
    assert set(obs) == {"luma:gst-1", "luma:gst-3", "luma:gst-4", "luma:gst-5"}
    assert obs["luma:gst-3"]["email"] is None and obs["luma:gst-3"]["full_name"] == "Bad Mail"
    assert obs["luma:gst-4"]["observed_at"] is None
    status = dict(zip(batch.attendance["observation_id"], batch.attendance["status"], strict=True))
    assert status["luma:gst-5"] == "registered"
    issues = batch.field_issues.select("record_index", "field", "raw", "reason").rows()
    assert issues == [
        (2, "email", "bad-at-x", "unparseable email"),
        (3, "observed_at", "yesterday", "unparseable timestamp"),
        (4, "status", "teleported", "unknown approval_status"),
    ]
    assert batch.field_issues["observation_id"].to_list() == [
        "luma:gst-3",
        "luma:gst-4",
        "luma:gst-5",
    ]


def test_unreadable_handles_are_field_issues_named_for_their_platform() -> None:
    frame = _csv(
        "api_id,name,email,approval_status,Instagram,LinkedIn,GitHub\n"
        "gst-1,Bob Smith,bob@x.io,approved,@zoë,linkedin.com/in/bob-smith,octo cat\n"
        "gst-2,Ann Lee,ann@x.io,approved,@ann.lee,!!,ann-lee\n"
    )
    batch = normalize_luma_csv(frame, EVENT, "e.csv")
    assert batch.quarantine.height == 0
    assert batch.field_issues.select("record_index", "field", "raw", "reason").rows() == [
        (0, "handle_github", "octo cat", "unreadable GitHub username"),
        (0, "handle_instagram", "@zoë", "unreadable Instagram handle"),
        (1, "handle_linkedin", "!!", "unreadable LinkedIn profile"),
    ]
    handles = batch.observations.select("handle_instagram", "handle_linkedin", "handle_github")
    assert handles.rows() == [(None, "bob-smith", None), ("ann.lee", None, "ann-lee")]


def test_statuses_stay_in_allowed_set() -> None:
    root = Path(__file__).resolve().parents[2] / "samples" / "luma"
    events = {e["api_id"]: e for e in json.loads((root / "events.json").read_text())}
    for path in (root / "guests").glob("*.csv"):
        batch = normalize_luma_csv(read_csv_text(path.read_bytes()), events[path.stem], path.name)
        assert batch.reconciles
        assert set(batch.attendance["status"].to_list()) <= STATUSES


def test_bom_and_latin1_are_read() -> None:
    utf8_bom = "\ufeffapi_id,name\ngst-1,Zoë\n".encode()
    latin1 = "api_id,name\ngst-1,Zoë\n".encode("latin-1")
    for raw in (utf8_bom, latin1):
        frame = read_csv_text(raw)
        assert frame.columns == ["api_id", "name"]
        assert frame["name"].to_list() == ["Zoë"]
