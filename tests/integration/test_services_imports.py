"""`community import` and the pipeline's import assets go through `services.imports`:
the same export folder gives the same graph either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from ingest.landing import DataStore
from services import imports
from tests.integration.test_slice import run_refresh

runner = CliRunner()


def imported(graph: GraphStore) -> dict[str, Any]:
    """The imported part of the graph as plain data (stamps of the load left out)."""
    rows = graph.run(
        "MATCH (n) WHERE n:Event OR n:Identity "
        "RETURN labels(n) AS labels, "
        "CASE WHEN n:Event THEN n.event_id ELSE n.observation_id END AS id, "
        "properties(n) AS props"
    )
    rels = graph.run(
        "MATCH (a:Identity)-[r]->(b) WHERE type(r) IN ['ATTENDED', 'PLUS_ONE_OF'] "
        "RETURN type(r) AS type, a.observation_id AS a, "
        "CASE WHEN b:Event THEN b.event_id ELSE b.observation_id END AS b, "
        "properties(r) AS props"
    )
    volatile = {"import_stamp"}  # a fresh stamp per load

    def clean(props: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in props.items() if k not in volatile}

    # Sorted here: one id may name an event and a record of another source.
    return {
        "nodes": sorted(
            ((r["labels"], r["id"], clean(r["props"])) for r in rows), key=lambda n: repr(n[:2])
        ),
        "rels": sorted(
            ((r["type"], r["a"], r["b"], clean(r["props"])) for r in rels),
            key=lambda e: repr(e[:3]),
        ),
        "counts": graph.counts(),
    }


def test_cli_import_and_import_assets_give_the_same_graph(
    graph: GraphStore,
    figures: FigureStore,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "cli"))
    result = runner.invoke(app, ["import", str(settings.samples_dir)])
    assert result.exit_code == 0, result.output
    by_cli = imported(graph)
    assert by_cli["counts"]["nodes"] > 0 and by_cli["rels"]

    graph.delete_all()
    graph.ensure_schema()
    run = run_refresh(settings, data_dir=tmp_path / "assets")
    assert run.success
    assert imported(graph) == by_cli
    # Both wrote the same combined tables through the same service.
    cli_store, asset_store = DataStore(tmp_path / "cli"), DataStore(tmp_path / "assets")
    keys = {
        "events": ["event_id"],
        "observations": ["observation_id"],
        "attendance": ["observation_id", "event_id"],
    }
    for table, key in keys.items():
        left = getattr(cli_store.read_combined(), table).sort(key)
        right = getattr(asset_store.read_combined(), table).sort(key)
        assert left.equals(right), table


def test_publish_twice_changes_nothing(
    graph: GraphStore, settings: Settings, tmp_path: Path
) -> None:
    store = DataStore(tmp_path)
    done = imports.import_folder(store, settings.samples_dir)
    assert done.reconciles and set(done.results) == {"luma", "eventbrite", "partiful"}
    combined, written = imports.publish(store, graph)
    assert written["identities"] == combined.observations.height
    first = imported(graph)
    _, again = imports.publish(store, graph)
    assert again["removed_identities"] == again["removed_events"] == 0
    assert imported(graph) == first
