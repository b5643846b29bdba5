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
BOM), UTF-16 with BOM, Windows-1252 and Latin-1; finds the header below a title a
spreadsheet or report download put above the table (`header_line_index`); sniffs comma,
semicolon, tab or pipe from the header line; reads every cell as text and empty cells as
null (absent); drops header rows repeated inside the file (quarantined as "repeated header
row"); pads short rows; quarantines rows with more non-empty fields than the header ("ragged row") and a record
whose quote never closes (the lines after it are read on their own, not swallowed into
one cell). A file that cannot be parsed at all becomes one quarantine row per data line (or
one row with record_index -1 when lines cannot be counted). Nothing here raises on bad
input: every record ends up normalized or quarantined, and the batch reconciles.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from domain.model import QUARANTINE_SCHEMA, Source, conform, empty
from domain.normalize.batch import NormalizedBatch
from domain.normalize.columns import parse_time_series
from domain.normalize.common import RECORD_INDEX, find_column, norm_key
from domain.normalize.eventbrite import normalize_eventbrite_csv
from domain.normalize.luma import normalize_luma_csv
from domain.normalize.partiful import event_meta_from_stem, normalize_partiful_csv

EXPORT_SUFFIXES = (".csv", ".tsv", ".txt")
_DELIMITERS = (",", ";", "\t", "|")


def decode(raw: bytes) -> str:
    """UTF-16 with BOM, UTF-8 (with or without BOM), then a single-byte encoding."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _single_byte(raw)


def _single_byte(raw: bytes) -> str:
    """Windows-1252, what a spreadsheet on Windows saves as "CSV" (its curly apostrophe
    in O’Neil is byte 0x92, a control character in Latin-1); Latin-1, which never fails,
    for the five bytes Windows-1252 leaves undefined."""
    try:
        return raw.decode("cp1252")
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
        lines = [line for line in _lines(text) if line.strip()]
        rows = [(i, line[:2000], reason) for i, line in enumerate(lines[1:])] or [
            (-1, text[:2000], reason)
        ]
    return ExportRead(
        frame=pl.DataFrame(), quarantine=_q(source, origin, rows), notes=[f"{origin}: {reason}"]
    )


def _lines(text: str) -> list[str]:
    """Lines as the CSV reader sees them: ended by LF or CR LF only (a lone CR, or any
    other character `str.splitlines` would break at, is text of the line)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _csv_rows(text: str, sep: str) -> Iterator[list[str]]:
    """`csv.reader` rows, with a CR not followed by LF kept as cell text (as polars reads
    it) instead of ending the record: it is swapped for a character absent from the
    text while the csv module reads, and swapped back in the cells."""
    hidden, stand_in = _hide_lone_cr(text)
    if stand_in is None:
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=sep)
        return
    for row in csv.reader(io.StringIO(hidden, newline=""), delimiter=sep):
        yield [cell.replace(stand_in, "\r") for cell in row]


def _hide_lone_cr(text: str) -> tuple[str, str | None]:
    """`text` with each CR not followed by LF swapped for a character absent from it (and
    that character), so the csv module does not end a record there as polars does not."""
    if not _LONE_CR.search(text):
        return text, None
    stand_in = next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text)
    return _LONE_CR.sub(stand_in, text), stand_in


_LONE_CR = re.compile(r"\r(?!\n)")


def _python_read(text: str, sep: str, source: str, origin: str) -> ExportRead:
    """Slow path for files polars refuses (rows longer than the header)."""
    reader = _csv_rows(text, sep)
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
        # Empty cells are null, as the polars path reads them.
        cells: list[str | None] = [cell or None for cell in row[:width]]
        cells += [None] * (width - len(row))
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
        io.BytesIO(data),  # read in place; plain bytes are copied first
        separator=sep,
        infer_schema=False,
        has_header=True,
        empty_string_is_null=True,
        row_index_name=RECORD_INDEX,
    )
    frame = frame.rename({c: c.strip() for c in frame.columns if c != RECORD_INDEX})
    return frame.with_columns(pl.col(RECORD_INDEX).cast(pl.Int64))


