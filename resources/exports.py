"""Reads export files exactly as received and turns whole export folders into batches.

Folder layout under the exports root (`load_exports(root, source)`):

    <root>/luma/events.json            list of Luma event objects (API shape)
    <root>/luma/guests/<event id>.csv  one guest export per event (file stem = event api_id)
    <root>/eventbrite/events.json      optional list of Eventbrite event objects (API shape)
    <root>/eventbrite/*.csv            attendee reports; the stem names the event when it is
                                       an id in events.json, else rows use `Event ID` /
                                       `Event Name` (see domain.normalize.eventbrite)
    <root>/partiful/events.json        optional list of {id, title, start, timezone, url,
                                       city, file?}; see domain.normalize.partiful
    <root>/partiful/*.csv              one guest list per event

`.tsv` and `.txt` files are read like `.csv`. Reading tolerates UTF-8 (with or without
BOM), UTF-16 with BOM and Latin-1; sniffs comma, semicolon, tab or pipe from the header
line; drops header rows repeated inside the file (quarantined as "repeated header row");
pads short rows; quarantines rows with more non-empty fields than the header ("ragged
row"). A file that cannot be parsed at all becomes one quarantine row per data line (or
one row with record_index -1 when lines cannot be counted). Nothing here raises on bad
input: every record ends up normalized or quarantined, and the batch reconciles.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from domain.model import QUARANTINE_SCHEMA, Source, conform, empty
from domain.normalize.batch import NormalizedBatch
from domain.normalize.common import RECORD_INDEX
from domain.normalize.eventbrite import normalize_eventbrite_csv
from domain.normalize.luma import normalize_luma_csv
from domain.normalize.partiful import event_meta_from_stem, normalize_partiful_csv

EXPORT_SUFFIXES = (".csv", ".tsv", ".txt")
_DELIMITERS = (",", ";", "\t", "|")


def decode(raw: bytes) -> str:
    """UTF-16 with BOM, UTF-8 (with or without BOM), then Latin-1, which never fails."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header line most often, ignoring quoted text."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass
class ExportRead:
    """One file as read: a string frame (with `RECORD_INDEX`) plus what the reader set aside."""

    frame: pl.DataFrame
    quarantine: pl.DataFrame = field(default_factory=lambda: empty(QUARANTINE_SCHEMA))
    notes: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return self.frame.height + self.quarantine.height


def _q(source: str, origin: str, rows: list[tuple[int, str, str]]) -> pl.DataFrame:
    return conform(
        pl.DataFrame(
            [(source, origin, i, raw, reason) for i, raw, reason in rows],
            schema=QUARANTINE_SCHEMA,
            orient="row",
        ),
        QUARANTINE_SCHEMA,
    )


def _unreadable(text: str | None, source: str, origin: str, why: str) -> ExportRead:
    reason = f"unreadable file: {why}"
    if text is None:
        rows = [(-1, "", reason)]
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        rows = [(i, line[:2000], reason) for i, line in enumerate(lines[1:])] or [
            (-1, text[:2000], reason)
        ]
    return ExportRead(
        frame=pl.DataFrame(), quarantine=_q(source, origin, rows), notes=[f"{origin}: {reason}"]
    )


