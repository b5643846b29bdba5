"""The JSON documents the pipeline stores in Redis and the API reads back, as pydantic models.

One definition for writer and reader: `AnalyticsStore` builds a model from what the
assets computed (so a malformed figure fails the run that produced it, not a request
later) and validates every document it reads. Each stored document carries
`schema_version`; a reader refuses a version it does not know with `DocumentError`
rather than guessing at the shape. Changing a stored shape means a new version here and
a Redis migration in infra/migrations.py.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

DOCUMENT_VERSION: Final = 1
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"


class DocumentError(Exception):
    """A stored document this release cannot read: unknown version, or not the known shape.

    The message names the document and the reason only; never the stored values, which
    can hold member ids.
    """

    def __init__(self, document: str, reason: str, version: object, detail: str = "") -> None:
        self.document = document
        self.reason = reason  # "unknown_version" or "invalid"
        self.version = version
        self.detail = detail
        text = f"stored {document} document: {reason} (version {version!r})"
        super().__init__(f"{text}: {detail}" if detail else text)


class Strict(BaseModel):
    """Every field is part of the contract: an unknown one is a shape change (new version).

    Infinite and NaN floats are written as JSON's usual extensions, as `json.dumps` wrote
    them before the documents were modelled, so old and new documents read the same."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


# --------------------------------------------------------------------------- parts


class NetworkFigures(Strict):
    """Community-wide figures of one co-attendance graph."""

    members: int = Field(ge=0)
    edges: int = Field(ge=0)
    events: int = Field(ge=0)
    density: float
    components: int = Field(ge=0)
    largest_component: int = Field(ge=0)
    isolated_members: int = Field(ge=0)
    communities: int = Field(ge=0)
    largest_community: int = Field(ge=0)
    modularity: float
    average_degree: float
    average_clustering: float
    max_core: int
    articulation_points: int = Field(ge=0)
    bridges: int = Field(ge=0)
    betweenness_method: Literal["exact", "sampled"]
    betweenness_samples: int | None
    betweenness_error: float
    betweenness_confidence: float
    engine: str


class MonthActivity(Strict):
    month: str = Field(pattern=MONTH_PATTERN)
    active: int = Field(ge=0)
    new: int = Field(ge=0)
    returning: int = Field(ge=0)
    lapsed: int = Field(ge=0)


class Cohort(Strict):
    cohort: str = Field(pattern=MONTH_PATTERN, description="first active month")
    size: int = Field(ge=0)
    retention: list[float] = Field(description="share active 0, 1, … months later")


class TopologyDimension(Strict):
    dimension: int = Field(ge=0)
    features: int = Field(ge=0)
    essential: int = Field(ge=0)
    total_persistence: float
    entropy: float
    longest: float
    betti_curve: list[int]


class PersistenceImage(Strict):
    pixels: int
    scale: float
    length: int
    values: list[float]


class Topology(Strict):
    """The persistent homology report. `diagrams` and `image` are always stored; the API
    leaves them out unless asked (they are the bulk of the document)."""

    filtration: str
    status: Literal["complete", "reduced"]
    label: str
    complete: bool
    bounds_hit: list[str]
    attempts: list[dict[str, Any]]
    engine: str
    max_dimension: int
    requested_dimension: int
    points: int
    requested_points: int
    members_in_cloud: int
    isolated_members: int
    landmarks: bool
    seconds: float
    peak_rss_bytes: int
    threshold: float
    grid: list[float]
    dimensions: list[TopologyDimension]
    reading: list[str]
    diagrams: list[list[list[float | None]]] | None = None
    image: PersistenceImage | None = None


class Weights(Strict):
    checkin: float
    rsvp: float
    monthly_decay: float


class IdentityReview(Strict):
    open_suggestions: int = Field(ge=0)
    members: int = Field(ge=0)
    open_suggestions_per_100_members: float


class Community(Strict):
    community: int = Field(ge=0)
    size: int = Field(ge=0)
    internal_edges: int = Field(ge=0)
    density: float
    top_members: list[str]
    connectors: list[str]


class LayoutNode(Strict):
    id: str
    x: float
    y: float
    community: int
    colour: str
    size: float
    pagerank: float
    betweenness: float
    connector: bool


class LayoutEdge(Strict):
    source: str
    target: str
    weight: float


class Distances(Strict):
    bottleneck: float
    wasserstein: float


class ComponentChange(Strict):
    previous: int
    current: int


class StructuralChange(Strict):
    score: float = Field(description="largest per-dimension bottleneck distance")
    per_dimension: dict[str, Distances]
    components: ComponentChange
    comparable_dimensions: int


class Window(Strict):
    start: AwareDatetime
    end: AwareDatetime


# --------------------------------------------------------------------------- bodies
# What a document says, without its storage version: the API serves these.

_NETWORK_EXAMPLE: dict[str, Any] = {
    "members": 120,
    "edges": 840,
    "events": 18,
    "density": 0.1176,
    "components": 3,
    "largest_component": 112,
    "isolated_members": 2,
    "communities": 6,
    "largest_community": 31,
    "modularity": 0.41,
    "average_degree": 14.0,
    "average_clustering": 0.52,
    "max_core": 9,
    "articulation_points": 4,
    "bridges": 5,
    "betweenness_method": "exact",
    "betweenness_samples": None,
    "betweenness_error": 0.0,
    "betweenness_confidence": 0.95,
    "engine": "igraph",
}
_TOPOLOGY_EXAMPLE: dict[str, Any] = {
    "filtration": "Vietoris–Rips on shortest-path distance",
    "status": "complete",
    "label": "complete: H0–H2 on 118 points",
    "complete": True,
    "bounds_hit": [],
    "attempts": [{"points": 118, "dimension": 2, "status": "ok"}],
    "engine": "giotto",
    "max_dimension": 2,
    "requested_dimension": 2,
    "points": 118,
    "requested_points": 118,
    "members_in_cloud": 118,
    "isolated_members": 2,
    "landmarks": False,
    "seconds": 0.42,
    "peak_rss_bytes": 210000000,
    "threshold": 3.5,
    "grid": [0.0, 0.5, 1.0],
    "dimensions": [
        {
            "dimension": 0,
            "features": 118,
            "essential": 3,
            "total_persistence": 41.2,
            "entropy": 4.1,
            "longest": 1.2,
            "betti_curve": [118, 20, 3],
        }
    ],
    "reading": ["Groups (H0): 3 separate group(s) never meet at any event together."],
}


