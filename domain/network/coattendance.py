"""The co-attendance graph: members linked by the events they attended together.

An attendance counts with a strength that depends on how sure we are the member was
there: a check-in (status `attended` or a `checked_in_at` time) counts fully, an RSVP
(`going`, `registered`, `maybe`, `invited`) counts `rsvp_weight`. Declined, cancelled and
waitlisted guests were not there and do not count. For one shared event the pair gets
`strength(u) * strength(v) * decay(event)`, with `decay = (1 - monthly_decay) ** months`
between the event and the end of the window (10 %/month by default, like Orbit's reach),
so recent shared events weigh more. The edge weight is the sum over shared events.

The sum over shared events of a product is a sparse matrix product B·D·Bᵀ over the
member × event incidence matrix, which keeps large windows fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used: the code location loads without them
    import networkx as nx
    import scipy.sparse as sp

CHECKED_IN_STATUSES = frozenset({"attended"})
RSVP_STATUSES = frozenset({"going", "registered", "maybe", "invited"})
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class Attendance:
    """One member at one event, as read from the member graph."""

    member_id: str
    event_id: str
    starts_at: datetime
    status: str
    checked_in: bool = False


@dataclass(frozen=True)
class WeightConfig:
    checkin_weight: float = 1.0
    rsvp_weight: float = 0.5
    monthly_decay: float = 0.10


@dataclass
class CoAttendanceGraph:
    """Members (vertex order) and undirected weighted edges `src < dst` as arrays."""

    members: list[str]
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    shared_events: np.ndarray
    events: int = 0
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {m: i for i, m in enumerate(self.members)}

    @property
    def n(self) -> int:
        return len(self.members)

    @property
    def m(self) -> int:
        return len(self.src)

    def to_networkx(self) -> nx.Graph:
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(range(self.n))
        g.add_weighted_edges_from(
            zip(self.src.tolist(), self.dst.tolist(), self.weight.tolist(), strict=True)
        )
        return g

    def to_igraph(self) -> object:
        """An igraph.Graph with the same vertex order and a `weight` edge attribute."""
        import igraph as ig

        g = ig.Graph(n=self.n, edges=np.column_stack([self.src, self.dst]).tolist())
        g.es["weight"] = self.weight.tolist()
        return g

    def adjacency(self) -> sp.csr_matrix:
        """Symmetric weighted adjacency matrix."""
        import scipy.sparse as sp

        a = sp.coo_matrix((self.weight, (self.src, self.dst)), shape=(self.n, self.n))
        return (a + a.T).tocsr()


def from_edges(
    members: Sequence[str], edges: Iterable[tuple[str, str, float]]
) -> CoAttendanceGraph:
    """A graph from explicit weighted edges (tests, benchmarks, known-answer graphs)."""
    index = {m: i for i, m in enumerate(members)}
    rows: dict[tuple[int, int], float] = {}
    for a, b, w in edges:
        i, j = index[a], index[b]
        if i == j:
            continue
        key = (min(i, j), max(i, j))
        rows[key] = rows.get(key, 0.0) + float(w)
    keys = sorted(rows)
    src = np.array([k[0] for k in keys], dtype=np.int64)
    dst = np.array([k[1] for k in keys], dtype=np.int64)
    weight = np.array([rows[k] for k in keys], dtype=np.float64)
    return CoAttendanceGraph(list(members), src, dst, weight, np.ones(len(keys), dtype=np.int64))


def attendance_strength(a: Attendance, cfg: WeightConfig) -> float:
    if a.checked_in or a.status in CHECKED_IN_STATUSES:
        return cfg.checkin_weight
    if a.status in RSVP_STATUSES:
        return cfg.rsvp_weight
    return 0.0


def months_between(earlier: datetime, later: datetime) -> float:
    return max(0.0, (later - earlier).total_seconds() / 86400.0 / DAYS_PER_MONTH)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _in_window(
    attendance: Iterable[Attendance], start: datetime | None, end: datetime | None
) -> list[Attendance]:
    """Attendances of events starting in `[start, end)`; naive times are read as UTC."""
    return [
        record
        for record in attendance
        if (start is None or _utc(record.starts_at) >= start)
        and (end is None or _utc(record.starts_at) < end)
    ]


def _strongest_presence(
    records: list[Attendance], cfg: WeightConfig, members: Sequence[str]
) -> tuple[dict[str, int], dict[tuple[str, str], float], dict[str, datetime]]:
    """Vertex order, presence strength per (member, event), and each event's start.

    Listed members come first in their order, then members as they first count at an event.
    """
    order: dict[str, int] = {}
    for member in members:
        order.setdefault(member, len(order))
    strength: dict[tuple[str, str], float] = {}
    event_start: dict[str, datetime] = {}
    for record in records:
        presence = attendance_strength(record, cfg)
        if presence <= 0.0:
            continue
        order.setdefault(record.member_id, len(order))
        key = (record.member_id, record.event_id)
        # A member seen twice at one event (two identities) counts once, at the stronger.
        strength[key] = max(strength.get(key, 0.0), presence)
        event_start[record.event_id] = _utc(record.starts_at)
    return order, strength, event_start


def _event_decay(
    events: list[str], event_start: dict[str, datetime], as_of: datetime, cfg: WeightConfig
) -> np.ndarray:
    """Per-event factor so recent shared events weigh more."""
    return np.array(
        [(1.0 - cfg.monthly_decay) ** months_between(event_start[event], as_of) for event in events]
    )


def _incidence_matrices(
    order: dict[str, int], strength: dict[tuple[str, str], float], events: list[str]
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Member × event matrices of presence strength and of plain presence (1 per pair)."""
    import scipy.sparse as sp

    event_index = {event: position for position, event in enumerate(events)}
    count = len(strength)
    member_rows = np.fromiter(
        (order[member] for member, _ in strength), dtype=np.int64, count=count
    )
    event_cols = np.fromiter(
        (event_index[event] for _, event in strength), dtype=np.int64, count=count
    )
    values = np.fromiter(strength.values(), dtype=np.float64, count=count)
    incidence = sp.csr_matrix((values, (member_rows, event_cols)), shape=(len(order), len(events)))
    presence = sp.csr_matrix(
        (np.ones_like(values), (member_rows, event_cols)), shape=incidence.shape
    )
    return incidence, presence


