"""Community analytics: summary, per-member metrics, connectors, communities, snapshots, layout.

Everything is computed by the pipeline; these routes only read it back from Redis and
Neo4j through `infra.analytics_store`, so they stay fast and never trigger a computation.
Every route answers through the response cache (`api.responses.cached`): it returns a
`Response` so a hit is sent as the stored bytes, and declares `response_model` so OpenAPI
documents the body, which a miss builds from these models.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from api.deps import AppState, PageLimit, PageOffset, StateDep, ViewerDep
from api.responses import MAX_ID_LENGTH, cached
from api.schemas.analytics import (
    CommunitiesPage,
    CommunitySummary,
    ConnectorsPage,
    Layout,
    MemberMetrics,
    MemberRankingPage,
    Snapshot,
    SnapshotRow,
    SnapshotsPage,
    SortMetric,
)
from infra.analytics_store import MEMBER_METRICS, AnalyticsStore
from infra.documents import MONTH_PATTERN, SnapshotDocument

router = APIRouter(prefix="/v1", tags=["analytics"])

WITHOUT_DIAGRAMS = {"topology": {"diagrams", "image"}}  # the bulk of a stored document


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


def _content(doc: CommunitySummary | Snapshot, detail: bool) -> dict[str, Any]:
    """A stored document as served: without its storage version, and without the
    diagrams and image vector unless asked for."""
    exclude: dict[str, Any] = {"schema_version": True}
    if not detail:
        exclude.update(WITHOUT_DIAGRAMS)
    return doc.model_dump(mode="json", exclude=exclude)


@router.get("/analytics/summary", response_model=CommunitySummary)
async def community_summary(
    state: StateDep,
    _: ViewerDep,
    topology_detail: bool = Query(False, description="include diagrams and image vector"),
) -> Response:
    """Community-wide network figures, activity over time, cohorts and the TDA summary."""

    def produce() -> dict[str, Any]:
        summary = _store(state).summary_document()
        if summary is None:
            raise _not_computed("the community summary")
        return _content(summary, topology_detail)

    return await cached(state, "analytics.summary", {"detail": topology_detail}, produce)


@router.get("/analytics/members", response_model=MemberRankingPage)
async def top_members(
    state: StateDep,
    _: ViewerDep,
    sort: SortMetric = Query("pagerank"),
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> Response:
    """Members ranked by one metric, highest first."""

    def produce() -> MemberRankingPage:
        items = _store(state).top_members(sort, offset, limit)
        return MemberRankingPage.model_validate(
            {"items": items, "sort": sort, "limit": limit, "offset": offset}
        )

    params = {"sort": sort, "limit": limit, "offset": offset}
    return await cached(state, "analytics.members", params, produce)


@router.get("/analytics/members/{member_id}", response_model=MemberMetrics)
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
        found = MemberMetrics.model_validate({**row, "metric_names": list(MEMBER_METRICS)})
        # Only the figures the member has: `metrics` stays empty until analytics have run.
        return found.model_dump(mode="json", exclude_unset=True)

    return await cached(state, "analytics.member", {"id": member_id}, produce)


@router.get("/analytics/connectors", response_model=ConnectorsPage)
async def connectors(
    state: StateDep,
    _: ViewerDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> Response:
    """Members whose absence would split a group (articulation points or bridge ends)."""

    def produce() -> ConnectorsPage:
        items, total = _store(state).connectors(offset, limit)
        return ConnectorsPage.model_validate(
            {"items": items, "total": total, "limit": limit, "offset": offset}
        )

    return await cached(state, "analytics.connectors", {"limit": limit, "offset": offset}, produce)


@router.get("/analytics/communities", response_model=CommunitiesPage)
async def communities(state: StateDep, _: ViewerDep) -> Response:
    """The communities of the current member graph, largest first, with the modularity."""

    def produce() -> CommunitiesPage:
        store = _store(state)
        found = store.communities_document()
        if found is None:
            raise _not_computed("communities")
        summary = store.summary_document()
        return CommunitiesPage(
            items=found.items,
            modularity=None if summary is None else summary.modularity,
            total=len(found.items),
        )

    return await cached(state, "analytics.communities", {}, produce)


def _snapshot_row(snap: SnapshotDocument) -> SnapshotRow:
    change = snap.structural_change
    return SnapshotRow(
        month=snap.month,
        members=snap.network.members,
        edges=snap.network.edges,
        communities=snap.network.communities,
        modularity=snap.network.modularity,
        activity=snap.activity,
        tda_status=snap.topology.status,
        structural_change=None if change is None else change.score,
        compared_with=snap.compared_with,
    )


@router.get("/analytics/snapshots", response_model=SnapshotsPage)
async def snapshots(
    state: StateDep,
    _: ViewerDep,
    limit: int = Query(24, ge=1, le=120),
    offset: PageOffset = 0,
) -> Response:
    """Stored monthly snapshots, oldest first, with headline figures and structural change.

    Paged: only the requested months are loaded.
    """

    def load() -> SnapshotsPage:
        store = _store(state)
        months = store.snapshot_months()
        found = (store.snapshot_document(month) for month in months[offset : offset + limit])
        rows = [_snapshot_row(snap) for snap in found if snap is not None]
        return SnapshotsPage(items=rows, total=len(months), limit=limit, offset=offset)

    return await cached(state, "analytics.snapshots", {"limit": limit, "offset": offset}, load)


@router.get("/analytics/snapshots/{month}", response_model=Snapshot)
async def snapshot(
    state: StateDep,
    _: ViewerDep,
    month: str = Path(pattern=MONTH_PATTERN, description="YYYY-MM"),
    diagrams: bool = Query(True, description="include persistence diagrams and image vector"),
) -> Response:
    """One month: network figures, activity, TDA summaries with a reading, structural change."""

    def produce() -> dict[str, Any]:
        snap = _store(state).snapshot_document(month)
        if snap is None:
            raise _not_found(f"no snapshot for {month}")
        return _content(snap, diagrams)

    return await cached(
        state, "analytics.snapshot", {"month": month, "diagrams": diagrams}, produce
    )


@router.get("/analytics/layout", response_model=Layout)
async def layout(state: StateDep, _: ViewerDep) -> Response:
    """Node positions in [0, 1]², community colours and sizes by PageRank, for drawing."""

    def produce() -> dict[str, Any]:
        found = _store(state).layout_document()
        if found is None:
            raise _not_computed("the graph layout")
        return found.model_dump(mode="json", exclude={"schema_version"})

    return await cached(state, "analytics.layout", {}, produce)