def _python_read(text: str, sep: str, source: str, origin: str) -> ExportRead:
    """Slow path for files polars refuses (rows longer than the header)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    header = next(reader, None)
    if not header:
        return ExportRead(frame=pl.DataFrame(), notes=[f"{origin}: empty file"])
    width = len(header)
    good: list[list[str | None]] = []
    indexes: list[int] = []
    bad: list[tuple[int, str, str]] = []
    for i, row in enumerate(reader):
        if not row:
            continue
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            raw = json.dumps(row, ensure_ascii=False)
            bad.append((i, raw, f"ragged row: {len(row)} fields for {width} columns"))
            continue
        cells: list[str | None] = list(row[:width]) + [None] * (width - len(row))
        good.append(cells)
        indexes.append(i)
    names = _unique_names(header)
    frame = pl.DataFrame(good, schema=dict.fromkeys(names, pl.String), orient="row")
    frame = frame.with_columns(pl.Series(RECORD_INDEX, indexes, dtype=pl.Int64))
    return ExportRead(frame=frame, quarantine=_q(source, origin, bad))


def _unique_names(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in header:
        name = name.strip()
        if name in seen:
            seen[name] += 1
            name = f"{name}_duplicated_{seen[name] - 1}"
        else:
            seen[name] = 0
        out.append(name)
    return out


def _polars_read(data: bytes, sep: str) -> pl.DataFrame:
    frame = pl.read_csv(
        data,
        separator=sep,
        infer_schema=False,
        has_header=True,
        row_index_name=RECORD_INDEX,
    )
    frame = frame.rename({c: c.strip() for c in frame.columns if c != RECORD_INDEX})
    return frame.with_columns(pl.col(RECORD_INDEX).cast(pl.Int64))


def read_export(raw: bytes, *, source: str = "", origin: str = "") -> ExportRead:
    """Reads one export file; never raises on bad content (see module docstring).

    UTF-8 bytes go to polars untouched (no decode/encode copy of large files); other
    encodings are decoded first."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        data = decode(raw).encode()
    elif raw.startswith(b"\xef\xbb\xbf"):
        data = raw[3:]
    else:
        data = raw
    if b"\x00" in data:
        return _unreadable(None, source, origin, "binary content")
    first = re.search(rb"\S", data)
    if first is None:
        return ExportRead(frame=pl.DataFrame(), notes=[f"{origin}: empty file"])
    if data[:1] in (b"\r", b"\n"):
        data = data[data.rfind(b"\n", 0, first.start()) + 1 :]
    end = data.find(b"\n")
    header_line = (data if end < 0 else data[:end]).decode("latin-1")
    sep = sniff_delimiter(header_line)
    read: ExportRead | None = None
    try:
        read = ExportRead(frame=_polars_read(data, sep))
    except Exception as exc:  # polars raises several error types for malformed CSV
        error = str(exc)[:200]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
            try:
                read = ExportRead(frame=_polars_read(text.encode(), sep))
            except Exception as exc2:
                error = str(exc2)[:200]
        if read is None:
            try:
                read = _python_read(text, sep, source, origin)
            except Exception as exc3:
                return _unreadable(text, source, origin, f"{exc3} (polars: {error})")
    read = _drop_repeated_headers(read, source, origin)
    if read.frame.height == 0 and read.quarantine.height == 0:
        read.notes.append(f"{origin}: no records (header only)")
    return read


