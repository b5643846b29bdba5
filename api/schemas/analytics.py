"""/v1/analytics: per-member metrics and pages over the documents the pipeline stored."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import Paging
from infra.documents import (
    Community,
    CommunitySummary,
    Layout,
    MonthActivity,
    Snapshot,
    Topology,
)

__all__ = [
    "CommunitiesPage",
    "CommunitySummary",
    "ConnectorsPage",
    "Layout",
    "MemberMetrics",
    "MemberRankingPage",
    "Snapshot",
    "SnapshotRow",
    "SnapshotsPage",
    "SortMetric",
    "Topology",
]

SortMetric = Literal[
    "degree", "weighted_degree", "pagerank", "betweenness", "clustering", "core_number"
]  # fmt: skip


class MetricValues(BaseModel):
    """The `net_*` figures of one member; absent (or null) until analytics have run."""

    degree: int | None = None
    weighted_degree: float | None = None
    pagerank: float | None = None
    betweenness: float | None = None
    clustering: float | None = None
    core_number: int | None = None
    is_articulation: bool | None = None
    bridges: int | None = None
    community: int | None = None
    component: int | None = None


_METRICS_EXAMPLE: Any = {
    "degree": 14,
    "weighted_degree": 9.2,
    "pagerank": 0.031,
    "betweenness": 0.12,
    "clustering": 0.4,
    "core_number": 6,
    "is_articulation": True,
    "bridges": 1,
    "community": 2,
    "component": 0,
}


class RankedMember(BaseModel):
    member_id: str
    display_name: str | None
    metrics_stale: bool
    metrics: MetricValues


class MemberMetrics(RankedMember):
    """One member's network metrics; `metrics_stale` when a correction changed the member
    after they were computed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "member_id": "mem_01",
                    "display_name": "Ada L.",
                    "computed_at": "2026-11-30T02:00:00+00:00#8d0c3f2e",
                    "metrics_stale": False,
                    "metrics": _METRICS_EXAMPLE,
                    "metric_names": list(_METRICS_EXAMPLE),
                }
            ]
        }
    )

    computed_at: str | None = Field(description="when, and by which run (`<time>#<run id>`)")
    metric_names: list[str]


class MemberRankingPage(Paging):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "member_id": "mem_01",
                            "display_name": "Ada L.",
                            "metrics_stale": False,
                            "metrics": _METRICS_EXAMPLE,
                        }
                    ],
                    "sort": "pagerank",
                    "limit": 50,
                    "offset": 0,
                }
            ]
        }
    )

    items: list[RankedMember]
    sort: SortMetric


class Connector(BaseModel):
    member_id: str
    display_name: str | None
    is_articulation: bool | None
    bridges: int | None
    betweenness: float | None
    community: int | None
    degree: int | None


class ConnectorsPage(Paging):
    items: list[Connector]
    total: int


class CommunitiesPage(BaseModel):
    items: list[Community]
    modularity: float | None
    total: int


class SnapshotRow(BaseModel):
    """One month's headline figures."""

    month: str
    members: int
    edges: int
    communities: int
    modularity: float
    activity: MonthActivity | None
    tda_status: str | None
    structural_change: float | None = Field(description="the month's change score")
    compared_with: str | None


class SnapshotsPage(Paging):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "month": "2026-02",
                            "members": 120,
                            "edges": 840,
                            "communities": 6,
                            "modularity": 0.41,
                            "activity": {
                                "month": "2026-02",
                                "active": 64,
                                "new": 9,
                                "returning": 55,
                                "lapsed": 4,
                            },
                            "tda_status": "complete",
                            "structural_change": 0.8,
                            "compared_with": "2026-01",
                        }
                    ],
                    "total": 12,
                    "limit": 24,
                    "offset": 0,
                }
            ]
        }
    )

    items: list[SnapshotRow]
    total: int
