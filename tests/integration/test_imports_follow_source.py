"""The graph follows the sources: removals, cleared values and status changes at the source
reach Neo4j, the guest counts and what identity resolution and analytics read."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from domain.model import ATTENDANCE_SCHEMA, EVENTS_SCHEMA, OBSERVATIONS_SCHEMA, conform
from infra.identity_store import IdentityStore
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from ingest.landing import DataStore, import_export_folder
from services.imports import publish
from tests.integration.test_identity_graph import run_identity
from tests.integration.test_slice import FakeApis, run_refresh, start_fakes

FULL_LUMA = {"ops": {"luma_api": {"config": {"full_refresh": True}}}}


@pytest.fixture()
def apis() -> Iterator[FakeApis]:
    running = start_fakes()
    yield running
    running.luma_server.stop()
    running.eventbrite_server.stop()


def graph_state(graph: GraphStore) -> dict[str, Any]:
    """Everything the imports own in the graph, without the load stamps."""

    def props(rows: list[dict[str, Any]]) -> list[Any]:
        return [
            {k: v for k, v in r.items() if k != "p"}
            | {k: v for k, v in r["p"].items() if k != "import_stamp"}
            for r in rows
        ]

    return {
        "events": props(
            graph.run("MATCH (e:Event) RETURN e.event_id AS id, properties(e) AS p ORDER BY id")
        ),
        "identities": props(
            graph.run(
                "MATCH (i:Identity) RETURN i.observation_id AS id, properties(i) AS p ORDER BY id"
            )
        ),
        "attended": props(
            graph.run(
                "MATCH (i:Identity)-[a:ATTENDED]->(e:Event) "
                "RETURN i.observation_id AS i, e.event_id AS e, properties(a) AS p ORDER BY i, e"
            )
        ),
        "plus_ones": graph.run(
            "MATCH (a:Identity)-[:PLUS_ONE_OF]->(b:Identity) "
            "RETURN a.observation_id AS a, b.observation_id AS b ORDER BY a, b"
        ),
    }


def analytics_inputs(graph: GraphStore) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The observations and attendance identity resolution (and so analytics) reads."""
    store = IdentityStore(graph)
    obs = store.load_observations().sort("observation_id")
    att = store.load_attendance().sort("observation_id", "event_id")
    return obs, att


def test_resync_after_removal_and_cleared_email_matches_a_clean_import(
    graph: GraphStore,
    figures: FigureStore,
    settings: Settings,
    apis: FakeApis,
    tmp_path: Path,
) -> None:
    world = apis.world
    event = max(world.luma_events, key=lambda e: len(world.luma_guests[e["api_id"]]))
    eid = event["api_id"]
    assert run_refresh(settings, apis=apis, data_dir=tmp_path / "live").success
    guests_before = figures.event_guest_counts()[f"luma:{eid}"]

    def gid(entry: dict[str, Any]) -> str:
        g = entry.get("guest", entry)
        return f"luma:{g.get('id') or g.get('api_id')}"

    def present(oid: str) -> bool:
        return bool(graph.run("MATCH (i:Identity {observation_id: $o}) RETURN 1 AS x", o=oid))

    # At the source: one guest removed, one email cleared, one guest declines.
    guests = world.luma_guests[eid]
    movable = [i for i, g in enumerate(guests) if present(gid(g))]
    removed = gid(apis.luma.remove_guest(eid, movable[0]))
    still = [i - 1 for i in movable[1:]]
    blanked = gid(apis.luma.update_guest(eid, still[0], email=None))
    declined = gid(apis.luma.update_guest(eid, still[1], approval_status="declined"))
    assert graph.run("MATCH (i:Identity {observation_id: $o}) RETURN i.email AS e", o=blanked)[0][
        "e"
    ]

    resync = run_refresh(settings, apis=apis, data_dir=tmp_path / "live", run_config=FULL_LUMA)
    assert resync.success
    graph_meta = resync.asset_materializations_for_node("imported_graph")[0].metadata
    assert graph_meta["removed_attendance"].value == 1
    assert graph_meta["removed_identities"].value == 1
    synced = graph_state(graph)
    synced_counts = figures.event_guest_counts()
    synced_inputs = analytics_inputs(graph)
    assert not present(removed)
    rows = graph.run(
        "MATCH (i:Identity {observation_id: $o})-[a:ATTENDED]->() RETURN i.email AS e, a.status AS s",
        o=blanked,
    )
    assert rows[0]["e"] is None
    rows = graph.run(
        "MATCH (i:Identity {observation_id: $o})-[a:ATTENDED]->() RETURN a.status AS s, a.raw_status AS r",
        o=declined,
    )
    assert rows == [{"s": "declined", "r": "declined"}]
    assert synced_counts[f"luma:{eid}"] == guests_before - 1
    # The raw landing keeps the history: the removed guest is still in the first fetch.
    raw = list((tmp_path / "live" / "raw" / "luma").rglob(f"guests-{eid}-p*.json"))
    assert any(removed.split(":", 1)[1] in p.read_text() for p in raw)

    # A clean import of the new lists gives the very same graph, counts and inputs.
    graph.delete_all()
    figures.flush_test_db()
    assert run_refresh(settings, apis=apis, data_dir=tmp_path / "clean").success
    assert graph_state(graph) == synced
    assert figures.event_guest_counts() == synced_counts
    clean_inputs = analytics_inputs(graph)
    assert clean_inputs[0].equals(synced_inputs[0])
    assert clean_inputs[1].equals(synced_inputs[1])


