"""`community import` and `community sync` on the real services and the fake APIs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from assets.imports import eventbrite_exports, luma_exports, partiful_exports
from cli.main import app
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from resources.stores import ExportsResource, LandingResource
from tests.integration.test_slice import FakeApis, start_fakes
from tests.unit.ingest.test_exports_downloads import write_downloads

runner = CliRunner()


@pytest.fixture()
def cli_env(
    services: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeApis]:
    apis = start_fakes()
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LUMA_BASE_URL", f"{apis.luma_server.url}/v1")
    monkeypatch.setenv("EVENTBRITE_BASE_URL", f"{apis.eventbrite_server.url}/v3")
    monkeypatch.setenv("LUMA_REQUESTS_PER_MINUTE", "60000")
    monkeypatch.setenv("SYNC_PAGE_SIZE", "10")
    monkeypatch.setenv("COLUMNS", "160")
    yield apis
    apis.luma_server.stop()
    apis.eventbrite_server.stop()


def test_import_folder_lands_raw_and_loads_the_graph(
    graph: GraphStore, figures: FigureStore, settings: Settings, cli_env: FakeApis, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["import", str(settings.samples_dir)])
    assert result.exit_code == 0, result.output
    assert "luma" in result.output and "partiful" in result.output
    assert "no" not in [line.split()[-2] for line in result.output.splitlines() if "│ " in line]
    # Each quarantine reason with where its records were, and where they are kept.
    assert (
        "quarantined: partiful: missing Name (1 record: partiful/rooftop-social_2026-10-24.csv #10)"
        in result.output
    )
    assert (
        "quarantined: luma: missing guest id (1 record: luma/guests/evt-founders-oct.csv #7)"
        in (result.output)
    )
    assert (
        f"quarantined records as received: {tmp_path / 'data' / 'normalized' / 'quarantine'}"
        in (result.output)
    )
    counts = graph.counts()
    assert counts["nodes"] > 0
    raw = list((tmp_path / "data" / "raw" / "partiful").rglob("*.csv"))
    originals = sorted(p.name for p in (settings.samples_dir / "partiful").glob("*.csv"))
    assert sorted(p.name for p in raw) == originals
    # The landed copies are byte for byte what was imported.
    for p in raw:
        assert p.read_bytes() == (settings.samples_dir / "partiful" / p.name).read_bytes()
    again = runner.invoke(app, ["import", str(settings.samples_dir), "--source", "luma"])
    assert again.exit_code == 0, again.output
    assert graph.counts() == counts


def test_sync_range_then_rerun_is_idempotent(
    graph: GraphStore, figures: FigureStore, cli_env: FakeApis
) -> None:
    world = cli_env.world
    args = ["--start", "2026-09-01", "--end", "2026-12-31"]
    first = runner.invoke(app, ["sync", "eventbrite", *args])
    assert first.exit_code == 0, first.output
    assert f"│ eventbrite │ {world.eventbrite_attendee_count}" in first.output
    luma = runner.invoke(app, ["sync", "luma", *args])
    assert luma.exit_code == 0, luma.output
    counts = graph.counts()
    rerun = runner.invoke(app, ["sync", "eventbrite", *args])
    assert rerun.exit_code == 0, rerun.output
    assert "eventbrite incremental sync" in rerun.output and "│ eventbrite │ 0 " in rerun.output
    full = runner.invoke(app, ["sync", "eventbrite", *args, "--full"])
    assert full.exit_code == 0 and "eventbrite full sync" in full.output
    assert graph.counts() == counts


def test_sync_errors_are_clear(cli_env: FakeApis, monkeypatch: pytest.MonkeyPatch) -> None:
    bad_range = runner.invoke(app, ["sync", "luma", "--start", "2026-10-02", "--end", "2026-10-01"])
    assert bad_range.exit_code == 2 and "before --start" in bad_range.output
    unknown = runner.invoke(
        app, ["sync", "partiful", "--start", "2026-10-01", "--end", "2026-10-02"]
    )
    assert unknown.exit_code == 2 and "no API sync for 'partiful'" in unknown.output
    monkeypatch.setenv("LUMA_API_KEY", "wrong")
    rejected = runner.invoke(app, ["sync", "luma", "--start", "2026-09-01", "--end", "2026-09-30"])
    assert rejected.exit_code == 1
    assert "luma: API key rejected (401)" in rejected.output


def test_import_a_folder_as_downloaded(
    graph: GraphStore, figures: FigureStore, settings: Settings, cli_env: FakeApis, tmp_path: Path
) -> None:
    root = write_downloads(tmp_path / "downloads")
    result = runner.invoke(app, ["import", str(root)])
    assert result.exit_code == 0, result.output
    out = result.output
    # Every platform imported; the summary shows the field issues beside the counts.
    assert "│ luma       │ 4     │ 4          │ 0           │ yes        │ 1" in out
    assert "│ eventbrite │ 2     │ 2          │ 0           │ yes        │ 1" in out
    assert "│ partiful   │ 3     │ 3          │ 0           │ yes        │ 0" in out
    assert "skipped: guest list.xlsx: Excel workbook" in out
    assert "skipped: notes.txt: columns match no known export" in out
    assert "skipped: partiful/: folder holds no files" in out
    assert "field issue: luma email: unparseable email (1 record kept with the field empty)" in out
    assert "@globex.net" not in out  # counts and reasons, never the values
    rows = graph.run(
        "MATCH (i:Identity {observation_id: 'luma:gst-n2'})-[a:ATTENDED]->(e:Event) "
        "RETURN i.email AS email, i.phone AS phone, e.name AS event, a.status AS status"
    )
    assert rows == [
        {"email": None, "phone": "+14155550199", "event": "AI Builders Night", "status": "attended"}
    ]


def test_import_of_a_folder_with_nothing_importable_fails_saying_what_it_expected(
    cli_env: FakeApis, tmp_path: Path
) -> None:
    root = tmp_path / "junk"
    (root / "luma").mkdir(parents=True)
    (root / "luma" / "guests.xlsx").write_bytes(b"PK\x03\x04")
    (root / "readme.md").write_text("exports go here")
    result = runner.invoke(app, ["import", str(root)])
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "holds 2 files but no export of luma was found" in out
    assert "expected CSV guest exports" in out and "Attendee #" in out
    assert "skipped: luma/guests.xlsx: Excel workbook" in out


def test_import_with_neo4j_stopped_keeps_the_import_and_says_what_to_do(
    cli_env: FakeApis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nothing listens on: Neo4j stopped
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("NEO4J_URI", f"bolt://127.0.0.1:{closed}")
    root = write_downloads(tmp_path / "downloads")
    result = runner.invoke(app, ["import", str(root)])
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert f"the graph was not loaded: Neo4j at bolt://127.0.0.1:{closed} is not reachable" in out
    assert "community services up" in out and "--no-load" in out
    assert "Traceback" not in out and "│ luma" in out  # the summary, then the error
    # The import itself is kept: loading later needs no new download.
    assert list((tmp_path / "data" / "normalized" / "observations" / "luma").glob("*.parquet"))


def test_export_assets_report_skipped_files_and_field_issues(
    graph: GraphStore, settings: Settings, tmp_path: Path
) -> None:
    root = write_downloads(tmp_path / "downloads")
    result = dg.materialize(
        [luma_exports, eventbrite_exports, partiful_exports],
        resources={
            "exports": ExportsResource(folder=str(root)),
            "landing": LandingResource(data_dir=str(tmp_path / "data")),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    mats = result.asset_materializations_for_node("luma_exports")
    meta = {k: v.value for k, v in mats[0].metadata.items()}
    assert meta["files_imported"] == 2 and meta["files_skipped"] == 2
    assert {s["path"] for s in meta["skipped"]} == {"guest list.xlsx", "notes.txt"}  # type: ignore[attr-defined]
    assert meta["field_issues"] == 1
    assert meta["field_issue_reasons"] == [
        {"field": "email", "reason": "unparseable email", "records": 1}
    ]
    # Metadata previews never hold personal values.
    text = str(meta)
    for value in ("raj gupta@globex.net", "ana@silva.io", "+14155550199", "Raj Gupta"):
        assert value not in text
    checks = {
        (c.asset_key.to_user_string(), c.check_name): c.passed
        for c in result.get_asset_check_evaluations()
    }
    assert checks[("luma_exports", "files_understood")] is False
    assert checks[("luma_exports", "reconciles")] is True
    # The empty partiful/ folder is reported by the Partiful import.
    pf = result.asset_materializations_for_node("partiful_exports")[0].metadata
    assert "partiful/" in {s["path"] for s in pf["skipped"].value}  # type: ignore[attr-defined]


def test_export_asset_fails_when_its_folder_holds_nothing_it_understands(
    settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "exports"
    (root / "luma").mkdir(parents=True)
    (root / "luma" / "guests.pdf").write_bytes(b"%PDF-1.4")
    result = dg.materialize(
        [luma_exports],
        resources={
            "exports": ExportsResource(folder=str(root)),
            "landing": LandingResource(data_dir=str(tmp_path / "data")),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.step_failure_data.user_failure_data.description)  # type: ignore[union-attr]
    assert "holds files but none is a Luma export" in message
    assert "luma/guests.pdf: PDF report" in message and "expected CSV guest exports" in message


def test_sync_warns_about_an_incomplete_guest_list(
    graph: GraphStore, figures: FigureStore, cli_env: FakeApis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("SYNC_BACKOFF_SECONDS", "0.01")
    world = cli_env.world
    event = max(world.luma_events, key=lambda e: len(world.luma_guests[e["api_id"]]))
    eid = str(event["api_id"])
    cli_env.luma.state.set_faults(
        malformed_page=1, malformed_times=-1, malformed_kind="truncated", fault_event=eid
    )
    args = ["--start", "2026-09-01", "--end", "2026-12-31"]
    result = runner.invoke(app, ["sync", "luma", *args])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert f"warning: luma:{eid}" in out and "incomplete: malformed page" in out
    assert "fetched again next run" in out