_BINARY_PROBE = 1 << 16
"""Bytes looked at for NULs: binary formats (spreadsheets, archives, images) have them
from the first block on; a text export with a stray NUL later is read as text."""


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
    if b"\x00" in data[:_BINARY_PROBE]:
        return _unreadable(None, source, origin, "binary content")
    first = re.search(rb"\S", data)
    if first is None:
        return ExportRead(frame=pl.DataFrame(), notes=[f"{origin}: empty file"])
    if data[:1] in (b"\r", b"\n"):
        data = data[data.rfind(b"\n", 0, first.start()) + 1 :]
    data, notes = _below_title(data, origin)
    end = data.find(b"\n")
    header_line = (data if end < 0 else data[:end]).decode("latin-1")
    sep = sniff_delimiter(header_line)
    read = _parse(data, sep, source, origin)
    read = _recover_unclosed_quote(read, data, sep, source, origin)
    read = _drop_repeated_headers(read, source, origin)
    read.notes[:0] = notes
    if read.frame.height == 0 and read.quarantine.height == 0:
        read.notes.append(f"{origin}: no records (header only)")
    return read


def _below_title(data: bytes, origin: str) -> tuple[bytes, list[str]]:
    """`data` from its header line on (see `header_line_index`), and a note when lines
    above it were left out."""
    at = header_line_index(_head_lines(data))
    if at == 0:
        return data, []
    cut = 0
    for _ in range(at):
        cut = data.index(b"\n", cut) + 1
    lines_above = "1 line" if at == 1 else f"{at} lines"
    return data[cut:], [f"{origin}: {lines_above} above the header left out (a title, not guests)"]


def _parse(data: bytes, sep: str, source: str, origin: str) -> ExportRead:
    """polars on the bytes; on failure polars on the decoded text, then the csv module
    (ragged rows), then every line quarantined as unreadable."""
    read: ExportRead | None = None
    try:
        read = ExportRead(frame=_polars_read(data, sep))
    except Exception as exc:  # polars raises several error types for malformed CSV
        error = str(exc)[:200]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _single_byte(data)
            try:
                read = ExportRead(frame=_polars_read(text.encode(), sep))
            except Exception as exc2:
                error = str(exc2)[:200]
        if read is None:
            try:
                read = _python_read(text, sep, source, origin)
            except Exception as exc3:
                return _unreadable(text, source, origin, f"{exc3} (polars: {error})")
    return read


def _recover_unclosed_quote(
    read: ExportRead, data: bytes, sep: str, source: str, origin: str
) -> ExportRead:
    """A quote opened and never closed makes a CSV reader take the rest of the file as one
    cell of its last record, so every guest after it would vanish into one name. The
    record where the quote opens is quarantined (its line as raw text) and the lines
    after it are read as records of their own, with the same header."""
    if read.frame.height == 0 or not _ends_in_open_quote(read.frame, data, sep):
        return read
    text = decode(data)
    start = _last_record_line(text, sep)
    lines = _lines(text)
    if start <= 1 or start > len(lines) or "\n".join(lines[start - 1 :]).count('"') % 2 == 0:
        return read  # the odd quote is elsewhere (say `5" tall` in a cell): nothing swallowed
    before = _parse("\n".join(lines[: start - 1]).encode(), sep, source, origin)
    tail = "\n".join([lines[0], *lines[start:]]).encode()
    after = _recover_unclosed_quote(_parse(tail, sep, source, origin), tail, sep, source, origin)
    cut = _next_index(before)
    reason = "unclosed quote: the record is cut at its line end, the lines after it read apart"
    shifted = after.quarantine.with_columns(
        pl.when(pl.col("record_index") >= 0)
        .then(pl.col("record_index") + cut + 1)
        .otherwise(pl.col("record_index"))
    )
    frames = [f for f in (before.frame, after.frame) if f.width]
    if after.frame.width:
        frames[-1] = after.frame.with_columns(pl.col(RECORD_INDEX) + cut + 1)
    return ExportRead(
        frame=pl.concat(frames, how="diagonal_relaxed") if frames else read.frame.clear(),
        quarantine=pl.concat(
            [
                before.quarantine,
                _q(source, origin, [(cut, lines[start - 1][:2000], reason)]),
                shifted,
            ]
        ),
        notes=[
            *before.notes,
            f"{origin}: line {start} opens a quote that never closes; that record is "
            "quarantined and the lines after it are read as records",
            *after.notes,
        ],
    )


