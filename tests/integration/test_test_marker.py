"""Tests wipe only databases carrying the test marker."""

from __future__ import annotations

import pytest
import redis

from infra import graph_schema as gs
from infra.neo4j_store import GraphStore
from infra.redis_keys import RedisKeys
from infra.redis_store import FigureStore
from infra.settings import Settings


def test_graph_without_marker_is_never_wiped(graph: GraphStore) -> None:
    graph.run("CREATE (:Event {event_id: 'precious'})")
    graph.run(f"MATCH (x:{gs.TEST_INSTANCE_MARKER}) DELETE x")
    try:
        assert not graph.has_test_marker()
        with pytest.raises(RuntimeError, match="test marker"):
            graph.delete_all()
        assert graph.run("MATCH (e:Event {event_id: 'precious'}) RETURN count(e) AS n")[0]["n"] == 1
        # A database holding data is not marked on request either.
        assert graph.mark_test_instance() is False
        assert not graph.has_test_marker()
    finally:
        graph.run(gs.MARK_TEST_INSTANCE)
    graph.delete_all()
    assert graph.counts()["nodes"] == 1  # only the marker survives a wipe
    assert graph.has_test_marker()


def test_redis_without_marker_is_never_flushed(services: Settings) -> None:
    # Database 15 of the same server stands in for somebody else's data.
    other = FigureStore(
        redis.Redis.from_url(services.redis_url.rsplit("/", 1)[0] + "/15", decode_responses=True),
        RedisKeys(services.redis_key_prefix),
    )
    try:
        other.r.flushdb()
        other.r.set("someone:else", "precious")
        assert other.mark_test_instance() is False
        with pytest.raises(RuntimeError, match="test marker"):
            other.flush_test_db()
        assert other.r.get("someone:else") == "precious"
        other.r.delete("someone:else")
        assert other.mark_test_instance() is True  # empty: safe to own
        other.r.set("scratch", "1")
        other.flush_test_db()
        assert other.r.dbsize() == 1 and other.has_test_marker()
    finally:
        other.r.flushdb()
        other.r.close()
