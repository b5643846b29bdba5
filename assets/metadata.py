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


PERSONAL_COLUMNS = (
    "email",
    "phone",
    "full_name",
    "first_name",
    "last_name",
    "handle_instagram",
    "handle_linkedin",
    "handle_twitter",
    "handle_github",
    "handle_website",
)


def mask_expr(col: str) -> pl.Expr:
    """Keeps the shape of a personal value, not the value: "bob@gmail.com" -> "b…@gmail.com",
    names and handles to their first letter."""
    text = pl.col(col).cast(pl.String)
    if col == "email":
        return (text.str.slice(0, 1) + "…@" + text.str.extract(r"@(.*)$", 1)).alias(col)
    if col == "phone":
        return (text.str.slice(0, 3) + "…" + text.str.slice(-2)).alias(col)
    return (text.str.slice(0, 1) + "…").alias(col)


def masked_table(frame: pl.DataFrame, limit: int = 10) -> MetadataValue:
    """`md_table` with personal columns masked: metadata is visible to every UI user."""
    head = frame.head(limit)
    masked = [mask_expr(c) for c in PERSONAL_COLUMNS if c in head.columns]
    return md_table(head.with_columns(masked) if masked else head, limit)
