"""Neo4j access shared by the pipeline and the API: batched writes and the read queries."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:  # the driver (which imports pandas) loads when a store is opened
    from neo4j import Driver, ManagedTransaction

from infra import graph_schema as gs
from infra.settings import Settings


def open_driver(settings: Settings) -> Driver:
    from neo4j import GraphDatabase

    from infra.tls import neo4j_connection

    uri, tls = neo4j_connection(settings)
    return GraphDatabase.driver(
        uri,
        **tls,
        auth=(settings.neo4j_user, settings.neo4j_password.get_secret_value()),
        connection_timeout=5.0,
        max_connection_pool_size=20,
        notifications_min_severity="OFF",
    )


def chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def frame_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts without null values (Neo4j stores no nulls anyway)."""
    return [{k: v for k, v in row.items() if v is not None} for row in frame.iter_rows(named=True)]


class GraphStore:
    """Thin wrapper over one driver; every write is an `UNWIND … MERGE` batch."""

    def __init__(self, driver: Driver, database: str = "neo4j", batch_size: int = 5000) -> None:
        self.driver = driver
        self.database = database
        self.batch_size = batch_size

    @classmethod
    def from_settings(cls, settings: Settings) -> GraphStore:
        return cls(open_driver(settings), settings.neo4j_database, settings.neo4j_write_batch_size)

    def close(self) -> None:
        self.driver.close()

    def run(self, query: str, **params: Any) -> list[dict[str, Any]]:
        records, _, _ = self.driver.execute_query(query, params, database_=self.database)
        return [r.data() for r in records]

    def ensure_schema(self) -> None:
        """Creates the schema in a new graph; refuses a graph at another schema version
        (see infra/migrations.py)."""
        from infra.migrations import ensure_graph_schema

        ensure_graph_schema(self.driver, self.database)

    def write_batches(self, query: str, rows: Sequence[dict[str, Any]], **params: Any) -> int:
        """Writes rows in batches, each batch in one transaction; returns rows written."""

        def write(tx: ManagedTransaction, batch: list[dict[str, Any]]) -> None:
            tx.run(query, rows=batch, **params).consume()

        with self.driver.session(database=self.database) as session:
            for batch in chunks(rows, self.batch_size):
                session.execute_write(write, list(batch))
        return len(rows)

    def upsert_imports(
        self,
        events: pl.DataFrame,
        observations: pl.DataFrame,
        attendance: pl.DataFrame,
        stamp: str | None = None,
    ) -> dict[str, int]:
        """Loads normalized events, identities and attendance; reruns change nothing.
        Properties absent from a row are removed (a value cleared at the source)."""
        stamp = stamp or uuid.uuid4().hex
        self.write_batches(gs.UPSERT_EVENTS, frame_rows(events), stamp=stamp)
        self.write_batches(gs.UPSERT_IDENTITIES, frame_rows(observations), stamp=stamp)
        att = attendance.drop("plus_one_of")
        self.write_batches(gs.UPSERT_ATTENDANCE, frame_rows(att), stamp=stamp)
        plus = attendance.filter(pl.col("plus_one_of").is_not_null()).select(
            "observation_id", "plus_one_of"
        )
        self.write_batches(gs.UPSERT_PLUS_ONES, frame_rows(plus), stamp=stamp)
        return {
            "events": events.height,
            "identities": observations.height,
            "attendance": attendance.height,
            "plus_one_links": plus.height,
        }

    def replace_imports(
        self, events: pl.DataFrame, observations: pl.DataFrame, attendance: pl.DataFrame
    ) -> dict[str, int]:
        """Makes the imported part of the graph equal to these tables (the whole normalized
        store): upserts them, then removes what they no longer hold (see graph_schema)."""
        stamp = uuid.uuid4().hex
        written = self.upsert_imports(events, observations, attendance, stamp)
        stale = self.run(gs.STALE_COUNTS, stamp=stamp)[0]
        with self.driver.session(database=self.database) as session:
            for sweep in (
                gs.SWEEP_ATTENDANCE,
                gs.SWEEP_PLUS_ONES,
                gs.SWEEP_IDENTITIES,
                gs.SWEEP_EVENTS,
            ):
                session.run(sweep, stamp=stamp).consume()
        kept = self.run(gs.STALE_COUNTS, stamp=stamp)[0]
        return {
            **written,
            "removed_attendance": stale["attendance"] - kept["attendance"],
            "removed_plus_one_links": stale["plus_one_links"] - kept["plus_one_links"],
            "removed_identities": stale["identities"] - kept["identities"],
            "removed_events": stale["events"] - kept["events"],
            "kept_by_decision": kept["identities"],
        }

    def delete_all(self) -> None:
        """Empties a test database; batched so large graphs fit in memory.

        Refuses a database without the test marker (`mark_test_instance`), so a test run
        with production settings in its environment cannot erase production.
        """
        if not self.has_test_marker():
            raise RuntimeError(
                f"refusing to empty {self.driver.get_server_info().address}: it does not carry "
                "the test marker (only databases the test profile created may be wiped)"
            )
        with self.driver.session(database=self.database) as session:
            session.run(gs.DELETE_ALL_BUT_MARKER).consume()

    def has_test_marker(self) -> bool:
        return bool(self.run(gs.HAS_TEST_MARKER)[0]["marked"])

    def mark_test_instance(self, owned: bool = False) -> bool:
        """Marks a database as the tests' own: when empty, or `owned` (the test profile
        started it). False, and no mark, otherwise."""
        if self.has_test_marker():
            return True
        if not owned and self.run(gs.COUNT_ALL_NODES)[0]["n"] > 0:
            return False
        self.run(gs.MARK_TEST_INSTANCE)
        return True

    def counts(self) -> dict[str, int]:
        nodes = self.run("MATCH (n) RETURN count(n) AS n")[0]["n"]
        rels = self.run("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]
        return {"nodes": nodes, "relationships": rels}

    def list_events(self, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        rows = self.run(gs.EVENTS_WITH_COUNTS, skip=skip, limit=limit)
        total = self.run(gs.COUNT_EVENTS)[0]["n"]
        return rows, total

    def ping(self) -> float:
        """Round-trip latency in milliseconds; raises when the server is unreachable."""
        start = time.perf_counter()
        self.driver.execute_query("RETURN 1", database_=self.database)
        return (time.perf_counter() - start) * 1000.0
