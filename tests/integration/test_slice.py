"""The whole import slice end to end: sample exports and the fake platform APIs -> Dagster
-> normalized store -> Neo4j -> Redis, on the real services."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pytest

from assets.imports import import_partitions
from fakes.common import ServerThread
from fakes.data import World, WorldConfig, build_world
from fakes.eventbrite import EventbriteFake
from fakes.luma import LumaFake
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings
from orchestration.definitions import build_definitions, partition_range_tags

API_ASSETS = ("luma_api", "eventbrite_api")
# The import slice of `refresh_all` (what later stages build on is tested with them).
IMPORT_CHAIN = (
    "luma_exports",
    "eventbrite_exports",
    "partiful_exports",
    "normalized_imports",
    "imported_graph",
    "event_guest_counts",
)
SMALL_WORLD = WorldConfig(
    seed=11,
    start=date(2026, 9, 1),
    days=100,
    people=120,
    luma_events=6,
    eventbrite_events=4,
    guests_per_event=(8, 25),
    bad_record_rate=0.05,
)


@dataclass
class FakeApis:
    world: World
    luma: LumaFake
    eventbrite: EventbriteFake
    luma_server: ServerThread
    eventbrite_server: ServerThread

    def settings(self, base: Settings, **changes: object) -> Settings:
        """`base` pointed at these fakes, with limits that keep tests quick."""
        update: dict[str, object] = {
            "luma_base_url": f"{self.luma_server.url}/v1",
            "eventbrite_base_url": f"{self.eventbrite_server.url}/v3",
            "luma_requests_per_minute": 60_000,
            "eventbrite_requests_per_minute": 60_000,
            "sync_backoff_seconds": 0.05,
            "sync_backoff_max_seconds": 0.5,
            "sync_page_size": 10,
        }
        update.update(changes)
        return base.model_copy(update=update)


def start_fakes(config: WorldConfig = SMALL_WORLD) -> FakeApis:
    world = build_world(config)
    luma = LumaFake(world)
    eventbrite = EventbriteFake(world)
    return FakeApis(world, luma, eventbrite, luma.serve(), eventbrite.serve())


@pytest.fixture()
def fake_apis() -> Iterator[FakeApis]:
    apis = start_fakes()
    yield apis
    apis.luma_server.stop()
    apis.eventbrite_server.stop()


def run_refresh(
    settings: Settings,
    *,
    apis: FakeApis | None = None,
    data_dir: Path | None = None,
    tags: dict[str, str] | None = None,
    run_config: dict[str, object] | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Runs the import slice of `refresh_all` in process. Without `apis` the API imports are
    left out; the normalized store is a fresh folder unless `data_dir` is given (reruns pass
    the same one)."""
    folder = data_dir or Path(tempfile.mkdtemp(prefix="imports-"))
    run_settings = settings.model_copy(update={"data_dir": folder})
    if apis is not None:
        run_settings = apis.settings(run_settings)
    defs = build_definitions(run_settings)
    job = defs.resolve_job_def("refresh_all")
    names = list(IMPORT_CHAIN) + (list(API_ASSETS) if apis is not None else [])
    selection = [dg.AssetKey(n) for n in names]
    if apis is None:
        return job.execute_in_process(
            instance=instance or dg.DagsterInstance.ephemeral(), asset_selection=selection
        )
    cfg = apis.world.config
    partitions = import_partitions(run_settings)
    end = date.fromordinal(cfg.start.toordinal() + cfg.days - 1)
    run_tags = {**partition_range_tags(partitions, cfg.start, end), **(tags or {})}
    return job.execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags=run_tags,
        run_config=run_config,
        asset_selection=selection,
    )


def test_definitions_load_with_schedule(settings: Settings) -> None:
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("nightly_refresh")
    assert schedule.cron_schedule == settings.nightly_cron
    assert schedule.execution_timezone == settings.schedule_timezone
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {
        "luma_api",
        "eventbrite_api",
        "luma_exports",
        "eventbrite_exports",
        "partiful_exports",
        "normalized_imports",
        "imported_graph",
        "event_guest_counts",
    } <= keys


