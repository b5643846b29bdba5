"""The filtration: which distances between members persistent homology sees.

Each co-attendance edge gets a length `1 / weight`: members who often attend together
are close. The distance between two members is the shortest-path length over those
edges (a metric), and the Vietoris–Rips filtration of that metric is what ripser
computes: at scale `t`, members within `t` of each other are linked, triangles fill in
when all three pairs are linked, and so on.

Reading it: H0 classes are groups that stay apart until the scale reaches their
distance (infinite ones never join: separate components); H1 classes are loops — rings
of members connected around a cycle but not across it; H2 classes are hollow shells.

Members who attended nothing with anyone (isolated vertices) are left out of the point
cloud: each would only add one infinite H0 class; their count is reported instead.

Above `max_points` members, greedy max-min (farthest point) landmarks are used: start
at the strongest member, then repeatedly add the member farthest from all landmarks
chosen so far. The order has the prefix property (the first k of an ordering of n are
the greedy k-landmark set), which the bounded computation uses to shrink its input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # scipy is imported where used: the code location loads without it
    import scipy.sparse as sp

from domain.network.coattendance import CoAttendanceGraph


@dataclass
class PointCloud:
    """A distance matrix over chosen members (vertex indices), in landmark order."""

    vertices: np.ndarray
    distances: np.ndarray  # (k, k) float64, np.inf between components
    landmarks: bool
    total_points: int  # non-isolated members the cloud stands for
    isolated: int

    @property
    def size(self) -> int:
        return len(self.vertices)

    def prefix(self, k: int) -> PointCloud:
        k = min(k, self.size)
        return PointCloud(
            self.vertices[:k],
            self.distances[:k, :k],
            self.landmarks or k < self.size,
            self.total_points,
            self.isolated,
        )


def length_matrix(g: CoAttendanceGraph) -> sp.csr_matrix:
    """Symmetric sparse matrix of edge lengths 1/weight (Dijkstra runs it as directed: cheaper)."""
    import scipy.sparse as sp

    lengths = 1.0 / g.weight
    a = sp.coo_matrix((lengths, (g.src, g.dst)), shape=(g.n, g.n))
    return (a + a.T).tocsr()


def maxmin_landmarks(
    lengths: sp.csr_matrix, candidates: np.ndarray, k: int, first: int
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy max-min landmarks among `candidates`; returns them and their distance rows.

    Unreachable members count as infinitely far, so every component gets a landmark
    before any component gets a second one.
    """
    from scipy.sparse.csgraph import dijkstra

    k = min(k, len(candidates))
    is_candidate = np.zeros(lengths.shape[0], dtype=bool)
    is_candidate[candidates] = True
    chosen = [first]
    rows = [dijkstra(lengths, directed=True, indices=first).astype(np.float32)]
    nearest = rows[0].astype(np.float64)
    nearest[~is_candidate] = -1.0
    nearest[first] = -1.0
    while len(chosen) < k:
        nxt = int(np.argmax(nearest))
        chosen.append(nxt)
        row = dijkstra(lengths, directed=True, indices=nxt)
        rows.append(row.astype(np.float32))
        np.minimum(nearest, row, out=nearest, where=nearest >= 0)
        nearest[nxt] = -1.0
    idx = np.array(chosen, dtype=np.int64)
    dist = np.vstack(rows)[:, idx].astype(np.float64)
    # Rows were computed per landmark; symmetrize away float32 rounding.
    dist = np.minimum(dist, dist.T)
    np.fill_diagonal(dist, 0.0)
    return idx, dist


def point_cloud(g: CoAttendanceGraph, max_points: int) -> PointCloud:
    """The members' shortest-path distance matrix, with landmarks above `max_points`."""
    degree = np.bincount(np.concatenate([g.src, g.dst]), minlength=g.n) if g.n else np.zeros(0)
    candidates = np.flatnonzero(degree > 0)
    isolated = int(g.n - len(candidates))
    if len(candidates) == 0:
        return PointCloud(np.zeros(0, dtype=np.int64), np.zeros((0, 0)), False, 0, isolated)
    lengths = length_matrix(g)
    strength = np.asarray(abs(g.adjacency()).sum(axis=1)).ravel()
    first = int(candidates[np.argmax(strength[candidates])])
    if len(candidates) <= max_points:
        order, dist = maxmin_landmarks(lengths, candidates, len(candidates), first)
        return PointCloud(order, dist, False, len(candidates), isolated)
    order, dist = maxmin_landmarks(lengths, candidates, max_points, first)
    return PointCloud(order, dist, True, len(candidates), isolated)


def from_distance_matrix(distances: np.ndarray) -> PointCloud:
    """A cloud over a given metric (tests, benchmarks)."""
    n = distances.shape[0]
    return PointCloud(np.arange(n), np.asarray(distances, dtype=np.float64), False, n, 0)
