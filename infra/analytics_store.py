"""Analytics storage: attendance read from the member graph, metrics written back.

Per-member metrics become `net_*` properties of each Member (batched UNWIND); the
community summary, communities, layout and monthly snapshots are JSON values in Redis
under the keys of `infra.redis_keys`. The pipeline writes and the API reads through
this one module.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from domain.network.coattendance import Attendance, CoAttendanceGraph
from infra import graph_schema as gs
from infra.documents import (
    COMMUNITIES,
    DOCUMENT_VERSION,
    LAYOUT,
    SNAPSHOT,
    SUMMARY,
    CommunitiesDocument,
    Community,
    CommunitySummary,
    Doc,
    Layout,
    LayoutDocument,
    Snapshot,
    SnapshotDocument,
    SummaryDocument,
    build,
    parse,
)
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore

METRIC_PREFIX = "net_"
MEMBER_METRICS = (
    "degree",
    "weighted_degree",
    "pagerank",
    "betweenness",
    "clustering",
    "core_number",
    "is_articulation",
    "bridges",
    "community",
    "component",
)


def _native(value: Any) -> datetime:
    if hasattr(value, "to_native"):
        value = value.to_native()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):  # a plain date
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def month_score(month: str) -> int:
    return int(month.replace("-", ""))


class AnalyticsStore:
    def __init__(self, graph: GraphStore, figures: FigureStore) -> None:
        self.graph = graph
        self.figures = figures
        self.keys = figures.keys

    # Neo4j ---------------------------------------------------------------------------

    def read_attendance(self, end: datetime | None = None) -> list[Attendance]:
        """Every member's attendance at events starting before `end` (all when None)."""
        rows = self.graph.run(gs.MEMBER_ATTENDANCE, end=end)
        return [
            Attendance(
                row["member_id"],
                row["event_id"],
                _native(row["starts_at"]),
                row["status"] or "",
                bool(row["checked_in"]),
            )
            for row in rows
        ]

    def member_ids(self) -> list[str]:
        return [row["member_id"] for row in self.graph.run(gs.ALL_MEMBER_IDS)]

    def write_member_metrics(self, rows: list[dict[str, Any]], stamp: str) -> int:
        """Sets `net_*` properties on each member in batched UNWIND transactions."""
        batch = [
            {
                "member_id": row["member_id"],
                "props": {
                    **{f"{METRIC_PREFIX}{name}": row[name] for name in MEMBER_METRICS},
                    f"{METRIC_PREFIX}computed_at": stamp,
                },
                "computed_from": stamp.split("#", 1)[0],
            }
            for row in rows
        ]
        return self.graph.write_batches(gs.SET_MEMBER_METRICS, batch)

    def replace_co_attendance(self, graph: CoAttendanceGraph) -> int:
        """Replaces the CO_ATTENDED relationships with the given graph's edges."""
        # CALL … IN TRANSACTIONS needs an auto-commit transaction (session.run).
        with self.graph.driver.session(database=self.graph.database) as session:
            session.run(gs.DELETE_CO_ATTENDED).consume()
        rows = [
            {
                "a": graph.members[int(src)],
                "b": graph.members[int(dst)],
                "weight": float(weight),
                "events": int(shared),
            }
            for src, dst, weight, shared in zip(
                graph.src, graph.dst, graph.weight, graph.shared_events, strict=True
            )
        ]
        return self.graph.write_batches(gs.CREATE_CO_ATTENDED, rows)

    def review_load(self) -> dict[str, Any]:
        """Open merge suggestions against members: the organizer's review queue."""
        row = self.graph.run(gs.REVIEW_LOAD)[0]
        suggestions, members = int(row["suggestions"]), int(row["members"])
        return {
            "open_suggestions": suggestions,
            "members": members,
            "open_suggestions_per_100_members": (
                round(100.0 * suggestions / members, 2) if members else 0.0
            ),
        }

    def metrics_coverage(self, stamp: str) -> tuple[int, int]:
        row = self.graph.run(gs.METRICS_COVERAGE, stamp=stamp)[0]
        return int(row["members"]), int(row["with_metrics"])

    def member_metrics(self, member_id: str) -> dict[str, Any] | None:
        rows = self.graph.run(gs.MEMBER_NETWORK, member_id=member_id)
        if not rows:
            return None
        props = rows[0]["props"]
        return {
            "member_id": rows[0]["member_id"],
            "display_name": rows[0]["display_name"],
            "computed_at": props.get(f"{METRIC_PREFIX}computed_at"),
            # A correction changed the member since: the figures describe it as it was.
            "metrics_stale": bool(props.get("metrics_stale")),
            "metrics": {
                name: props.get(f"{METRIC_PREFIX}{name}")
                for name in MEMBER_METRICS
                if f"{METRIC_PREFIX}{name}" in props
            },
        }

    def top_members(self, metric: str, skip: int, limit: int) -> list[dict[str, Any]]:
        if metric not in MEMBER_METRICS:
            raise ValueError(f"unknown metric {metric!r}")
        rows = self.graph.run(
            gs.TOP_MEMBERS_BY, metric=f"{METRIC_PREFIX}{metric}", skip=skip, limit=limit
        )
        return [
            {
                "member_id": row["member_id"],
                "display_name": row["display_name"],
                "metrics_stale": bool(row["props"].get("metrics_stale")),
                "metrics": {
                    name: row["props"].get(f"{METRIC_PREFIX}{name}") for name in MEMBER_METRICS
                },
            }
            for row in rows
        ]

    def connectors(self, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        rows = self.graph.run(gs.CONNECTORS, skip=skip, limit=limit)
        total = int(self.graph.run(gs.COUNT_CONNECTORS)[0]["n"])
        return rows, total

    # Redis ---------------------------------------------------------------------------
    # Writers take what the assets computed (dicts or models) and store the validated
    # document; `*_document` readers return the validated model (or raise DocumentError);
    # the dict readers return what the document says, for the assets and scripts.

    def put_community(
        self,
        summary: dict[str, Any] | CommunitySummary,
        communities: list[dict[str, Any]] | list[Community],
        layout: dict[str, Any] | Layout,
        meta: dict[str, str],
    ) -> None:
        docs = {
            self.keys.community_summary(): _document(SummaryDocument, SUMMARY, summary),
            self.keys.communities(): build(
                CommunitiesDocument,
                COMMUNITIES,
                {"items": [_plain(community) for community in communities]},
            ),
            self.keys.graph_layout(): _document(LayoutDocument, LAYOUT, layout),
        }
        pipe = self.figures.r.pipeline(transaction=True)
        for key, doc in docs.items():
            pipe.set(key, doc.model_dump_json())
        for field, value in meta.items():
            pipe.hset(self.keys.analytics_meta(), field, value)
        # Cached API answers (figures, stale flags) must not outlive the new figures.
        pipe.incr(self.keys.cache_generation())
        pipe.execute()

    def summary_document(self) -> SummaryDocument | None:
        return self._read(self.keys.community_summary(), SummaryDocument, SUMMARY)

    def communities_document(self) -> CommunitiesDocument | None:
        return self._read(self.keys.communities(), CommunitiesDocument, COMMUNITIES)

    def layout_document(self) -> LayoutDocument | None:
        return self._read(self.keys.graph_layout(), LayoutDocument, LAYOUT)

    def snapshot_document(self, month: str) -> SnapshotDocument | None:
        return self._read(self.keys.snapshot(month), SnapshotDocument, SNAPSHOT)

    def _read(self, key: str, model: type[Doc], name: str) -> Doc | None:
        value = self.figures.get_json(key)
        return None if value is None else parse(model, name, value)

    def community_summary(self) -> dict[str, Any] | None:
        return _content(self.summary_document())

    def communities(self) -> list[dict[str, Any]] | None:
        doc = self.communities_document()
        return (
            None if doc is None else [community.model_dump(mode="json") for community in doc.items]
        )

    def layout(self) -> dict[str, Any] | None:
        return _content(self.layout_document())

    def put_snapshot(self, month: str, snapshot: dict[str, Any] | Snapshot) -> None:
        doc = _document(SnapshotDocument, SNAPSHOT, snapshot)
        if doc.month != month:
            raise ValueError(f"snapshot of {doc.month} stored as {month}")
        pipe = self.figures.r.pipeline(transaction=True)
        pipe.set(self.keys.snapshot(month), doc.model_dump_json())
        pipe.zadd(self.keys.snapshots_index(), {month: month_score(month)})
        pipe.incr(self.keys.cache_generation())  # cached snapshot answers go with it
        pipe.execute()

    def snapshot(self, month: str) -> dict[str, Any] | None:
        return _content(self.snapshot_document(month))

    def snapshot_months(self) -> list[str]:
        return [str(month) for month in self.figures.r.zrange(self.keys.snapshots_index(), 0, -1)]

    def previous_snapshot(self, month: str) -> dict[str, Any] | None:
        """The latest stored snapshot before `month`."""
        prior = self.figures.r.zrevrangebyscore(
            self.keys.snapshots_index(), f"({month_score(month)}", "-inf", start=0, num=1
        )
        return self.snapshot(str(prior[0])) if prior else None


def _plain(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


def _document(model: type[Doc], name: str, value: Any) -> Doc:
    """The stored form of a computed value: its model with the current version."""
    fields = _plain(value)
    return build(model, name, {**fields, "schema_version": DOCUMENT_VERSION})


def _content(doc: BaseModel | None) -> dict[str, Any] | None:
    """What a document says, as JSON-ready values, without its storage version."""
    return None if doc is None else doc.model_dump(mode="json", exclude={"schema_version"})