def _tables(rows: list[tuple[str, str, str | None]]) -> tuple[pl.DataFrame, ...]:
    """(observation id, event id, email) rows as normalized tables."""
    events = conform(
        pl.DataFrame({"event_id": sorted({e for _, e, _ in rows}), "source": "luma"}), EVENTS_SCHEMA
    )
    obs = conform(
        pl.DataFrame(
            {
                "observation_id": [o for o, _, _ in rows],
                "source": "luma",
                "event_id": [e for _, e, _ in rows],
                "full_name": [o.upper() for o, _, _ in rows],
                "email": [m for _, _, m in rows],
            }
        ),
        OBSERVATIONS_SCHEMA,
    )
    att = conform(
        pl.DataFrame(
            {
                "observation_id": [o for o, _, _ in rows],
                "event_id": [e for _, e, _ in rows],
                "status": "going",
            }
        ),
        ATTENDANCE_SCHEMA,
    )
    return events, obs, att


def test_identity_named_by_a_decision_stays_without_attendance(graph: GraphStore) -> None:
    first = _tables(
        [("luma:a", "luma:e1", "a@x.io"), ("luma:b", "luma:e1", None), ("luma:c", "luma:e2", None)]
    )
    graph.replace_imports(*first)
    graph.run(
        "CREATE (:IdentityDecision {decision_id: 'd1', kind: 'cannot_link', a: 'luma:b', b: 'luma:a'})"
    )
    # b and the whole of e2 left the sources; a's email was cleared.
    written = graph.replace_imports(*_tables([("luma:a", "luma:e1", None)]))
    assert written["removed_attendance"] == 2 and written["removed_identities"] == 1
    assert written["kept_by_decision"] == 1 and written["removed_events"] == 1
    rows = graph.run(
        "MATCH (i:Identity) OPTIONAL MATCH (i)-[a:ATTENDED]->(e) "
        "RETURN i.observation_id AS id, i.email AS email, e.event_id AS event ORDER BY id"
    )
    assert rows == [
        {"id": "luma:a", "email": None, "event": "luma:e1"},
        {"id": "luma:b", "email": None, "event": None},
    ]
    assert graph.run("MATCH (e:Event) RETURN collect(e.event_id) AS ids")[0]["ids"] == ["luma:e1"]
    # A rerun of the same tables changes nothing.
    again = graph.replace_imports(*_tables([("luma:a", "luma:e1", None)]))
    assert again["removed_attendance"] == 0 and again["removed_identities"] == 0


def member_attendance(graph: GraphStore) -> set[tuple[tuple[str, ...], str, str]]:
    """What analytics reads, keyed by each member's records (member ids may differ between
    two separate builds): (the member's observation ids, event id, status)."""
    rows = graph.run(
        "MATCH (m:Member)-[:HAS_IDENTITY]->(i:Identity) "
        "WITH m, collect(i.observation_id) AS ids "
        "MATCH (m)-[:HAS_IDENTITY]->(:Identity)-[a:ATTENDED]->(e:Event) "
        "RETURN ids, e.event_id AS event, a.status AS status"
    )
    return {(tuple(sorted(r["ids"])), r["event"], r["status"]) for r in rows}


def test_removal_from_an_export_reaches_members_and_analytics_inputs(
    graph: GraphStore, figures: FigureStore, settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "exports"
    shutil.copytree(settings.samples_dir, root)

    def import_all(store: DataStore) -> None:
        for source in ("luma", "eventbrite", "partiful"):
            import_export_folder(store, root, source)
        publish(store, graph)
        run_identity(settings)  # asserts its checks: no dangling or empty members

    live = DataStore(tmp_path / "live")
    import_all(live)
    before = member_attendance(graph)
    alice = next(ids for ids, _, _ in before if "luma:gst-a2" in ids)
    assert len(alice) > 1  # Alice has records on other lists too
    # At the source: Alice is taken off the October breakfast list.
    guests = root / "luma" / "guests" / "evt-founders-oct.csv"
    lines = guests.read_text().splitlines(keepends=True)
    guests.write_text("".join(line for line in lines if not line.startswith("gst-a2,")))
    import_all(live)
    after = member_attendance(graph)
    assert not graph.run("MATCH (i:Identity {observation_id: 'luma:gst-a2'}) RETURN i")
    alice_now = next(ids for ids, _, _ in after if set(ids) & set(alice))
    assert "luma:gst-a2" not in alice_now
    assert not {e for ids, e, _ in after if ids == alice_now} & {"luma:evt-founders-oct"}
    # The same as a clean build from the edited folder.
    graph.delete_all()
    import_all(DataStore(tmp_path / "clean"))
    assert member_attendance(graph) == after
