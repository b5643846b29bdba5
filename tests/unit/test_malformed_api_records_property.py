"""Property: whatever JSON an API page holds for a guest or attendee (lists where text
belongs, numbers where lists belong), normalizing the page never fails and every record is
kept or quarantined with a reason."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.normalize.eventbrite import normalize_eventbrite_attendees
from domain.normalize.luma import normalize_luma_guests
from tests.strategies import json_values as json_values_of

json_values = json_values_of("2026-10-24T19:00:00Z", "bob@gmail.com", "+12125550101", "approved")
LUMA_KEYS = [
    "api_id", "id", "user_id", "user_name", "name", "user_email", "email", "phone_number",
    "approval_status", "created_at", "checked_in_at", "registration_answers", "guest",
    "tickets", "event_tickets", "user_first_name", "user_last_name",
]  # fmt: skip
EVENTBRITE_KEYS = [
    "id", "event_id", "order_id", "profile", "status", "created", "changed", "checked_in",
    "cancelled", "refunded", "barcodes", "answers", "ticket_class_name", "quantity", "order",
]  # fmt: skip
LUMA_EVENT = {"api_id": "evt-1", "start_at": "2026-10-24T19:00:00Z", "timezone": "UTC"}
EVENTBRITE_EVENTS = {"101": {"id": "101", "start": {"timezone": "UTC"}}}


def _records(keys: list[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(
        st.dictionaries(st.sampled_from(keys), json_values, max_size=10), min_size=1, max_size=5
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_records(LUMA_KEYS))
def test_any_luma_guest_objects_are_kept_or_quarantined(records: list[dict[str, Any]]) -> None:
    batch = normalize_luma_guests(records, LUMA_EVENT, "luma/page-1.json")
    assert batch.reconciles and batch.input_records == len(records)
    assert batch.quarantine["reason"].null_count() == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_records(EVENTBRITE_KEYS))
def test_any_eventbrite_attendee_objects_are_kept_or_quarantined(
    records: list[dict[str, Any]],
) -> None:
    batch = normalize_eventbrite_attendees(records, EVENTBRITE_EVENTS, "eventbrite/page-1.json")
    assert batch.reconciles and batch.input_records == len(records)
    assert batch.quarantine["reason"].null_count() == 0