def _ends_in_open_quote(frame: pl.DataFrame, data: bytes, sep: str) -> bool:
    """The last record holds a line break or a separator (what an open quote swallows)
    and the file's quotes do not pair up (checked only then: counting quotes costs a pass
    over the bytes)."""
    last = frame.tail(1).row(0)
    if not any(isinstance(cell, str) and ("\n" in cell or sep in cell) for cell in last):
        return False
    return data.count(b'"') % 2 == 1


def _last_record_line(text: str, sep: str) -> int:
    """The line (1 = the header) where the csv module's last record starts, with a lone
    CR kept as cell text as elsewhere in this module."""
    reader = csv.reader(io.StringIO(_hide_lone_cr(text)[0], newline=""), delimiter=sep)
    start = ended = 0
    for _ in reader:
        start, ended = ended + 1, reader.line_num
    return start


def _next_index(read: ExportRead) -> int:
    """The record index after the last one `read` holds (kept or quarantined)."""
    found = [-1]
    if read.frame.height:
        found.append(int(read.frame[RECORD_INDEX].max()))  # type: ignore[arg-type]
    if read.quarantine.height:
        found.append(int(read.quarantine["record_index"].max()))  # type: ignore[arg-type]
    return max(found) + 1


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


# ---------------------------------------------------------------- folders as downloaded

_SIDE_FILES = {"events.json"}
_NOT_CSV = {
    ".xlsx": "Excel workbook: download the guest list as CSV instead",
    ".xls": "Excel workbook: download the guest list as CSV instead",
    ".numbers": "Numbers document: export it as CSV",
    ".zip": "archive: unpack it into the folder first",
    ".json": "JSON file that is not an events.json side file",
    ".pdf": "PDF report: download the guest list as CSV instead",
}
EXPECTED = (
    "expected CSV guest exports, either in luma/, eventbrite/ and partiful/ folders or "
    "anywhere with a recognisable header: Luma (guest_id or api_id, name, email, "
    "approval_status, …), Eventbrite (Order #, Attendee #, Attendee Status, …), "
    "Partiful (Name, Status, RSVP date, Is Plus One Of, …)"
)


EXPORT_FOLDERS = (Source.LUMA.value, Source.EVENTBRITE.value, Source.PARTIFUL.value)
UNKNOWN_COLUMNS = "columns match no known export (not a Luma, Eventbrite or Partiful guest list)"


@dataclass(frozen=True)
class Skipped:
    """A file or folder of an export folder that was not imported, and why."""

    path: str  # relative to the export folder
    reason: str


@dataclass
class FolderPlan:
    """Which source imports each file of an export folder; everything else is skipped."""

    root: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    total_files: int = 0

    def for_source(self, source: str) -> list[Path]:
        return self.files.get(source, [])

    def skipped_for(self, source: str) -> list[Skipped]:
        """Skipped entries a source's import reports: those under its own folder and those
        outside every source folder (each source's import looked at them)."""
        return [
            s
            for s in self.skipped
            if s.path.split("/", 1)[0] == source or s.path.split("/", 1)[0] not in EXPORT_FOLDERS
        ]


