"""Small helpers that turn frames into Dagster metadata."""

from __future__ import annotations

import polars as pl
from dagster import MetadataValue

# Metadata is visible to everyone with access to the Dagster UI: no contact details.
CONTACT_COLUMNS: frozenset[str] = frozenset(
    {"email", "emails", "phone", "phones", "email_key", "raw", "handle", "handles"}
)


def is_contact_column(name: str) -> bool:
    return name in CONTACT_COLUMNS or name.startswith("handle_") or name.startswith("h_")


def md_table(frame: pl.DataFrame, limit: int = 10) -> MetadataValue:
    """A markdown preview of the first rows, for the asset page in the UI.

    Emails, phones, handles and raw records are left out: previews are not an access path
    to personal data.
    """
    if frame.height == 0:
        return MetadataValue.md("_(no rows)_")
    head = frame.select([c for c in frame.columns if not is_contact_column(c)]).head(limit)
    cols = head.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.iter_rows():
        lines.append(
            "| " + " | ".join("" if v is None else str(v).replace("|", "/") for v in row) + " |"
        )
    return MetadataValue.md("\n".join(lines))
