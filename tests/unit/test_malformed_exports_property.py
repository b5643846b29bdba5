"""Property: whatever rows an export holds, no record crashes the import or disappears.
Every record ends normalized (possibly with fields nulled and flagged) or quarantined with
a reason, and input = normalized + quarantined."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.normalize.eventbrite import normalize_eventbrite_csv
from domain.normalize.luma import normalize_luma_csv
from domain.normalize.partiful import normalize_partiful_csv
from ingest.exports import load_exports, normalize_file
from tests.strategies import json_values as json_values_of
from tests.strategies import junk

EVENT = {
    "id": "pfParty",
    "title": "Rooftop",
    "start": "2026-10-24T19:00:00",
    "timezone": "America/New_York",
    "url": "https://partiful.com/e/pfParty",
    "city": "New York",
}
HEADER = ["Name", "Status", "RSVP date", "Invited By", "Is Plus One Of", "What's your Instagram?"]

names = st.one_of(st.just(""), st.sampled_from(["Priya Raman", "Bob", "Guest", "  "]), junk)
statuses = st.one_of(st.sampled_from(["Going", "Maybe", "Can't Go", "Host", ""]), junk)
dates = st.one_of(st.sampled_from(["2026-10-02 09:14:22", "", "last tuesday", "2026-13-45"]), junk)
handles = st.one_of(st.sampled_from(["@priya.codes", "", "not a handle!!", "@"]), junk)
row = st.tuples(names, statuses, dates, names, names, handles).map(list)
# Ragged rows: cells cut off or added at the end.
ragged = st.tuples(row, st.integers(min_value=-4, max_value=2)).map(
    lambda t: t[0][: len(t[0]) + t[1]] if t[1] < 0 else t[0] + ["extra"] * t[1]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(row, ragged), min_size=1, max_size=25))
def test_every_record_is_normalized_flagged_or_quarantined(rows: list[list[str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    batch = normalize_file(
        buf.getvalue().encode(),
        source="partiful",
        origin="party.csv",
        normalize=lambda frame: normalize_partiful_csv(frame, EVENT, "party.csv"),
    )
    assert batch.reconciles
    assert batch.input_records == batch.observations.height + batch.quarantine.height
    # None lost on the way, none split (a lone carriage return in a cell is cell text).
    assert batch.input_records == len(rows)
    # A quarantined record carries its reason; a flagged field belongs to a kept record.
    assert batch.quarantine["reason"].null_count() == 0
    quarantined = set(batch.quarantine["record_index"].to_list())
    assert not quarantined & set(batch.field_issues["record_index"].to_list())


json_values = json_values_of("2026-10-24T19:00:00", "America/NewYork", "Europe/Paris", "UTC")
EVENT_KEYS = ["id", "title", "name", "start", "end", "timezone", "url", "city"]
PARTIFUL_CSV = "Name,Status,RSVP date\nPriya Raman,Going,2026-10-02 09:14:22\nBob,Maybe,\n"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(meta=st.dictionaries(st.sampled_from(EVENT_KEYS), json_values, max_size=8))
def test_any_event_metadata_keeps_every_guest(
    meta: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Whatever a hand-written events.json says about an event (lists for names, numbers
    for zones, impossible dates), its guests are imported and the counts reconcile."""
    root = tmp_path_factory.mktemp("exports")
    (root / "partiful").mkdir()
    (root / "partiful" / "party_2026-10-24.csv").write_text(PARTIFUL_CSV)
    entry = {**meta, "file": "party_2026-10-24"}
    (root / "partiful" / "events.json").write_text(json.dumps([entry]))
    batch = load_exports(root, "partiful")
    assert batch.reconciles and batch.input_records == 2
    assert batch.observations.height == 2 and batch.events.height == 1


EVENTBRITE_CSV = (
    "Order #,Order Date,First Name,Last Name,Email,Quantity,Ticket Type,Attendee #,"
    "Attendee Status\n"
    "501,2026-10-01 10:02:11-04:00,Robert,Smith,bob@gmail.com,1,GA,701,Attending\n"
    "502,2026-10-02 11:00:00-04:00,Ana,Silva,ana@silva.io,1,GA,702,Checked In\n"
)
EVENTBRITE_KEYS = ["id", "name", "url", "start", "end", "venue", "city"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(meta=st.dictionaries(st.sampled_from(EVENTBRITE_KEYS), json_values, max_size=7))
def test_any_eventbrite_event_object_keeps_every_attendee(
    meta: dict[str, object], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same for Eventbrite's event objects (nested `name`, `start`, `venue`)."""
    root = tmp_path_factory.mktemp("exports")
    (root / "eventbrite").mkdir()
    (root / "eventbrite" / "1010000000001.csv").write_text(EVENTBRITE_CSV)
    entry = {**meta, "id": "1010000000001"}
    (root / "eventbrite" / "events.json").write_text(json.dumps([entry]))
    batch = load_exports(root, "eventbrite")
    assert batch.reconciles and batch.input_records == 2
    assert batch.observations.height == 2


cells = st.one_of(
    junk,
    st.sampled_from(
        ["", "bob@gmail.com", "+1 212 555 0101", "2026-10-01T10:00:00.000Z", "approved",
         "Checked In", "1", "-3", "@handle", "https://linkedin.com/in/x", "No answer provided."]
    ),
)  # fmt: skip
LUMA_HEADER = [
    "api_id", "name", "first_name", "last_name", "email", "phone_number", "created_at",
    "approval_status", "checked_in_at", "ticket_name", "What's your Instagram?", "Company",
]  # fmt: skip
EVENTBRITE_HEADER = [
    "Order #", "Order Date", "First Name", "Last Name", "Email", "Quantity", "Ticket Type",
    "Attendee #", "Attendee Status", "Event ID", "Event Name", "Cell Phone", "Company",
]  # fmt: skip
NORMALIZERS = {
    "luma": (
        LUMA_HEADER,
        lambda f: normalize_luma_csv(f, {"api_id": "evt-1", "timezone": "UTC"}, "x.csv"),
    ),
    "eventbrite": (EVENTBRITE_HEADER, lambda f: normalize_eventbrite_csv(f, None, "x.csv")),
}


@pytest.mark.parametrize("source", ["luma", "eventbrite"])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_luma_and_eventbrite_rows_are_normalized_flagged_or_quarantined(
    source: str, data: st.DataObject
) -> None:
    header, normalize = NORMALIZERS[source]
    rows = data.draw(
        st.lists(st.lists(cells, min_size=len(header), max_size=len(header)), max_size=12)
    )
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    batch = normalize_file(
        buf.getvalue().encode(), source=source, origin="x.csv", normalize=normalize
    )
    assert batch.reconciles and batch.input_records == len(rows)
    assert batch.quarantine["reason"].null_count() == 0