def header_columns(raw: bytes) -> list[str]:
    """The header cells of a CSV (decoded and split like the reader), found as the reader
    finds them: the first non-empty line, or a known header a few lines below a title."""
    lines = _head_lines(raw)
    if not any(line.strip() for line in lines):
        return []
    return _line_cells(lines[header_line_index(lines)])


def _head_lines(raw: bytes) -> list[str]:
    """The lines of a file's first 64 KB, decoded as the whole file would be: enough to
    find its header (`header_line_index`)."""
    return _lines(decode(raw[:65536]))


def _line_cells(line: str) -> list[str]:
    try:
        row = next(csv.reader([line], delimiter=sniff_delimiter(line)), [])
    except csv.Error:  # a lone CR in a cell: not a header line
        return []
    return [c.strip().lstrip("\ufeff") for c in row]


def header_line_index(lines: list[str]) -> int:
    """Which of a file's first lines is its header: the first non-empty one, unless that is
    no known export's header and one of the next few is. Spreadsheet tools and report
    downloads put a title (and a blank line) above the table; those lines are not guests."""
    filled = [i for i, line in enumerate(lines[:_TITLE_LINES]) if line.strip()]
    if not filled:
        return 0
    if detect_platform(_line_cells(lines[filled[0]])) is None:
        for i in filled[1:]:
            if detect_platform(_line_cells(lines[i])) is not None:
                return i
    return filled[0]


_TITLE_LINES = 10
"""How far down a file a known header is looked for below a title."""


def detect_platform(columns: list[str]) -> str | None:
    """The platform whose export has this header, when the columns say so unambiguously."""
    keys = {norm_key(c) for c in columns}
    if {"attendee #", "order #"} & keys or ({"attendee status", "ticket type"} <= keys):
        return Source.EVENTBRITE.value
    luma_id = {"api id", "guest id"} & keys
    luma_marks = {"approval status", "qr code url", "checked in at", "ticket name", "utm source"}
    if luma_id and (luma_marks & keys or "email" in keys):
        return Source.LUMA.value
    if "name" in keys and (
        {"is plus one of", "rsvp date"} & keys or {"status", "invited by"} <= keys
    ):
        return Source.PARTIFUL.value
    return None


def plan_folder(root: Path) -> FolderPlan:
    """Sorts every file under `root` to the source that imports it, or to `skipped`.

    A CSV (`.csv`, `.tsv`, `.txt`) whose header names its platform goes to that platform
    wherever it lies (a folder of mixed downloads works); one with an unrecognised header
    goes to the source folder it lies in (whose import quarantines it with the reason), and
    is skipped outside source folders. `events.json` in a source folder is that source's
    event metadata. Other files, hidden files and empty folders are skipped with a reason.
    """
    plan = FolderPlan(root=root)
    if not root.is_dir():
        plan.skipped.append(Skipped(".", f"{root} is not a folder"))
        return plan
    sources = set(EXPORT_FOLDERS)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        top = rel.split("/", 1)[0]
        if path.is_dir():
            if not any(p.is_file() for p in path.rglob("*")):
                plan.skipped.append(Skipped(rel + "/", "folder holds no files"))
            continue
        plan.total_files += 1
        in_source = top if top in sources and "/" in rel else None
        if any(part.startswith(".") for part in rel.split("/")):
            plan.skipped.append(Skipped(rel, "hidden file"))
            continue
        if path.name in _SIDE_FILES and in_source and rel.count("/") == 1:
            continue  # event metadata, read by the source's import
        suffix = path.suffix.lower()
        if suffix not in EXPORT_SUFFIXES:
            reason = _NOT_CSV.get(suffix, f"not a CSV export ({suffix or 'no extension'})")
            plan.skipped.append(Skipped(rel, reason))
            continue
        try:
            with path.open("rb") as fh:
                head = fh.read(65536)
        except OSError as exc:
            plan.skipped.append(Skipped(rel, f"unreadable: {exc}"))
            continue
        utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
        binary = b"\x00" in head[:4096] and not utf16
        platform = None if binary else detect_platform(header_columns(head))
        if platform is None and in_source is None:
            plan.skipped.append(Skipped(rel, UNKNOWN_COLUMNS))
            continue
        chosen = platform or in_source
        assert chosen is not None
        if in_source and platform and platform != in_source:
            plan.notes.append(f"{rel}: in {in_source}/ but its columns are {platform}'s")
        plan.files.setdefault(chosen, []).append(path)
    if plan.total_files == 0:
        plan.skipped.append(Skipped(".", "the export folder holds no files"))
    return plan


