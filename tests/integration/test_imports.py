"""API imports through Dagster: incremental cursors in Redis, backfills, failures, reruns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from infra.neo4j_store import GraphStore
from infra.redis_keys import RedisKeys
from infra.redis_store import FigureStore
from infra.settings import Settings
from tests.integration.test_slice import FakeApis, run_refresh, start_fakes


@pytest.fixture()
def apis() -> Iterator[FakeApis]:
    running = start_fakes()
    yield running
    running.luma_server.stop()
    running.eventbrite_server.stop()


def meta(result: dg.ExecuteInProcessResult, node: str) -> dict[str, object]:
    mats = result.asset_materializations_for_node(node)
    assert mats, f"{node} was not materialized"
    return {k: v.value for k, v in mats[0].metadata.items()}


def guest_requests(apis: FakeApis) -> int:
    return apis.luma.state.stats.by_path.get("/v1/event/get-guests", 0)


def test_incremental_sync_fetches_only_changes(
    graph: GraphStore, figures: FigureStore, settings: Settings, apis: FakeApis, tmp_path: Path
) -> None:
    first = run_refresh(settings, apis=apis, data_dir=tmp_path)
    assert first.success
    eb_first = meta(first, "eventbrite_api")
    assert eb_first["input_records"] == apis.world.eventbrite_attendee_count
    assert eb_first["mode"] == "full"  # no cursor yet
    # The cursors live in Redis under the shared key layout, one per organization / calendar.
    keys = RedisKeys(settings.redis_key_prefix)
    org = apis.world.config.eventbrite_org_id
    assert figures.r.get(keys.sync_cursor("eventbrite", org)) is not None
    assert figures.r.get(keys.sync_cursor("luma", apis.world.config.luma_calendar_id))

    event = apis.world.eventbrite_events[0]
    eid = str(event["id"])
    changed = apis.eventbrite.change_attendee(eid, 0, cancelled=True, checked_in=False)
    apis.eventbrite.change_attendee(eid, 1, profile={"first_name": "Renamed"})
    luma_before = guest_requests(apis)
    apis.eventbrite.state.reset_stats()

    second = run_refresh(settings, apis=apis, data_dir=tmp_path)
    assert second.success
    eb = meta(second, "eventbrite_api")
    assert eb["mode"] == "incremental"
    assert eb["input_records"] == 2  # only the two changed attendees came over the wire
    assert eb["stored_observations"] == eb_first["stored_observations"]
    sent = [
        e["params"] for e in apis.eventbrite.state.stats.log if e["path"].endswith("/attendees/")
    ]
    assert sent and all("changed_since" in p for p in sent)
    # The change reached the graph.
    rows = graph.run(
        "MATCH (i:Identity {observation_id: $oid})-[a:ATTENDED]->() RETURN a.status AS s",
        oid=f"eventbrite:{changed['id']}",
    )
    assert rows == [{"s": "cancelled"}]
    # Luma: settled guest lists were not fetched again.
    luma = meta(second, "luma_api")
    luma_requests = guest_requests(apis) - luma_before
    assert luma["events_skipped"] == len(apis.world.luma_events) - luma["events_fetched"]
    assert luma["events_skipped"] > 0 and luma_requests < luma_before


def test_backfill_refetches_the_range(
    graph: GraphStore, figures: FigureStore, settings: Settings, apis: FakeApis, tmp_path: Path
) -> None:
    assert run_refresh(settings, apis=apis, data_dir=tmp_path).success
    counts = graph.counts()
    apis.luma.state.reset_stats()
    backfill = run_refresh(
        settings, apis=apis, data_dir=tmp_path, tags={"dagster/backfill": "test-backfill"}
    )
    assert backfill.success
    luma = meta(backfill, "luma_api")
    eb = meta(backfill, "eventbrite_api")
    assert luma["mode"] == "full" and eb["mode"] == "full"
    assert luma["input_records"] == apis.world.luma_guest_count
    assert eb["input_records"] == apis.world.eventbrite_attendee_count
    assert luma["events_skipped"] == 0
    assert apis.luma.state.stats.by_path["/v1/event/get-guests"] >= len(apis.world.luma_events)
    # A refetch of the same data changes nothing in the graph.
    assert graph.counts() == counts
    # `full_refresh` config does the same without a backfill.
    forced = run_refresh(
        settings,
        apis=apis,
        data_dir=tmp_path,
        run_config={"ops": {"eventbrite_api": {"config": {"full_refresh": True}}}},
    )
    assert meta(forced, "eventbrite_api")["mode"] == "full"
    assert meta(forced, "luma_api")["mode"] == "incremental"


def test_wrong_key_fails_the_run_naming_the_source(
    graph: GraphStore, figures: FigureStore, settings: Settings, apis: FakeApis, tmp_path: Path
) -> None:
    apis.luma.api_key = "rotated-key"
    from assets.imports import import_partitions
    from orchestration.definitions import build_definitions, partition_range_tags

    run = apis.settings(settings.model_copy(update={"data_dir": tmp_path}))
    defs = build_definitions(run)
    job = defs.resolve_job_def("refresh_all")
    cfg = apis.world.config
    tags = partition_range_tags(import_partitions(run), cfg.start, cfg.start)
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags=tags,
        asset_selection=[dg.AssetKey("luma_api")],
        raise_on_error=False,
    )
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == 1
    message = str(failures[0].step_failure_data.user_failure_data.description)  # type: ignore[union-attr]
    assert message.startswith("luma: API key rejected (401)")
    # Not retried: a rejected key does not heal by itself.
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_malformed_page_is_quarantined_and_the_list_reported_incomplete(
    graph: GraphStore, figures: FigureStore, settings: Settings, apis: FakeApis, tmp_path: Path
) -> None:
    eid = str(apis.world.eventbrite_events[1]["id"])
    apis.eventbrite.state.set_faults(
        malformed_page=1, malformed_times=-1, malformed_kind="html", fault_event=eid
    )
    apis.luma.state.set_faults(error_rate=0.2, repeat_page=0)
    result = run_refresh(settings, apis=apis, data_dir=tmp_path)
    assert result.success
    eb = meta(result, "eventbrite_api")
    reasons = {r["reason"]: r["len"] for r in eb["quarantine_reasons"]}  # type: ignore[union-attr]
    assert reasons["malformed page: expected JSON, got text/html; charset=utf-8"] == 1
    assert eb["observations"] + eb["quarantined"] == eb["input_records"]  # type: ignore[operator]
    luma = meta(result, "luma_api")
    assert luma["input_records"] == apis.world.luma_guest_count
    assert luma["http"]["duplicate_records"] > 0  # type: ignore[index]
    # The attendee list that stayed broken is reported incomplete; everything else passes.
    assert eb["incomplete_lists"][0]["event_id"] == f"eventbrite:{eid}"  # type: ignore[index]
    checks = result.get_asset_check_evaluations()
    failed = [(c.asset_key.to_user_string(), c.check_name) for c in checks if not c.passed]
    assert checks and failed == [("eventbrite_api", "lists_complete")]


def test_multi_ticket_orders_link_plus_ones_to_the_buyer(
    graph: GraphStore, figures: FigureStore, settings: Settings, apis: FakeApis, tmp_path: Path
) -> None:
    assert run_refresh(settings, apis=apis, data_dir=tmp_path).success
    expected: dict[str, str] = {}
    where: dict[str, tuple[str, int]] = {}
    for eid, attendees in apis.world.eventbrite_attendees.items():
        orders: dict[str, list[int]] = {}
        for i, att in enumerate(attendees):
            orders.setdefault(str(att["order_id"]), []).append(i)
            where[f"eventbrite:{att['id']}"] = (eid, i)
        for positions in orders.values():
            buyer = f"eventbrite:{attendees[positions[0]]['id']}"
            for i in positions[1:]:
                expected[f"eventbrite:{attendees[i]['id']}"] = buyer
    assert expected, "the fake world has multi-ticket orders"

    def links() -> dict[str, str]:
        rows = graph.run(
            "MATCH (a:Identity {source: 'eventbrite'})-[:PLUS_ONE_OF]->(b:Identity) "
            "MATCH (a)-[r:ATTENDED]->() WHERE r.role = 'plus_one' "
            "RETURN a.observation_id AS a, b.observation_id AS b"
        )
        return {r["a"]: r["b"] for r in rows}

    assert links() == expected
    # A plus-one changed alone (an incremental fetch without the rest of the order) keeps
    # its link to the buyer.
    plus_one = next(iter(expected))
    eid, index = where[plus_one]
    apis.eventbrite.change_attendee(eid, index, profile={"first_name": "Renamed"})
    second = run_refresh(settings, apis=apis, data_dir=tmp_path)
    assert meta(second, "eventbrite_api")["input_records"] == 1
    assert links() == expected
