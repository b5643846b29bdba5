"""Small helpers that turn frames into Dagster metadata."""

from __future__ import annotations

import polars as pl
from dagster import MetadataValue


def md_table(frame: pl.DataFrame, limit: int = 10) -> MetadataValue:
    """A markdown preview of the first rows, for the asset page in the UI."""
    if frame.height == 0:
        return MetadataValue.md("_(no rows)_")
    head = frame.head(limit)
    cols = head.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.iter_rows():
        lines.append(
            "| " + " | ".join("" if v is None else str(v).replace("|", "/") for v in row) + " |"
        )
    return MetadataValue.md("\n".join(lines))
