"""Community analytics: summary, per-member metrics, connectors, communities, snapshots, layout.

Everything is computed by the pipeline; these routes only read it back from Redis and
Neo4j through `infra.analytics_store`, so they stay fast and never trigger a computation.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status

from api.auth import Principal, require_role
from api.deps import AppState, app_state
from infra.analytics_store import MEMBER_METRICS, AnalyticsStore

router = APIRouter(prefix="/v1", tags=["analytics"])

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
SortMetric = Literal[
    "degree", "weighted_degree", "pagerank", "betweenness", "clustering", "core_number"
]  # fmt: skip


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


@router.get("/analytics/summary")
async def community_summary(
    topology_detail: bool = Query(False, description="include diagrams and image vector"),
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("viewer")),
) -> dict[str, Any]:
    """Community-wide network figures, activity over time, cohorts and the TDA summary."""
    summary = await asyncio.to_thread(_store(state).community_summary)
    if summary is None:
        raise _not_computed("the community summary")
    if not topology_detail:
        summary["topology"] = _without_diagrams(summary.get("topology"))
    return summary


@router.get("/analytics/members")
async def top_members(
    sort: SortMetric = Query("pagerank"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("viewer")),
) -> dict[str, Any]:
    """Members ranked by one metric, highest first."""
    items = await asyncio.to_thread(_store(state).top_members, sort, offset, limit)
    return {"items": items, "sort": sort, "limit": limit, "offset": offset}


@router.get("/analytics/members/{member_id}")
async def member_metrics(
    member_id: str = Path(min_length=1, max_length=200),
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("viewer")),
) -> dict[str, Any]:
    """One member's network metrics (empty `metrics` until analytics have run)."""
    row = await asyncio.to_thread(_store(state).member_metrics, member_id)
    if row is None:
        raise _not_found(f"unknown member {member_id!r}")
    row["metric_names"] = list(MEMBER_METRICS)
    return row


@router.get("/analytics/connectors")
async def connectors(
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("viewer")),
) -> dict[str, Any]:
    """Members whose absence would split a group (articulation points or bridge ends)."""
    items, total = await asyncio.to_thread(_store(state).connectors, offset, limit)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/analytics/communities")
async def communities(
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("viewer")),
) -> dict[str, Any]:
    store = _store(state)
    items = await asyncio.to_thread(store.communities)
    if items is None:
        raise _not_computed("communities")
    summary = await asyncio.to_thread(store.community_summary) or {}
    return {"items": items, "modularity": summary.get("modularity"), "total": len(items)}


@router.get("/analytics/snapshots")
async def snapshots(
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("viewer")),
) -> dict[str, Any]:
    """Stored monthly snapshots, oldest first, with headline figures and structural change."""
    store = _store(state)

    def load() -> list[dict[str, Any]]:
        out = []
        for month in store.snapshot_months():
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
        return out

    items = await asyncio.to_thread(load)
    return {"items": items, "total": len(items)}


@router.get("/analytics/snapshots/{month}")
async def snapshot(
    month: str = Path(pattern=MONTH_PATTERN, description="YYYY-MM"),
    diagrams: bool = Query(True, description="include persistence diagrams and image vector"),
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("viewer")),
) -> dict[str, Any]:
    """One month: network figures, activity, TDA summaries with a reading, structural change."""
    snap = await asyncio.to_thread(_store(state).snapshot, month)
    if snap is None:
        raise _not_found(f"no snapshot for {month}")
    if not diagrams:
        snap["topology"] = _without_diagrams(snap.get("topology"))
    return snap


@router.get("/analytics/layout")
async def layout(
    state: AppState = Depends(app_state),
    _: Principal = Depends(require_role("viewer")),
) -> dict[str, Any]:
    """Node positions in [0, 1]², community colours and sizes by PageRank, for drawing."""
    value = await asyncio.to_thread(_store(state).layout)
    if value is None:
        raise _not_computed("the graph layout")
    return value