def test_nightly_schedule_requests_the_open_window(settings: Settings) -> None:
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("nightly_refresh")
    when = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 20, 3, 0))
    request = schedule.evaluate_tick(when).run_requests
    assert request is not None and len(request) == 1
    tags = request[0].tags
    start = date(2026, 11, 20).toordinal() - settings.nightly_window_days
    assert tags["dagster/asset_partition_range_start"] == date.fromordinal(start).isoformat()
    end = date(2026, 11, 20).toordinal() + settings.imports_lookahead_days
    assert tags["dagster/asset_partition_range_end"] == date.fromordinal(end).isoformat()


def test_refresh_twice_is_idempotent(
    graph: GraphStore, figures: FigureStore, settings: Settings, fake_apis: FakeApis, tmp_path: Path
) -> None:
    first = run_refresh(settings, apis=fake_apis, data_dir=tmp_path)
    assert first.success
    counts_once = graph.counts()
    figures_once = figures.event_guest_counts()
    instance = dg.DagsterInstance.ephemeral()
    second = run_refresh(settings, apis=fake_apis, data_dir=tmp_path, instance=instance)
    assert second.success
    assert graph.counts() == counts_once
    said = [
        e.user_message
        for e in instance.all_logs(second.run_id)
        if e.dagster_event is None and e.level == logging.INFO
    ]
    events = graph.run("MATCH (e:Event) RETURN count(e) AS n")[0]["n"]
    assert any(m.startswith(f"imported graph: {events} events, ") for m in said), said
    assert any(m.endswith("0 attendance, 0 identities, 0 events removed") for m in said), said
    guests = sum(figures_once.values())
    assert f"event guest counts: {len(figures_once)} events, {guests} guests published" in said
    assert figures.event_guest_counts() == figures_once
    # The second run is incremental: Eventbrite asks only for changes, and gets none.
    eb = second.asset_materializations_for_node("eventbrite_api")[0].metadata
    assert eb["mode"].value == "incremental" and eb["input_records"].value == 0
    # Every API event and sample event is in the graph with its guests.
    world = fake_apis.world
    api_events = len(world.luma_events) + len(world.eventbrite_events)
    assert len(figures_once) >= api_events + 3
    for ev in world.luma_events:
        eid = f"luma:{ev['api_id']}"
        guests = world.luma_guests[ev["api_id"]]
        # Quarantined guests (unusable email) are not in the graph; the rest are.
        assert 0 < figures_once[eid] <= len(guests)


def test_reconciliation_is_recorded(
    graph: GraphStore, figures: FigureStore, settings: Settings, fake_apis: FakeApis, tmp_path: Path
) -> None:
    result = run_refresh(settings, apis=fake_apis, data_dir=tmp_path)
    meta = result.asset_materializations_for_node("luma_exports")[0].metadata
    assert meta["input_records"].value == meta["observations"].value + meta["quarantined"].value
    assert meta["quarantined"].value >= 1
    api = result.asset_materializations_for_node("luma_api")
    # One materialization per daily partition of the range, all from one run.
    assert len(api) == SMALL_WORLD.days
    api_meta = api[0].metadata
    assert api_meta["input_records"].value == fake_apis.world.luma_guest_count
    assert (
        api_meta["observations"].value + api_meta["quarantined"].value
        == api_meta["input_records"].value
    )
    checks = result.get_asset_check_evaluations()
    names = {(c.asset_key.to_user_string(), c.check_name) for c in checks}
    for asset_name in ("luma_api", "eventbrite_api", "luma_exports", "partiful_exports"):
        assert {(asset_name, "reconciles"), (asset_name, "unique_ids")} <= names
    assert ("normalized_imports", "references_resolve") in names
    # Field issues are counted beside the reconciliation, as counts per field and reason.
    combined = result.asset_materializations_for_node("normalized_imports")[0].metadata
    assert combined["field_issues"].value >= 1
    reasons = combined["field_issue_reasons"].value
    assert reasons and all(set(r) == {"field", "reason", "records"} for r in reasons)  # type: ignore[union-attr]
    assert checks and all(c.passed for c in checks)


def test_attendance_properties_in_graph(
    graph: GraphStore, figures: FigureStore, settings: Settings
) -> None:
    assert run_refresh(settings).success
    rows = graph.run(
        "MATCH (i:Identity {observation_id: 'luma:gst-a1'})-[a:ATTENDED]->(e:Event) "
        "RETURN i.email AS email, a.status AS status, a.raw_status AS raw, e.name AS event"
    )
    assert rows == [
        {
            "email": "bob@gmail.com",
            "status": "attended",
            "raw": "approved",
            "event": "Founders Breakfast — October",
        }
    ]
