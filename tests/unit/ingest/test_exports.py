import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.model import STATUSES
from domain.normalize.common import RECORD_INDEX
from ingest.exports import load_exports, read_csv_text, read_export, sniff_delimiter

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
LUMA_HEAD = "api_id,name,email,created_at,approval_status"


def test_empty_file_is_zero_records_with_note() -> None:
    for raw in (b"", b"   \n\n"):
        read = read_export(raw, source="luma", origin="e.csv")
        assert read.records == 0 and read.notes == ["e.csv: empty file"]


def test_header_only_file() -> None:
    read = read_export(b"api_id,name\n", origin="h.csv")
    assert read.records == 0
    assert [c for c in read.frame.columns if not c.startswith("__")] == ["api_id", "name"]
    assert read.notes == ["h.csv: no records (header only)"]


def test_bom_latin1_and_utf16() -> None:
    for raw in (
        "\ufeffapi_id;name\ngst-1;Zoë\n".encode(),
        "api_id;name\ngst-1;Zoë\n".encode("latin-1"),
        "api_id\tname\ngst-1\tZoë\n".encode("utf-16"),
    ):
        frame = read_csv_text(raw)
        assert frame.columns == ["api_id", "name"]
        assert frame["name"].to_list() == ["Zoë"]


def test_a_csv_a_spreadsheet_saved_on_windows_keeps_its_punctuation() -> None:
    """Windows spreadsheets save "CSV" as Windows-1252: curly apostrophes and dashes are
    bytes 0x80-0x9f, control characters if read as Latin-1."""
    raw = "Name,Status\nPriya O’Neil,Going\nJosé Núñez – host,Going\n".encode("cp1252")
    assert b"\x92" in raw and b"\x96" in raw
    assert read_csv_text(raw)["Name"].to_list() == ["Priya O’Neil", "José Núñez – host"]
    # A byte Windows-1252 leaves undefined: read as Latin-1, never an error.
    assert read_csv_text(b"Name,Status\nA\x81B \xe9,Going\n")["Name"].to_list() == ["A\x81B é"]


@pytest.mark.parametrize(
    ("line", "sep"),
    [("a,b,c", ","), ("a;b;c", ";"), ("a\tb\tc", "\t"), ('"x;y",b,c', ","), ("single", ",")],
)
def test_sniff_delimiter(line: str, sep: str) -> None:
    assert sniff_delimiter(line) == sep


def test_repeated_header_rows_are_quarantined_and_counted() -> None:
    text = f"{LUMA_HEAD}\ngst-1,A B,a@b.io,2026-10-01T10:00:00Z,approved\n{LUMA_HEAD}\ngst-2,C D,c@d.io,2026-10-01T10:00:00Z,approved\n"
    read = read_export(text.encode(), source="luma", origin="x.csv")
    assert read.frame.height == 2 and read.records == 3
    assert read.quarantine["reason"].to_list() == ["repeated header row"]
    assert read.quarantine["record_index"].to_list() == [1]


_LABELS = ["api_id", "name", "email", "status"]
_PADS = ["", " ", "\t", "\u00a0", "\u3000", "\u2028 "]
_TEXT = ["gst-1", "Zoë", "José", "name x", "xname", "nam", "é", "", "-", "Ünal Öz", "a\u00a0"]


@st.composite
def _cells(draw: st.DrawFn, label: str) -> str:
    if draw(st.booleans()):
        return draw(st.sampled_from(_PADS)) + label + draw(st.sampled_from(_PADS))
    return draw(st.sampled_from(_TEXT + _LABELS))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(*[_cells(label) for label in _LABELS]), min_size=1, max_size=12))
def test_repeated_headers_are_exactly_the_rows_that_read_as_one(
    rows: list[tuple[str, ...]],
) -> None:
    """A row is a repeated header when one of its first three cells, trimmed, is its
    label and so are half its cells, whatever spaces pad them (the cheap candidate test
    must never miss one)."""
    frame = pl.DataFrame(rows, schema=_LABELS, orient="row")
    read = read_export(frame.write_csv().encode(), source="luma", origin="x.csv")
    expected = [
        i
        for i, row in enumerate(rows)
        if any(cell.strip() == label for cell, label in zip(row[:3], _LABELS, strict=False))
        and sum(cell.strip() == label for cell, label in zip(row, _LABELS, strict=True)) >= 2
    ]
    assert read.quarantine["record_index"].to_list() == expected
    assert read.frame.height + read.quarantine.height == len(rows)


