"""Community analytics: summary, per-member metrics, connectors, communities, snapshots, layout.

Everything is computed by the pipeline; these routes only read it back from Redis and
Neo4j through `infra.analytics_store`, so they stay fast and never trigger a computation.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict

from api.deps import AppState, StateDep, ViewerDep
from api.responses import MAX_ID_LENGTH, MAX_OFFSET, cached
from infra.analytics_store import MEMBER_METRICS, AnalyticsStore

router = APIRouter(prefix="/v1", tags=["analytics"])

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
SortMetric = Literal[
    "degree", "weighted_degree", "pagerank", "betweenness", "clustering", "core_number"
]  # fmt: skip


class Document(BaseModel):
    """A document the pipeline computed; its fields are described in the README."""

    model_config = ConfigDict(extra="allow")


class ItemsPage(BaseModel):
    model_config = ConfigDict(extra="allow")
    items: list[dict[str, Any]]


def _store(state: AppState) -> AnalyticsStore:
    return AnalyticsStore(state.graph, state.figures)


def _not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail={"error": "not_found", "message": what})


def _not_computed(what: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        detail={
            "error": "not_computed",
            "message": f"{what} has not been computed yet; materialize community_analytics",
        },
    )


def _without_diagrams(topology: dict[str, Any] | None) -> dict[str, Any] | None:
    if topology is None:
        return None
    return {k: v for k, v in topology.items() if k not in ("diagrams", "image")}


@router.get("/analytics/summary", response_model=Document)
async def community_summary(
    state: StateDep,
    _: ViewerDep,
    topology_detail: bool = Query(False, description="include diagrams and image vector"),
) -> Response:
    """Community-wide network figures, activity over time, cohorts and the TDA summary."""

    def produce() -> dict[str, Any]:
        summary = _store(state).community_summary()
        if summary is None:
            raise _not_computed("the community summary")
        if not topology_detail:
            summary["topology"] = _without_diagrams(summary.get("topology"))
        return summary

    return await cached(state, "analytics.summary", {"detail": topology_detail}, produce)


@router.get("/analytics/members", response_model=ItemsPage)
async def top_members(
    state: StateDep,
    _: ViewerDep,
    sort: SortMetric = Query("pagerank"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Response:
    """Members ranked by one metric, highest first."""

    def produce() -> dict[str, Any]:
        items = _store(state).top_members(sort, offset, limit)
        return {"items": items, "sort": sort, "limit": limit, "offset": offset}

    params = {"sort": sort, "limit": limit, "offset": offset}
    return await cached(state, "analytics.members", params, produce)


@router.get("/analytics/members/{member_id}", response_model=Document)
async def member_metrics(
    state: StateDep,
    _: ViewerDep,
    member_id: str = Path(min_length=1, max_length=MAX_ID_LENGTH),
) -> Response:
    """One member's network metrics (empty `metrics` until analytics have run)."""

    def produce() -> dict[str, Any]:
        row = _store(state).member_metrics(member_id)
        if row is None:
            raise _not_found(f"unknown member {member_id!r}")
        row["metric_names"] = list(MEMBER_METRICS)
        return row

    return await cached(state, "analytics.member", {"id": member_id}, produce)


@router.get("/analytics/connectors", response_model=ItemsPage)
async def connectors(
    state: StateDep,
    _: ViewerDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Response:
    """Members whose absence would split a group (articulation points or bridge ends)."""

    def produce() -> dict[str, Any]:
        items, total = _store(state).connectors(offset, limit)
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    return await cached(state, "analytics.connectors", {"limit": limit, "offset": offset}, produce)


@router.get("/analytics/communities", response_model=ItemsPage)
async def communities(
    state: StateDep,
    _: ViewerDep,
) -> Response:
    def produce() -> dict[str, Any]:
        store = _store(state)
        items = store.communities()
        if items is None:
            raise _not_computed("communities")
        summary = store.community_summary() or {}
        return {"items": items, "modularity": summary.get("modularity"), "total": len(items)}

    return await cached(state, "analytics.communities", {}, produce)


@router.get("/analytics/snapshots", response_model=ItemsPage)
async def snapshots(
    state: StateDep,
    _: ViewerDep,
    limit: int = Query(24, ge=1, le=120),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> Response:
    """Stored monthly snapshots, oldest first, with headline figures and structural change.

    Paged: only the requested months are loaded.
    """

    def load() -> dict[str, Any]:
        store = _store(state)
        months = store.snapshot_months()
        out = []
        for month in months[offset : offset + limit]:
            snap = store.snapshot(month)
            if snap is None:
                continue
            change = snap.get("structural_change")
            topo = snap.get("topology") or {}
            out.append(
                {
                    "month": month,
                    "members": snap["network"]["members"],
                    "edges": snap["network"]["edges"],
                    "communities": snap["network"]["communities"],
                    "modularity": snap["network"]["modularity"],
                    "activity": snap.get("activity"),
                    "tda_status": topo.get("status"),
                    "structural_change": None if change is None else change["score"],
                    "compared_with": snap.get("compared_with"),
                }
            )
        return {"items": out, "total": len(months), "limit": limit, "offset": offset}

    return await cached(state, "analytics.snapshots", {"limit": limit, "offset": offset}, load)


@router.get("/analytics/snapshots/{month}", response_model=Document)
async def snapshot(
    state: StateDep,
    _: ViewerDep,
    month: str = Path(pattern=MONTH_PATTERN, description="YYYY-MM"),
    diagrams: bool = Query(True, description="include persistence diagrams and image vector"),
) -> Response:
    """One month: network figures, activity, TDA summaries with a reading, structural change."""

    def produce() -> dict[str, Any]:
        snap = _store(state).snapshot(month)
        if snap is None:
            raise _not_found(f"no snapshot for {month}")
        if not diagrams:
            snap["topology"] = _without_diagrams(snap.get("topology"))
        return snap

    return await cached(
        state, "analytics.snapshot", {"month": month, "diagrams": diagrams}, produce
    )


@router.get("/analytics/layout", response_model=Document)
async def layout(
    state: StateDep,
    _: ViewerDep,
) -> Response:
    """Node positions in [0, 1]², community colours and sizes by PageRank, for drawing."""

    def produce() -> dict[str, Any]:
        value = _store(state).layout()
        if value is None:
            raise _not_computed("the graph layout")
        return value

    return await cached(state, "analytics.layout", {}, produce)