_NOISE = re.compile(
    r"(?i)(\(\d+\)$|\bguest[ _-]?list\b|\bguests\b|\battendees?\b|\battendee summary\b|"
    r"\breport\b|\bexport(ed)?\b|\d{4}-\d{2}-\d{2}([ T_-]?\d{2}[-:_.]?\d{2}([-:_.]?\d{2})?)?"
    r"|\b\d{8}(T?\d{4,6})?\b)"
)
_LUMA_ID = re.compile(r"\bevt-[A-Za-z0-9]+\b")


def event_name_from_file(stem: str) -> str:
    """The event's name in a downloaded file's name: download dates, "Guests", "Export",
    "(1)" copies and separators removed ("AI Night - Guests - 2026-10-23-09-15-02")."""
    return _clean_name(stem) or stem


def _clean_name(stem: str) -> str:
    text = _NOISE.sub(" ", stem)
    return re.sub(r"[\s_\-–—]+", " ", text).strip(" -_.")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unnamed"


def _derived_start(frame: pl.DataFrame, checked: str | None, registered: str | None) -> str | None:
    """Start of an event known only from its guest list: the first check-in, else the last
    registration (an approximation, documented as such)."""
    for col, pick in ((checked, "min"), (registered, "max")):
        if col is None or col not in frame.columns:
            continue
        times, _ = parse_time_series(frame[col], pl.Series([TZ_UTC] * frame.height))
        value = times.min() if pick == "min" else times.max()
        if value is not None:
            return value.isoformat()  # type: ignore[union-attr]
    return None


TZ_UTC = "UTC"


def luma_event_for_file(
    path: Path, frame: pl.DataFrame, events: list[dict[str, Any]]
) -> tuple[dict[str, Any], str]:
    """The Luma event a guest CSV belongs to, and how it was found: `events.json` by the
    file stem (or an `evt-…` id in the file name, or the event name in it); else the file
    name gives the name and id (`name-<slug>`) and the CSV's own columns the start."""
    by_id = {str(e.get("api_id") or e.get("id")): e for e in events}
    if path.stem in by_id:
        return by_id[path.stem], "events.json"
    found = _LUMA_ID.search(path.stem)
    if found and found.group(0) in by_id:
        return by_id[found.group(0)], "events.json"
    name = event_name_from_file(path.stem)
    by_name = {norm_key(str(e.get("name") or "")): e for e in events if e.get("name")}
    if norm_key(name) in by_name:
        return by_name[norm_key(name)], "events.json (by name)"
    if found:
        eid = found.group(0)
        name = _clean_name(_LUMA_ID.sub(" ", path.stem)) or eid
    else:
        eid = f"name-{_slug(name)}"
    columns = [c for c in frame.columns if c != RECORD_INDEX]
    start = _derived_start(
        frame,
        find_column(columns, "checked_in_at"),
        find_column(columns, "registered_at", "created_at"),
    )
    return {"api_id": eid, "name": name, "start_at": start, "timezone": TZ_UTC}, "file name"


def _luma(
    frame: pl.DataFrame,
    *,
    path: Path,
    events: list[dict[str, Any]],
    origin: str,
    notes: list[str],
) -> NormalizedBatch:
    event, how = luma_event_for_file(path, frame, events)
    if how == "file name":
        notes.append(
            f"{origin}: event {event['api_id']!r} ({event['name']!r}) taken from the file name; "
            "start from its check-ins or registrations"
        )
    return normalize_luma_csv(frame, event, origin)