def test_ragged_rows() -> None:
    text = "a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12,\n"
    read = read_export(text.encode(), source="luma", origin="r.csv")
    assert read.records == 4
    assert read.frame.filter(pl.col("a") == "4")["c"].to_list() == [None]
    assert read.frame.filter(pl.col("a") == "10")["c"].to_list() == ["12"]
    assert read.quarantine["reason"].to_list() == ["ragged row: 4 fields for 3 columns"]
    assert read.quarantine["record_index"].to_list() == [2]


@pytest.mark.parametrize("ragged", [False, True], ids=["polars", "ragged-fallback"])
def test_lone_carriage_return_in_a_cell_stays_in_its_record(ragged: bool) -> None:
    # A CR not followed by LF is cell text, quoted or not, on both reading paths (a
    # ragged row sends the whole file through the csv module).
    text = 'a,b,c\n"x\ry",1,2\nz\r,3,4\n"p\r",5,6\n7,8,9\n'
    if ragged:
        text += "10,11,12,13\n"
    read = read_export(text.encode(), source="partiful", origin="cr.csv")
    assert read.records == (5 if ragged else 4)
    assert read.frame["b"].to_list() == ["1", "3", "5", "8"]
    assert read.frame["a"].to_list()[0] == "x\ry"
    assert read.frame["a"].to_list()[2] == "p\r"
    assert read.frame["__record_index"].to_list() == [0, 1, 2, 3]
    assert read.quarantine["record_index"].to_list() == ([4] if ragged else [])


def test_binary_file_is_quarantined_not_raised() -> None:
    read = read_export(b"\x00\x01\x02garbage\x00", source="luma", origin="bin.csv")
    assert read.frame.height == 0 and read.records == 1
    assert read.quarantine["record_index"].to_list() == [-1]
    assert read.quarantine["reason"][0].startswith("unreadable file")


def _copy_samples(tmp_path: Path) -> Path:
    root = tmp_path / "exports"
    shutil.copytree(SAMPLES, root)
    return root


@pytest.mark.parametrize("source", ["luma", "eventbrite", "partiful"])
def test_samples_load_and_reconcile(source: str) -> None:
    batch = load_exports(SAMPLES, source)
    assert batch.reconciles and batch.observations.height > 0
    assert batch.events.height >= 3
    assert set(batch.attendance["status"]) <= STATUSES
    assert batch.observations["observation_id"].is_unique().all()
    # Every attendance row belongs to a known event.
    assert set(batch.attendance["event_id"]) <= set(batch.events["event_id"])


def test_sample_quarantine_has_reasons() -> None:
    eb = load_exports(SAMPLES, "eventbrite")
    assert {"repeated header row", "missing Attendee #"} <= set(eb.quarantine["reason"])
    assert "unparseable email" in set(eb.field_issues["reason"])
    assert eb.reconciles
    pf = load_exports(SAMPLES, "partiful")
    assert pf.quarantine.height + pf.field_issues.height >= 3


def test_folder_with_broken_files(tmp_path: Path) -> None:
    root = _copy_samples(tmp_path)
    guests = root / "luma" / "guests"
    (guests / "evt-empty.csv").write_bytes(b"")
    (guests / "evt-semicolon.csv").write_bytes(
        f"\ufeff{LUMA_HEAD.replace(',', ';')}\ngst-s1;Zoë Ä;z@a.io;2026-10-01T10:00:00Z;approved\n".encode()
    )
    (guests / "evt-latin1.csv").write_bytes(
        f"{LUMA_HEAD},Extra column\ngst-l1,José Núñez,j@n.es,2026-10-01T10:00:00Z,approved,x\n".encode(
            "latin-1"
        )
    )
    (guests / "evt-wrong.csv").write_bytes(b"who,when\nAnn,today\nBo,today\n")
    before = load_exports(SAMPLES, "luma")
    batch = load_exports(root, "luma")
    assert batch.reconciles
    assert batch.input_records == before.input_records + 1 + 1 + 2
    names = set(batch.observations["full_name"])
    assert {"Zoë Ä", "José Núñez"} <= names
    wrong = batch.quarantine.filter(pl.col("origin") == "luma/guests/evt-wrong.csv")
    assert wrong.height == 2 and set(wrong["reason"]) == {
        "wrong column set: missing guest_id/api_id, email/name"
    }
    assert "luma/guests/evt-empty.csv: empty file" in batch.notes
    raw = json.loads(wrong["raw"][0])
    assert raw == {"who": "Ann", "when": "today"}


