"""The result of normalizing one input (a file or an API page set)."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from domain.model import (
    ATTENDANCE_SCHEMA,
    EVENTS_SCHEMA,
    FIELD_ISSUES_SCHEMA,
    OBSERVATIONS_SCHEMA,
    QUARANTINE_SCHEMA,
    conform,
    empty,
)


@dataclass
class NormalizedBatch:
    """Every input record lands in exactly one of `observations` or `quarantine`; a kept
    record's unreadable fields are nulled and listed in `field_issues` (beside the count)."""

    input_records: int = 0
    events: pl.DataFrame = field(default_factory=lambda: empty(EVENTS_SCHEMA))
    observations: pl.DataFrame = field(default_factory=lambda: empty(OBSERVATIONS_SCHEMA))
    attendance: pl.DataFrame = field(default_factory=lambda: empty(ATTENDANCE_SCHEMA))
    quarantine: pl.DataFrame = field(default_factory=lambda: empty(QUARANTINE_SCHEMA))
    notes: list[str] = field(default_factory=list)  # file-level remarks (e.g. "empty file")
    field_issues: pl.DataFrame = field(default_factory=lambda: empty(FIELD_ISSUES_SCHEMA))

    @property
    def reconciles(self) -> bool:
        return self.input_records == self.observations.height + self.quarantine.height

    @staticmethod
    def concat(batches: list[NormalizedBatch]) -> NormalizedBatch:
        if not batches:
            return NormalizedBatch()

        def cat(name: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
            frames = [conform(getattr(b, name), schema) for b in batches]
            return pl.concat(frames, how="vertical")

        events = cat("events", EVENTS_SCHEMA).unique(
            subset="event_id", keep="last", maintain_order=True
        )
        return NormalizedBatch(
            input_records=sum(b.input_records for b in batches),
            events=events,
            observations=cat("observations", OBSERVATIONS_SCHEMA),
            attendance=cat("attendance", ATTENDANCE_SCHEMA),
            quarantine=cat("quarantine", QUARANTINE_SCHEMA),
            notes=[n for b in batches for n in b.notes],
            field_issues=cat("field_issues", FIELD_ISSUES_SCHEMA),
        )
