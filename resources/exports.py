"""Reads export files exactly as received, tolerating encodings and BOMs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import polars as pl


def decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM) first, then Latin-1, which never fails."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_csv_text(raw: bytes) -> pl.DataFrame:
    """All columns as strings: typing is normalization's job, not the reader's."""
    text = decode(raw)
    if not text.strip():
        return pl.DataFrame()
    return pl.read_csv(io.StringIO(text), infer_schema=False, truncate_ragged_lines=True)


def read_luma_folder(root: Path) -> list[tuple[dict[str, Any], pl.DataFrame, str]]:
    """Luma exports: `luma/events.json` (event metadata) and `luma/guests/<event api_id>.csv`."""
    folder = root / "luma"
    events_file = folder / "events.json"
    if not events_file.exists():
        return []
    events = {str(e.get("api_id") or e.get("id")): e for e in json.loads(events_file.read_text())}
    out = []
    for csv_path in sorted((folder / "guests").glob("*.csv")):
        event = events.get(csv_path.stem, {"api_id": csv_path.stem, "name": csv_path.stem})
        out.append((event, read_csv_text(csv_path.read_bytes()), csv_path.name))
    return out
