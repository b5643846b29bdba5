"""Export folders as organizers download them: files straight from each platform, named
as the platform names them, in one folder or sorted by platform; nothing skipped silently."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ingest.exports import (
    UNKNOWN_COLUMNS,
    detect_platform,
    event_name_from_file,
    header_columns,
    import_exports,
    plan_folder,
    read_export,
)

LUMA_NEW = (
    "guest_id,name,first_name,last_name,email,phone_number,created_at,approval_status,"
    "utm_source,referrer,referred_by,checked_in_at,qr_code_url,amount,currency,ticket_name,"
    "What company do you work for?\n"
    "gst-n1,Ana Silva,Ana,Silva,ana@silva.io,,2026-10-20T10:00:00.000Z,approved,ig,,,"
    "2026-10-23T22:41:00.000Z,https://lu.ma/c/1,$0.00,USD,Standard,Silva Labs\n"
    "gst-n2,Raj Gupta,Raj,Gupta,raj gupta@globex.net,+14155550199,2026-10-21T09:00:00.000Z,"
    "approved,,,,2026-10-23T22:35:00.000Z,https://lu.ma/c/2,$0.00,USD,Standard,No answer provided.\n"
    "gst-n3,Mei Tanaka,Mei,Tanaka,mei@tanaka.jp,,2026-10-22T08:00:00.000Z,waitlist,,,,,"
    "https://lu.ma/c/3,$0.00,USD,Standard,\n"
)
LUMA_OLD = (
    "api_id,name,first_name,last_name,email,phone_number,created_at,approval_status,"
    "custom_source,checked_in_at,qr_code_url,amount,amount_tax,amount_discount,currency,"
    "coupon_code,eth_address,solana_address,survey_response_rating,survey_response_feedback,"
    "ticket_type_id,ticket_name,Instagram\n"
    "gst-o1,Bob Smith,Bob,Smith,bob@gmail.com,,2026-09-30T14:02:11.000Z,approved,,,"
    "https://lu.ma/c/o1,$0.00,$0.00,$0.00,USD,,,,,,tt-1,Standard,@bobsmith\n"
)
EVENTBRITE = (
    "Order #,Order Date,First Name,Last Name,Email,Quantity,Price Tier,Ticket Type,Attendee #,"
    "Group,Order Type,Currency,Total Paid,Fees Paid,Eventbrite Fees,"
    "Eventbrite Payment Processing,Attendee Status,Home Address 1\n"
    "5001,2026-11-01 10:00:00-04:00,Jle,Messurier,jle messurier@globex.net,2,,GA,9001,,"
    "Eventbrite Completed,USD,0,0,0,0,Attending,\n"
    "5001,2026-11-01 10:00:00-04:00,Kai,Mo,kai@mo.io,2,,GA,9002,,Eventbrite Completed,USD,0,0,0,0,"
    "Attending,\n"
)
PARTIFUL = (
    "Name,Status,RSVP date,Invited By,Is Plus One Of,What's your Instagram?\n"
    "Alice Chen,Host,2026-10-01 09:00:00,,,alicec\n"
    "Priya Raman,Going,2026-10-02 09:14:22,Alice Chen,,priya.codes\n"
    "Sam O,Going,2026-10-02 10:00:00,,Priya Raman,\n"
)


def write_downloads(root: Path) -> Path:
    """A folder as a new user has it: Luma CSVs straight in luma/ (no events.json, no
    guests/), the other platforms' downloads loose in the folder, and some clutter."""
    (root / "luma").mkdir(parents=True)
    (root / "luma" / "AI Builders Night - Guests - 2026-10-24-09-15-02.csv").write_text(LUMA_NEW)
    (root / "luma" / "evt-Xy12Ab34 guests.csv").write_text(LUMA_OLD)
    (root / "Product Meetup attendees report.csv").write_text(EVENTBRITE)
    (root / "Rooftop Social - Guest List (1).csv").write_text(PARTIFUL)
    (root / "guest list.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    (root / "notes.txt").write_text("bring name tags\nand pens\n")
    (root / "partiful").mkdir()
    return root


def test_headers_tell_the_platform() -> None:
    assert detect_platform(header_columns(LUMA_NEW.encode())) == "luma"
    assert detect_platform(header_columns(LUMA_OLD.encode())) == "luma"
    assert detect_platform(header_columns(EVENTBRITE.encode())) == "eventbrite"
    assert detect_platform(header_columns(PARTIFUL.encode())) == "partiful"
    assert detect_platform(header_columns(b"who,when\nAnn,today\n")) is None
    semicolons = PARTIFUL.replace(",", ";")
    assert detect_platform(header_columns(semicolons.encode("utf-16"))) == "partiful"


def test_event_names_from_download_names() -> None:
    assert event_name_from_file("AI Builders Night - Guests - 2026-10-24-09-15-02") == (
        "AI Builders Night"
    )
    assert event_name_from_file("Rooftop Social - Guest List (1)") == "Rooftop Social"
    assert event_name_from_file("Product Meetup attendees report") == "Product Meetup"


def test_every_file_is_imported_or_reported(tmp_path: Path) -> None:
    root = write_downloads(tmp_path / "downloads")
    plan = plan_folder(root)
    files = {s: sorted(p.name for p in plan.for_source(s)) for s in plan.files}
    assert files == {
        "luma": ["AI Builders Night - Guests - 2026-10-24-09-15-02.csv", "evt-Xy12Ab34 guests.csv"],
        "eventbrite": ["Product Meetup attendees report.csv"],
        "partiful": ["Rooftop Social - Guest List (1).csv"],
    }
    skipped = {s.path: s.reason for s in plan.skipped}
    assert set(skipped) == {"guest list.xlsx", "notes.txt", "partiful/"}
    assert skipped["guest list.xlsx"].startswith("Excel workbook")
    assert skipped["notes.txt"].startswith("columns match no known export")
    assert skipped["partiful/"] == "folder holds no files"
    assert plan.total_files == 6


def test_luma_csvs_straight_in_the_folder_are_imported(tmp_path: Path) -> None:
    root = write_downloads(tmp_path / "downloads")
    result = import_exports(root, "luma")
    batch = result.batch
    assert batch.input_records == 4 and batch.reconciles and batch.quarantine.height == 0
    events = {r["event_id"]: r for r in batch.events.iter_rows(named=True)}
    # Event from the file name; its start from the first check-in of its own list.
    night = events["luma:name-ai-builders-night"]
    assert night["name"] == "AI Builders Night"
    assert str(night["starts_at"]) == "2026-10-23 22:35:00+00:00"
    # An `evt-…` id in the file name is the event's id.
    assert events["luma:evt-Xy12Ab34"]["name"] == "evt-Xy12Ab34"
    assert any("taken from the file name" in n for n in batch.notes)
    # The guest with a space in her email keeps her attendance; the email is on record.
    raj = batch.observations.filter(pl.col("observation_id") == "luma:gst-n2").row(0, named=True)
    assert raj["email"] is None and raj["phone"] == "+14155550199"
    assert batch.field_issues.select("observation_id", "field", "reason").rows() == [
        ("luma:gst-n2", "email", "unparseable email")
    ]
    # Skipped entries outside every source folder are reported by each source's import.
    assert {s.path for s in result.skipped} == {"guest list.xlsx", "notes.txt"}


def test_events_json_still_names_the_event(tmp_path: Path) -> None:
    root = write_downloads(tmp_path / "downloads")
    (root / "luma" / "events.json").write_text(
        '[{"api_id": "evt-ai", "name": "AI Builders Night", "start_at": "2026-10-23T22:30:00Z",'
        ' "timezone": "America/New_York"}]'
    )
    batch = import_exports(root, "luma").batch
    assert "luma:evt-ai" in set(batch.attendance["event_id"])


def test_loose_downloads_of_other_platforms(tmp_path: Path) -> None:
    root = write_downloads(tmp_path / "downloads")
    eb = import_exports(root, "eventbrite").batch
    assert eb.reconciles and eb.quarantine.height == 0 and eb.observations.height == 2
    assert set(eb.events["name"]) == {"Product Meetup"}
    assert eb.field_issues["field"].to_list() == ["email"]
    pf = import_exports(root, "partiful").batch
    assert pf.reconciles and pf.observations.height == 3
    assert set(pf.events["name"]) == {"Rooftop Social"}


def test_files_in_folders_no_import_reads_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "downloads"
    (root / "meetup").mkdir(parents=True)
    (root / "meetup" / "rsvps.csv").write_text("Member,RSVP\nAnn,yes\n")
    (root / "meetup" / "Rooftop Social - Guest List.csv").write_text(PARTIFUL)
    (root / ".DS_Store").write_bytes(b"\x00\x01")
    plan = plan_folder(root)
    assert [p.name for p in plan.for_source("partiful")] == ["Rooftop Social - Guest List.csv"]
    skipped = {s.path: s.reason for s in plan.skipped}
    assert skipped == {"meetup/rsvps.csv": UNKNOWN_COLUMNS, ".DS_Store": "hidden file"}
    # Outside the source folders, every source's import reports them.
    for source in ("luma", "eventbrite", "partiful"):
        assert {s.path for s in import_exports(root, source, plan).skipped} == set(skipped)


def test_a_header_below_a_title_is_found(tmp_path: Path) -> None:
    """Spreadsheet tools and report downloads put a title and a blank line above the
    table: the known header below is the header, and the lines above are not guests."""
    titled = "Attendee Summary - Product Meetup\r\n\r\n" + EVENTBRITE.replace("\n", "\r\n")
    assert detect_platform(header_columns(titled.encode())) == "eventbrite"
    read = read_export(titled.encode(), source="eventbrite", origin="summary.csv")
    assert read.frame.columns[1] == "Order #" and read.frame.height == 2
    assert read.frame["Attendee #"].to_list() == ["9001", "9002"]
    assert read.notes == ["summary.csv: 2 lines above the header left out (a title, not guests)"]
    # In a folder of downloads it is told apart from clutter and imported like any report.
    root = tmp_path / "downloads"
    root.mkdir()
    (root / "Product Meetup attendees report.csv").write_text(titled, newline="")
    batch = import_exports(root, "eventbrite").batch
    assert batch.reconciles and batch.observations.height == 2 and batch.quarantine.height == 0


def test_a_first_line_is_the_header_unless_a_known_header_follows() -> None:
    # No known header anywhere: the first line is the header, as for any CSV.
    read = read_export(b"who,when\nAnn,today\nBo,later\n", source="partiful", origin="x.csv")
    assert read.frame.columns[1:] == ["who", "when"] and read.frame.height == 2
    assert not read.notes
    # A known header first: data rows that look like a header later change nothing.
    twice = PARTIFUL + PARTIFUL.splitlines()[0] + "\n"
    read = read_export(twice.encode(), source="partiful", origin="p.csv")
    assert read.frame.columns[1] == "Name" and read.frame.height == 3
    assert read.quarantine["reason"].to_list() == ["repeated header row"]
    # Only the first few lines are looked at: a title cannot hide a whole list.
    deep = "title\n" * 10 + PARTIFUL
    read = read_export(deep.encode(), source="partiful", origin="d.csv")
    assert "title" in read.frame.columns and "Name" not in read.frame.columns