def _eventbrite(
    frame: pl.DataFrame,
    *,
    path: Path,
    event: dict[str, Any] | None,
    origin: str,
    known: list[dict[str, Any]],
    notes: list[str],
) -> NormalizedBatch:
    columns = [c for c in frame.columns if c != RECORD_INDEX]
    if event is None and not find_column(columns, "Event ID", "Event Name"):
        name = event_name_from_file(path.stem)
        by_name = {norm_key(str((e.get("name") or {}).get("text") or "")): e for e in known}
        event = by_name.get(norm_key(name)) or {
            "id": f"name-{_slug(name)}",
            "name": {"text": name},
            "start": {"utc": _derived_start(frame, None, find_column(columns, "Order Date"))},
        }
        notes.append(f"{origin}: no event column; event {name!r} taken from the file name")
    return normalize_eventbrite_csv(frame, event, origin, known_events=known)


def _partiful(frame: pl.DataFrame, *, event: dict[str, Any], origin: str) -> NormalizedBatch:
    return normalize_partiful_csv(frame, event, origin)


def partiful_meta_for_file(path: Path, by_file: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Side-file entry by stem; else `<slug>_<YYYY-MM-DD>`; else the cleaned file name."""
    if path.stem in by_file:
        return by_file[path.stem]
    meta = event_meta_from_stem(path.stem)
    if meta.get("start") is None:
        name = event_name_from_file(path.stem)
        by_title = {norm_key(str(e.get("title") or "")): e for e in by_file.values()}
        if norm_key(name) in by_title:
            return by_title[norm_key(name)]
        meta = {**meta, "title": name}
    return meta


@dataclass
class ExportImport:
    """One source's share of an export folder: the batch, the files read, what was skipped."""

    source: str
    batch: NormalizedBatch
    files: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def load_exports(root: Path, source: str, plan: FolderPlan | None = None) -> NormalizedBatch:
    """Every export file of one source under `root` (see `plan_folder`)."""
    return import_exports(root, source, plan).batch


def import_exports(root: Path, source: str, plan: FolderPlan | None = None) -> ExportImport:
    """Normalizes one source's files of an export folder and lists what it skipped."""
    src = Source(source)
    plan = plan or plan_folder(root)
    folder = root / src.value
    notes: list[str] = [n for n in plan.notes if n.split(":", 1)[0].startswith(f"{src.value}/")]
    events = _load_events(folder / "events.json", notes)
    batches: list[NormalizedBatch] = []
    paths = plan.for_source(src.value)

    def origin(path: Path) -> str:
        return path.relative_to(root).as_posix()

    for path in paths:
        where = origin(path)
        if src is Source.LUMA:
            normalize: Callable[[pl.DataFrame], NormalizedBatch] = partial(
                _luma, path=path, events=events, origin=where, notes=notes
            )
        elif src is Source.EVENTBRITE:
            by_id = {str(e.get("id")): e for e in events}
            normalize = partial(
                _eventbrite,
                path=path,
                event=by_id.get(path.stem),
                origin=where,
                known=events,
                notes=notes,
            )
        elif src is Source.PARTIFUL:
            by_file = {str(e.get("file") or e.get("id")): e for e in events}
            meta = partiful_meta_for_file(path, by_file)
            normalize = partial(_partiful, event=meta, origin=where)
        else:
            notes.append(f"{where}: no export format known for {src.value}")
            continue
        batches.append(
            normalize_file(path.read_bytes(), source=src.value, origin=where, normalize=normalize)
        )
    batch = NormalizedBatch.concat(batches)
    batch.notes = notes + batch.notes
    return ExportImport(
        source=src.value,
        batch=batch,
        files=[origin(p) for p in paths],
        skipped=plan.skipped_for(src.value),
    )
