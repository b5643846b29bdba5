"""Property: whatever rows an export holds, no record crashes the import or disappears.
Every record ends normalized (possibly with fields nulled and flagged) or quarantined with
a reason, and input = normalized + quarantined."""

from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.normalize.partiful import normalize_partiful_csv
from ingest.exports import normalize_file

EVENT = {
    "id": "pfParty",
    "title": "Rooftop",
    "start": "2026-10-24T19:00:00",
    "timezone": "America/New_York",
    "url": "https://partiful.com/e/pfParty",
    "city": "New York",
}
HEADER = ["Name", "Status", "RSVP date", "Invited By", "Is Plus One Of", "What's your Instagram?"]

junk = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
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
