"""Analytics storage: attendance read from the member graph, metrics written back.

Per-member metrics become `net_*` properties of each Member (batched UNWIND); the
community summary, communities, layout and monthly snapshots are JSON values in Redis
under the keys of `infra.redis_keys`. The pipeline writes and the API reads through
this one module.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.network.coattendance import Attendance, CoAttendanceGraph, WeightConfig
from domain.network.metrics import MetricsConfig
from domain.topology.report import TdaConfig
from infra import graph_schema as gs
from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings

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


def weight_config(s: Settings) -> WeightConfig:
    return s.analytics.weight_config()


def metrics_config(s: Settings) -> MetricsConfig:
    return s.analytics.metrics_config()


def tda_config(s: Settings) -> TdaConfig:
    return s.tda.to_config()


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
                r["member_id"],
                r["event_id"],
                _native(r["starts_at"]),
                r["status"] or "",
                bool(r["checked_in"]),
            )
            for r in rows
        ]

    def member_ids(self) -> list[str]:
        return [r["member_id"] for r in self.graph.run(gs.ALL_MEMBER_IDS)]

    def write_member_metrics(self, rows: list[dict[str, Any]], stamp: str) -> int:
        """Sets `net_*` properties on each member in batched UNWIND transactions."""
        batch = [
            {
                "member_id": r["member_id"],
                "props": {
                    **{f"{METRIC_PREFIX}{k}": r[k] for k in MEMBER_METRICS},
                    f"{METRIC_PREFIX}computed_at": stamp,
                },
                "computed_from": stamp.split("#", 1)[0],
            }
            for r in rows
        ]
        return self.graph.write_batches(gs.SET_MEMBER_METRICS, batch)

    def replace_co_attendance(self, g: CoAttendanceGraph) -> int:
        """Replaces the CO_ATTENDED relationships with the given graph's edges."""
        # CALL … IN TRANSACTIONS needs an auto-commit transaction (session.run).
        with self.graph.driver.session(database=self.graph.database) as session:
            session.run(gs.DELETE_CO_ATTENDED).consume()
        rows = [
            {"a": g.members[int(s)], "b": g.members[int(d)], "weight": float(w), "events": int(k)}
            for s, d, w, k in zip(g.src, g.dst, g.weight, g.shared_events, strict=True)
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
                k: props.get(f"{METRIC_PREFIX}{k}")
                for k in MEMBER_METRICS
                if f"{METRIC_PREFIX}{k}" in props
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
                "member_id": r["member_id"],
                "display_name": r["display_name"],
                "metrics_stale": bool(r["props"].get("metrics_stale")),
                "metrics": {k: r["props"].get(f"{METRIC_PREFIX}{k}") for k in MEMBER_METRICS},
            }
            for r in rows
        ]

    def connectors(self, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        rows = self.graph.run(gs.CONNECTORS, skip=skip, limit=limit)
        total = int(self.graph.run(gs.COUNT_CONNECTORS)[0]["n"])
        return rows, total

    # Redis ---------------------------------------------------------------------------

    def put_community(
        self,
        summary: dict[str, Any],
        communities: list[dict[str, Any]],
        layout: dict[str, Any],
        meta: dict[str, str],
    ) -> None:
        self.figures.put_json(self.keys.community_summary(), summary)
        self.figures.put_json(self.keys.communities(), communities)
        self.figures.put_json(self.keys.graph_layout(), layout)
        for field, value in meta.items():
            self.figures.r.hset(self.keys.analytics_meta(), field, value)
        # Cached API answers (figures, stale flags) must not outlive the new figures.
        self.figures.bump_generation()

    def community_summary(self) -> dict[str, Any] | None:
        value = self.figures.get_json(self.keys.community_summary())
        return value if isinstance(value, dict) else None

    def communities(self) -> list[dict[str, Any]] | None:
        value = self.figures.get_json(self.keys.communities())
        return value if isinstance(value, list) else None

    def layout(self) -> dict[str, Any] | None:
        value = self.figures.get_json(self.keys.graph_layout())
        return value if isinstance(value, dict) else None

    def put_snapshot(self, month: str, snapshot: dict[str, Any]) -> None:
        self.figures.put_json(self.keys.snapshot(month), snapshot)
        self.figures.r.zadd(self.keys.snapshots_index(), {month: month_score(month)})

    def snapshot(self, month: str) -> dict[str, Any] | None:
        value = self.figures.get_json(self.keys.snapshot(month))
        return value if isinstance(value, dict) else None

    def snapshot_months(self) -> list[str]:
        return [str(m) for m in self.figures.r.zrange(self.keys.snapshots_index(), 0, -1)]

    def previous_snapshot(self, month: str) -> dict[str, Any] | None:
        """The latest stored snapshot before `month`."""
        prior = self.figures.r.zrevrangebyscore(
            self.keys.snapshots_index(), f"({month_score(month)}", "-inf", start=0, num=1
        )
        return self.snapshot(str(prior[0])) if prior else None
