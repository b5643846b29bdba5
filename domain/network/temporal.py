"""Membership over time: new, returning and lapsed members, and retention by cohort.

A member is *active* in a month when they attended (checked in or RSVP'd) an event that
started in it. Per month:
- new: active for the first time;
- returning: active, and active in some earlier month;
- lapsed: last active exactly `lapse_months` months before (so each member lapses once
  per absence, in the month the absence reaches `lapse_months`), and not active since.
A cohort is the members whose first month is the same; retention of a cohort `k` months
later is the share of it active in that month.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.network.coattendance import Attendance, WeightConfig, attendance_strength


def month_key(value: datetime) -> str:
    value = value.astimezone(UTC) if value.tzinfo else value
    return f"{value.year:04d}-{value.month:02d}"


def month_index(month: str) -> int:
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def month_from_index(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass(frozen=True)
class MonthActivity:
    month: str
    active: int
    new: int
    returning: int
    lapsed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "active": self.active,
            "new": self.new,
            "returning": self.returning,
            "lapsed": self.lapsed,
        }


def active_months(attendance: Iterable[Attendance]) -> dict[str, set[int]]:
    """Member -> indices of the months they were active in."""
    cfg = WeightConfig()
    out: dict[str, set[int]] = defaultdict(set)
    for a in attendance:
        if attendance_strength(a, cfg) > 0:
            out[a.member_id].add(month_index(month_key(a.starts_at)))
    return dict(out)


def activity_by_month(
    active: dict[str, set[int]], first: str, last: str, lapse_months: int = 3
) -> list[MonthActivity]:
    lo, hi = month_index(first), month_index(last)
    by_month: dict[int, set[str]] = defaultdict(set)
    for member, months in active.items():
        for m in months:
            by_month[m].add(member)
    firsts = {member: min(months) for member, months in active.items() if months}
    result = []
    for idx in range(lo, hi + 1):
        members = by_month.get(idx, set())
        new = sum(1 for m in members if firsts[m] == idx)
        lapse_from = idx - lapse_months
        lapsed = sum(
            1
            for m in by_month.get(lapse_from, set())
            if not any(lapse_from < k <= idx for k in active[m])
        )
        result.append(
            MonthActivity(month_from_index(idx), len(members), new, len(members) - new, lapsed)
        )
    return result


def cohort_retention(
    active: dict[str, set[int]], last: str, horizon: int = 12
) -> list[dict[str, Any]]:
    """Per cohort (first month): size and the share active 0..horizon months later."""
    last_idx = month_index(last)
    cohorts: dict[int, list[str]] = defaultdict(list)
    for member, months in active.items():
        if months and min(months) <= last_idx:
            cohorts[min(months)].append(member)
    rows = []
    for start in sorted(cohorts):
        members = cohorts[start]
        shares = []
        for k in range(0, min(horizon, last_idx - start) + 1):
            kept = sum(1 for m in members if start + k in active[m])
            shares.append(round(kept / len(members), 4))
        rows.append({"cohort": month_from_index(start), "size": len(members), "retention": shares})
    return rows