def _drop_repeated_headers(read: ExportRead, source: str, origin: str) -> ExportRead:
    cols = [c for c in read.frame.columns if c != RECORD_INDEX]
    if not cols or read.frame.height == 0:
        return read
    # Cheap pre-checks on the first columns (a repeated header cell contains its label),
    # full comparison only on candidate rows.
    contains = [pl.col(c).str.contains(c, literal=True).any() for c in cols[:3]]
    if not any(read.frame.select(contains).row(0)):
        return read
    candidate = pl.any_horizontal(
        [(pl.col(c).str.strip_chars() == c).fill_null(False) for c in cols[:3]]
    )
    if not read.frame.select(candidate.any()).item():
        return read
    matches = pl.sum_horizontal(
        [(pl.col(c).str.strip_chars() == c).fill_null(False).cast(pl.Int32) for c in cols]
    )
    needed = max(1, (len(cols) + 1) // 2)
    flagged = read.frame.with_columns((candidate & (matches >= needed)).alias("__is_header"))
    headers = flagged.filter(pl.col("__is_header"))
    if headers.height == 0:
        return read
    q = headers.select(
        pl.lit(source).alias("source"),
        pl.lit(origin).alias("origin"),
        pl.col(RECORD_INDEX).cast(pl.Int64).alias("record_index"),
        pl.struct(cols).struct.json_encode().alias("raw"),
        pl.lit("repeated header row").alias("reason"),
    )
    return ExportRead(
        frame=flagged.filter(~pl.col("__is_header")).drop("__is_header"),
        quarantine=pl.concat([read.quarantine, conform(q, QUARANTINE_SCHEMA)]),
        notes=read.notes,
    )


def read_csv_text(raw: bytes) -> pl.DataFrame:
    """All columns as strings: typing is normalization's job, not the reader's."""
    frame = read_export(raw).frame
    return frame.drop(RECORD_INDEX) if RECORD_INDEX in frame.columns else frame


def normalize_file(
    raw: bytes,
    *,
    source: str,
    origin: str,
    normalize: Callable[[pl.DataFrame], NormalizedBatch],
) -> NormalizedBatch:
    """Reads one file and normalizes it; the reader's quarantine joins the batch's."""
    read = read_export(raw, source=source, origin=origin)
    batch = NormalizedBatch() if read.frame.width == 0 else normalize(read.frame)
    batch.input_records += read.quarantine.height
    if read.quarantine.height:
        batch.quarantine = pl.concat([read.quarantine, batch.quarantine]).sort("record_index")
    batch.notes = read.notes + batch.notes
    return batch


def _load_events(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    try:
        data = json.loads(decode(path.read_bytes()))
    except (OSError, ValueError) as exc:
        notes.append(f"{path.name}: unreadable event metadata ({exc}); using file names")
        return []
    if isinstance(data, dict):
        data = data.get("events", [])
    if not isinstance(data, list):
        notes.append(f"{path.name}: event metadata is not a list; using file names")
        return []
    return [e for e in data if isinstance(e, dict)]


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXPORT_SUFFIXES
    )


def _luma(frame: pl.DataFrame, *, event: dict[str, Any], origin: str) -> NormalizedBatch:
    return normalize_luma_csv(frame, event, origin)


def _eventbrite(
    frame: pl.DataFrame,
    *,
    event: dict[str, Any] | None,
    origin: str,
    known: list[dict[str, Any]],
) -> NormalizedBatch:
    return normalize_eventbrite_csv(frame, event, origin, known_events=known)


def _partiful(frame: pl.DataFrame, *, event: dict[str, Any], origin: str) -> NormalizedBatch:
    return normalize_partiful_csv(frame, event, origin)


def load_exports(root: Path, source: str) -> NormalizedBatch:
    """Every export file of one source under `root` (layout in the module docstring)."""
    src = Source(source)
    folder = root / src.value
    notes: list[str] = []
    events = _load_events(folder / "events.json", notes)
    batches: list[NormalizedBatch] = []

    def origin(path: Path) -> str:
        return path.relative_to(root).as_posix()

    if src is Source.LUMA:
        by_id = {str(e.get("api_id") or e.get("id")): e for e in events}
        for path in _files(folder / "guests"):
            event = by_id.get(path.stem, {"api_id": path.stem, "name": path.stem})
            batches.append(
                normalize_file(
                    path.read_bytes(),
                    source=src.value,
                    origin=origin(path),
                    normalize=partial(_luma, event=event, origin=origin(path)),
                )
            )
    elif src is Source.EVENTBRITE:
        by_id = {str(e.get("id")): e for e in events}
        for path in _files(folder):
            fixed = by_id.get(path.stem)
            batches.append(
                normalize_file(
                    path.read_bytes(),
                    source=src.value,
                    origin=origin(path),
                    normalize=partial(_eventbrite, event=fixed, origin=origin(path), known=events),
                )
            )
    elif src is Source.PARTIFUL:
        by_file = {str(e.get("file") or e.get("id")): e for e in events}
        for path in _files(folder):
            meta = by_file.get(path.stem) or event_meta_from_stem(path.stem)
            batches.append(
                normalize_file(
                    path.read_bytes(),
                    source=src.value,
                    origin=origin(path),
                    normalize=partial(_partiful, event=meta, origin=origin(path)),
                )
            )
    else:
        notes.append(f"{src.value}: no export format known")
    batch = NormalizedBatch.concat(batches)
    batch.notes = notes + batch.notes
    return batch


def read_luma_folder(root: Path) -> list[tuple[dict[str, Any], pl.DataFrame, str]]:
    """Luma exports as (event, frame, origin); `load_exports(root, "luma")` also counts the
    rows the reader sets aside, so prefer it where counts must reconcile."""
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
