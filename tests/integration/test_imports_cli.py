"""`community import` and `community sync` on the real services and the fake APIs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.integration.test_slice import FakeApis, start_fakes

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