def build_graph(
    attendance: Iterable[Attendance],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    cfg: WeightConfig | None = None,
    members: Sequence[str] = (),
) -> CoAttendanceGraph:
    """The co-attendance graph of events starting in `[start, end)`.

    Decay is measured to `end` (or to the latest event when `end` is open), so two
    monthly windows are built the same way and can be compared. `members` lists members
    to include even when they attended nothing in the window (they become isolated).
    """
    import scipy.sparse as sp

    cfg = cfg or WeightConfig()
    start = _utc(start) if start else None
    end = _utc(end) if end else None
    order, strength, event_start = _strongest_presence(
        _in_window(attendance, start, end), cfg, members
    )
    member_list = list(order)
    if not strength:
        empty_ids = np.zeros(0, dtype=np.int64)
        return CoAttendanceGraph(
            member_list, empty_ids, empty_ids.copy(), np.zeros(0), empty_ids.copy(), 0
        )
    events = sorted(event_start)
    decay = _event_decay(events, event_start, end or max(event_start.values()), cfg)
    incidence, presence = _incidence_matrices(order, strength, events)
    # Pair weights B·D·Bᵀ and shared-event counts, upper triangle only (src < dst).
    weights = sp.triu(incidence @ sp.diags(decay) @ incidence.T, k=1).tocoo()
    shared_counts = sp.triu(presence @ presence.T, k=1).tocsr()
    # No two members share an event: fancy indexing with empty arrays returns a matrix.
    shared = (
        np.asarray(shared_counts[weights.row, weights.col]).ravel().astype(np.int64)
        if weights.nnz
        else np.zeros(0, dtype=np.int64)
    )
    keep = weights.data > 0
    return CoAttendanceGraph(
        member_list,
        weights.row[keep].astype(np.int64),
        weights.col[keep].astype(np.int64),
        weights.data[keep].astype(np.float64),
        shared[keep],
        len(events),
    )