def test_missing_source_folder_is_empty(tmp_path: Path) -> None:
    batch = load_exports(tmp_path, "partiful")
    assert batch.input_records == 0 and batch.reconciles


def test_broken_events_json_falls_back(tmp_path: Path) -> None:
    root = _copy_samples(tmp_path)
    (root / "partiful" / "events.json").write_text("{not json")
    batch = load_exports(root, "partiful")
    assert batch.reconciles
    assert any("unreadable event metadata" in n for n in batch.notes)
    assert "partiful:rooftop-social_2026-10-24" in set(batch.events["event_id"])


def test_a_mistyped_time_zone_in_events_json_reads_local_times_as_utc(tmp_path: Path) -> None:
    """A hand-written side file with "America/NewYork" keeps every guest: the event's
    times are read as UTC and the batch says so, instead of the import failing."""
    root = _copy_samples(tmp_path)
    meta = json.loads((root / "partiful" / "events.json").read_text())
    meta[0]["timezone"] = "America/NewYork"
    (root / "partiful" / "events.json").write_text(json.dumps(meta))
    batch = load_exports(root, "partiful")
    assert batch.reconciles
    event = f"partiful:{meta[0]['id']}"
    assert (
        f"event {event}: unknown time zone 'America/NewYork': its local times are read as UTC"
        in (batch.notes)
    )
    row = batch.events.filter(pl.col("event_id") == event).row(0, named=True)
    assert row["timezone"] == "UTC" and str(row["starts_at"]) == "2026-10-24 19:00:00+00:00"
    guests = batch.observations.filter(pl.col("event_id") == event)
    assert guests.height > 0 and guests["observed_at"].null_count() < guests.height


@settings(max_examples=40, deadline=None)
@given(
    names=st.lists(
        st.from_regex(r"[A-Z][a-z]{1,8} [A-Z][a-z]{1,8}", fullmatch=True),
        min_size=1,
        max_size=30,
        unique=True,
    ),
    data=st.data(),
)
def test_a_quote_that_never_closes_loses_only_its_own_record(
    names: list[str], data: st.DataObject
) -> None:
    """A stray opening quote would make the reader take the rest of the file as one name:
    the record holding it is quarantined and every guest after it is still read."""
    cut = data.draw(st.integers(min_value=0, max_value=len(names) - 1))
    lines = [f"{name},Going" for name in names]
    lines[cut] = '"' + lines[cut]
    end = data.draw(st.sampled_from(["\n", "\r\n", ""]))  # the last line ended or not
    raw = ("Name,Status\n" + "\n".join(lines) + end).encode()
    read = read_export(raw, source="partiful", origin="party.csv")
    assert read.records == len(names)
    kept = read.frame.sort(RECORD_INDEX)
    assert kept["Name"].to_list() == names[:cut] + names[cut + 1 :]
    assert kept[RECORD_INDEX].to_list() == [i for i in range(len(names)) if i != cut]
    assert read.quarantine.select("record_index", "raw").rows() == [(cut, lines[cut])]
    assert read.quarantine["reason"][0].startswith("unclosed quote")
    assert any(f"line {cut + 2} opens a quote that never closes" in n for n in read.notes)


@pytest.mark.parametrize(
    "raw",
    [
        b'Name,Status,Note\nAb Cd,Going,5" tall\n"Smith, Bob",Going,x\n',  # a literal quote
        b'Name,Status,Note\nAb Cd,Going,"line one\nline two"\n',  # a multi-line answer
        b'Name,Status,Note\n"Smith, Bob",Going,"he said ""hi"""\n',  # escaped quotes
    ],
)
def test_quotes_that_pair_up_or_stand_inside_a_cell_are_not_taken_for_unclosed(
    raw: bytes,
) -> None:
    read = read_export(raw, source="partiful", origin="p.csv")
    assert read.quarantine.height == 0 and read.notes == []
    assert read.frame.height == raw.count(b"Going")