class CommunitySummary(NetworkFigures):
    """Community-wide network figures, activity per month, cohorts and the TDA report."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_NETWORK_EXAMPLE,
                    "computed_at": "2026-11-30T02:00:00Z",
                    "weights": {"checkin": 1.0, "rsvp": 0.3, "monthly_decay": 0.95},
                    "activity": [
                        {"month": "2026-11", "active": 64, "new": 9, "returning": 55, "lapsed": 4}
                    ],
                    "cohorts": [{"cohort": "2026-10", "size": 12, "retention": [1.0, 0.58]}],
                    "topology": _TOPOLOGY_EXAMPLE,
                    "identity_review": {
                        "open_suggestions": 3,
                        "members": 120,
                        "open_suggestions_per_100_members": 2.5,
                    },
                }
            ]
        }
    )

    computed_at: AwareDatetime
    weights: Weights
    activity: list[MonthActivity]
    cohorts: list[Cohort]
    topology: Topology
    identity_review: IdentityReview


class Layout(Strict):
    """Node positions in [0, 1]², community colours and sizes by PageRank, for drawing."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "nodes": [
                        {
                            "id": "mem_01",
                            "x": 0.25,
                            "y": 0.75,
                            "community": 0,
                            "colour": "#1f77b4",
                            "size": 20.0,
                            "pagerank": 0.031,
                            "betweenness": 0.12,
                            "connector": True,
                        }
                    ],
                    "edges": [{"source": "mem_01", "target": "mem_02", "weight": 2.3}],
                    "members_total": 120,
                    "edges_total": 840,
                    "truncated": False,
                    "size_by": "pagerank",
                    "colour_by": "community",
                }
            ]
        }
    )

    nodes: list[LayoutNode]
    edges: list[LayoutEdge]
    members_total: int = Field(ge=0)
    edges_total: int = Field(ge=0)
    truncated: bool
    size_by: str
    colour_by: str


class Snapshot(Strict):
    """One month: network figures, activity, the TDA report and the change since the month
    before."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "month": "2026-02",
                    "window": {"start": "2026-02-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"},
                    "computed_at": "2026-03-01T02:00:00Z",
                    "network": _NETWORK_EXAMPLE,
                    "activity": {
                        "month": "2026-02",
                        "active": 64,
                        "new": 9,
                        "returning": 55,
                        "lapsed": 4,
                    },
                    "cohorts": [],
                    "topology": _TOPOLOGY_EXAMPLE,
                    "structural_change": {
                        "score": 0.8,
                        "per_dimension": {"H0": {"bottleneck": 0.8, "wasserstein": 2.1}},
                        "components": {"previous": 2, "current": 3},
                        "comparable_dimensions": 3,
                    },
                    "compared_with": "2026-01",
                }
            ]
        }
    )

    month: str = Field(pattern=MONTH_PATTERN)
    window: Window
    computed_at: AwareDatetime
    network: NetworkFigures
    activity: MonthActivity | None
    cohorts: list[Cohort]
    topology: Topology
    structural_change: StructuralChange | None
    compared_with: str | None


# --------------------------------------------------------------------------- stored


class SummaryDocument(CommunitySummary):
    schema_version: Literal[1] = DOCUMENT_VERSION


class CommunitiesDocument(Strict):
    """Stored as an object (not a bare list) so it can carry its version."""

    schema_version: Literal[1] = DOCUMENT_VERSION
    items: list[Community]


class LayoutDocument(Layout):
    schema_version: Literal[1] = DOCUMENT_VERSION


class SnapshotDocument(Snapshot):
    schema_version: Literal[1] = DOCUMENT_VERSION


Doc = TypeVar("Doc", bound=BaseModel)

# Names of the stored documents, in errors and logs.
SUMMARY, COMMUNITIES, LAYOUT, SNAPSHOT = (
    "community summary",
    "communities",
    "graph layout",
    "snapshot",
)


def build(model: type[Doc], document: str, value: Any) -> Doc:
    """The writer's side: a computed value as its document model (version stamped)."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise DocumentError(document, "invalid", DOCUMENT_VERSION, _where(exc)) from exc


def parse(model: type[Doc], document: str, value: Any) -> Doc:
    """The reader's side: the version first (an unknown one is never parsed), then the shape."""
    version = value.get("schema_version") if isinstance(value, dict) else None
    if version != DOCUMENT_VERSION:
        raise DocumentError(document, "unknown_version", version)
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise DocumentError(document, "invalid", version, _where(exc)) from exc


def _where(exc: ValidationError) -> str:
    """Where validation failed (field paths and error types, never the input values)."""
    first = exc.errors(include_input=False, include_url=False)[:3]
    places = ", ".join(
        f"{'.'.join(str(part) for part in err['loc'])} ({err['type']})" for err in first
    )
    return f"{exc.error_count()} error(s) at {places}"
