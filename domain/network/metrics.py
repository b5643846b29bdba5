"""Network metrics per member and for the whole community, on two engines.

networkx is the reference model; python-igraph (and leidenalg for communities) is the
fast engine behind the same functions. Both return the same shapes, indexed by vertex
order of the `CoAttendanceGraph`, and the unit tests check that they agree.

Definitions (the same on both engines):
- degree: distinct members met; weighted degree: sum of edge weights (tie strength).
- PageRank: on edge weights, damping 0.85.
- betweenness: normalized, on hop counts (who sits on the short routes between members).
  Exact up to `exact_max` members; above it, estimated from `k` sampled source members
  (Brandes & Pich). The estimate of each value is within `error` of the exact value with
  95 % probability (Hoeffding: error = sqrt(ln(2/0.05) / (2k)) on the normalized scale).
- clustering: unweighted local clustering coefficient (0 for fewer than two neighbours).
- k-core: the core number.
- connectors: articulation points (removing the member splits a group) and bridges.
- communities: modularity-maximizing partition on edge weights (Louvain on networkx,
  Leiden on igraph, run until stable), with its weighted modularity.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from domain.network.coattendance import CoAttendanceGraph

if TYPE_CHECKING:  # the networkx reference engine imports it where used
    import networkx as nx

Engine = Literal["networkx", "igraph"]
CONFIDENCE = 0.95
_T = TypeVar("_T")


@dataclass(frozen=True)
class MetricsConfig:
    engine: Engine = "igraph"
    betweenness_exact_max: int = 5000
    betweenness_samples: int = 500
    community_resolution: float = 1.0
    seed: int = 7


@dataclass
class BetweennessResult:
    values: np.ndarray
    method: Literal["exact", "sampled"]
    samples: int | None = None
    error: float = 0.0
    confidence: float = CONFIDENCE


@dataclass
class NetworkMetrics:
    """Per-member arrays in vertex order, plus the community-wide figures."""

    degree: np.ndarray
    weighted_degree: np.ndarray
    pagerank: np.ndarray
    betweenness: BetweennessResult
    clustering: np.ndarray
    core_number: np.ndarray
    articulation: np.ndarray
    bridges: list[tuple[int, int]]
    bridge_count: np.ndarray
    community: np.ndarray
    modularity: float
    component: np.ndarray
    engine: str
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self, g: CoAttendanceGraph) -> dict[str, Any]:
        n = g.n
        comp_sizes = np.bincount(self.component) if n else np.zeros(0, dtype=np.int64)
        comm_sizes = np.bincount(self.community) if n else np.zeros(0, dtype=np.int64)
        return {
            "members": n,
            "edges": g.m,
            "events": g.events,
            "density": density(n, g.m),
            "components": len(comp_sizes),
            "largest_component": int(comp_sizes.max()) if n else 0,
            "isolated_members": int(np.sum(self.degree == 0)),
            "communities": int(np.sum(comm_sizes > 0)),
            "largest_community": int(comm_sizes.max()) if n else 0,
            "modularity": float(self.modularity),
            "average_degree": float(self.degree.mean()) if n else 0.0,
            "average_clustering": float(self.clustering.mean()) if n else 0.0,
            "max_core": int(self.core_number.max()) if n else 0,
            "articulation_points": int(self.articulation.sum()),
            "bridges": len(self.bridges),
            "betweenness_method": self.betweenness.method,
            "betweenness_samples": self.betweenness.samples,
            "betweenness_error": self.betweenness.error,
            "betweenness_confidence": self.betweenness.confidence,
            "engine": self.engine,
        }

    def member_rows(self, g: CoAttendanceGraph) -> list[dict[str, Any]]:
        """One dict per member, ready to be stored as properties."""
        return [
            {
                "member_id": m,
                "degree": int(self.degree[i]),
                "weighted_degree": float(self.weighted_degree[i]),
                "pagerank": float(self.pagerank[i]),
                "betweenness": float(self.betweenness.values[i]),
                "clustering": float(self.clustering[i]),
                "core_number": int(self.core_number[i]),
                "is_articulation": bool(self.articulation[i]),
                "bridges": int(self.bridge_count[i]),
                "community": int(self.community[i]),
                "component": int(self.component[i]),
            }
            for i, m in enumerate(g.members)
        ]


def density(n: int, m: int) -> float:
    return 0.0 if n < 2 else 2.0 * m / (n * (n - 1))


def hoeffding_error(k: int, confidence: float = CONFIDENCE) -> float:
    return math.sqrt(math.log(2.0 / (1.0 - confidence)) / (2.0 * k))


def sample_sources(n: int, k: int, seed: int) -> list[int]:
    return sorted(random.Random(seed).sample(range(n), k))


def _canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumbers groups by decreasing size (ties: smallest member index first)."""
    if len(labels) == 0:
        return labels.astype(np.int64)
    uniq, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda i: (-counts[i], first[i]))
    remap = {int(uniq[i]): rank for rank, i in enumerate(order)}
    return np.array([remap[int(x)] for x in labels], dtype=np.int64)


def _bridge_counts(n: int, bridges: list[tuple[int, int]]) -> np.ndarray:
    counts = np.zeros(n, dtype=np.int64)
    for a, b in bridges:
        counts[a] += 1
        counts[b] += 1
    return counts


def _timed(timings: dict[str, float], step: str, compute: Callable[[], _T]) -> _T:
    """Runs one metric step and records its wall time, so slow steps show in the report."""
    start = time.perf_counter()
    value = compute()
    timings[step] = time.perf_counter() - start
    return value


def _assemble_metrics(
    size: int,
    degrees: tuple[np.ndarray, np.ndarray],
    pagerank: np.ndarray,
    betweenness: BetweennessResult,
    clustering: np.ndarray,
    core_number: np.ndarray,
    connectors: tuple[np.ndarray, list[tuple[int, int]]],
    communities: tuple[np.ndarray, float],
    component: np.ndarray,
    engine: str,
    timings: dict[str, float],
) -> NetworkMetrics:
    """One place that canonicalizes labels, so both engines report groups alike."""
    degree, weighted_degree = degrees
    articulation, bridges = connectors
    community, modularity = communities
    return NetworkMetrics(
        degree,
        weighted_degree,
        pagerank,
        betweenness,
        clustering,
        core_number,
        articulation,
        bridges,
        _bridge_counts(size, bridges),
        _canonical_labels(community),
        modularity,
        _canonical_labels(component),
        engine,
        timings,
    )


# networkx reference ------------------------------------------------------------------


def betweenness_networkx(graph: nx.Graph, n: int, cfg: MetricsConfig) -> BetweennessResult:
    import networkx as nx

    if n <= cfg.betweenness_exact_max or cfg.betweenness_samples >= n:
        b = nx.betweenness_centrality(graph, normalized=True)
        return BetweennessResult(np.array([b[i] for i in range(n)]), "exact")
    k = cfg.betweenness_samples
    # networkx samples with its own generator; pass the same pivots so engines agree.
    sources = sample_sources(n, k, cfg.seed)
    b = nx.betweenness_centrality_subset(graph, sources=sources, targets=list(range(n)))
    # subset betweenness counts each (s, t) path once; rescale to nx's sampled estimate.
    scale = 2.0 * n / (k * (n - 1) * (n - 2))
    vals = np.array([b[i] for i in range(n)]) * scale
    return BetweennessResult(vals, "sampled", k, hoeffding_error(k))


def _per_vertex(values: dict[int, Any], size: int, dtype: Any) -> np.ndarray:
    """networkx answers in dicts keyed by vertex; the metrics are arrays in vertex order."""
    return np.array([values[vertex] for vertex in range(size)], dtype=dtype)


def _degrees_networkx(graph: nx.Graph, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct members met, and tie strength summed over them."""
    degree = np.array([graph.degree(vertex) for vertex in range(size)], dtype=np.int64)
    weighted = np.array(
        [graph.degree(vertex, weight="weight") for vertex in range(size)], dtype=np.float64
    )
    return degree, weighted


def _pagerank_networkx(graph: nx.Graph, size: int) -> np.ndarray:
    """Tight tolerance so the reference matches igraph's exact solver."""
    import networkx as nx

    ranks = (
        nx.pagerank(graph, alpha=0.85, weight="weight", tol=1e-10, max_iter=10000) if size else {}
    )
    return _per_vertex(ranks, size, np.float64)


def _clustering_networkx(graph: nx.Graph, size: int) -> np.ndarray:
    import networkx as nx

    return _per_vertex(nx.clustering(graph), size, np.float64)


def _core_numbers_networkx(graph: nx.Graph, size: int) -> np.ndarray:
    import networkx as nx

    return _per_vertex(nx.core_number(graph), size, np.int64)


def _connectors_networkx(graph: nx.Graph, size: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Members and ties whose removal splits a group, with bridges as (low, high) pairs."""
    import networkx as nx

    articulation = np.zeros(size, dtype=bool)
    articulation[list(nx.articulation_points(graph))] = True
    bridges = sorted((min(a, b), max(a, b)) for a, b in nx.bridges(graph))
    return articulation, bridges


def _communities_networkx(
    graph: nx.Graph, size: int, edge_count: int, cfg: MetricsConfig
) -> tuple[np.ndarray, float]:
    """Louvain partition and its weighted modularity (0 without edges, where it is undefined)."""
    import networkx as nx

    community = np.zeros(size, dtype=np.int64)
    parts = (
        nx.community.louvain_communities(
            graph, weight="weight", resolution=cfg.community_resolution, seed=cfg.seed
        )
        if size
        else []
    )
    for label, members in enumerate(parts):
        community[list(members)] = label
    modularity = (
        nx.community.modularity(graph, parts, weight="weight", resolution=cfg.community_resolution)
        if edge_count
        else 0.0
    )
    return community, float(modularity)


def _components_networkx(graph: nx.Graph, size: int) -> np.ndarray:
    import networkx as nx

    component = np.zeros(size, dtype=np.int64)
    for label, members in enumerate(nx.connected_components(graph)):
        component[list(members)] = label
    return component


def metrics_networkx(g: CoAttendanceGraph, cfg: MetricsConfig) -> NetworkMetrics:
    """The reference engine: slow but plain, to check the fast one against."""
    timings: dict[str, float] = {}
    size = g.n
    graph = g.to_networkx()
    return _assemble_metrics(
        size,
        _timed(timings, "degree", lambda: _degrees_networkx(graph, size)),
        _timed(timings, "pagerank", lambda: _pagerank_networkx(graph, size)),
        _timed(timings, "betweenness", lambda: betweenness_networkx(graph, size, cfg)),
        _timed(timings, "clustering", lambda: _clustering_networkx(graph, size)),
        _timed(timings, "core_number", lambda: _core_numbers_networkx(graph, size)),
        _timed(timings, "connectors", lambda: _connectors_networkx(graph, size)),
        _timed(timings, "communities", lambda: _communities_networkx(graph, size, g.m, cfg)),
        _timed(timings, "components", lambda: _components_networkx(graph, size)),
        "networkx",
        timings,
    )


# igraph fast engine ------------------------------------------------------------------


def betweenness_igraph(graph: Any, n: int, cfg: MetricsConfig) -> BetweennessResult:
    if n < 3:
        return BetweennessResult(np.zeros(n), "exact")
    if n <= cfg.betweenness_exact_max or cfg.betweenness_samples >= n:
        raw = np.array(graph.betweenness(directed=False))
        return BetweennessResult(raw * 2.0 / ((n - 1) * (n - 2)), "exact")
    k = cfg.betweenness_samples
    sources = sample_sources(n, k, cfg.seed)
    raw = np.array(graph.betweenness(directed=False, sources=sources, targets=None))
    scale = 2.0 * n / (k * (n - 1) * (n - 2))
    return BetweennessResult(raw * scale, "sampled", k, hoeffding_error(k))


def _degrees_igraph(graph: Any, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct members met, and tie strength summed over them."""
    degree = np.array(graph.degree(), dtype=np.int64)
    weighted = np.array(graph.strength(weights="weight"), dtype=np.float64) if size else np.zeros(0)
    return degree, weighted


def _pagerank_igraph(graph: Any, size: int) -> np.ndarray:
    if not size:
        return np.zeros(0)
    return np.array(
        graph.pagerank(directed=False, damping=0.85, weights="weight"), dtype=np.float64
    )


def _clustering_igraph(graph: Any) -> np.ndarray:
    """Zero for fewer than two neighbours, as networkx defines it."""
    return np.nan_to_num(
        np.array(graph.transitivity_local_undirected(mode="zero"), dtype=np.float64)
    )


def _connectors_igraph(
    graph: Any, coattendance: CoAttendanceGraph
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Members and ties whose removal splits a group, with bridges as (low, high) pairs."""
    articulation = np.zeros(coattendance.n, dtype=bool)
    articulation[graph.articulation_points()] = True
    # igraph keeps our edge order, so bridge ids index the src/dst arrays (src < dst).
    ids = np.array(graph.bridges(), dtype=np.int64)
    bridges = sorted(
        zip(coattendance.src[ids].tolist(), coattendance.dst[ids].tolist(), strict=True)
    )
    return articulation, bridges


def _communities_igraph(
    graph: Any, size: int, edge_count: int, cfg: MetricsConfig
) -> tuple[np.ndarray, float]:
    """Leiden partition and its weighted modularity; without edges every member stands alone."""
    import igraph as ig

    if not edge_count:
        return np.arange(size, dtype=np.int64), 0.0
    # igraph's own Leiden (C); its random numbers come from Python's `random`, so a
    # seeded generator makes runs repeatable.
    ig.set_random_number_generator(random.Random(cfg.seed))
    try:
        part = graph.community_leiden(
            objective_function="modularity",
            weights="weight",
            resolution=cfg.community_resolution,
            n_iterations=-1,
        )
    finally:
        ig.set_random_number_generator(random)
    community = np.array(part.membership, dtype=np.int64)
    modularity = float(
        graph.modularity(part.membership, weights="weight", resolution=cfg.community_resolution)
    )
    return community, modularity


def metrics_igraph(g: CoAttendanceGraph, cfg: MetricsConfig) -> NetworkMetrics:
    """The fast engine, run by default; same definitions as the networkx reference."""
    timings: dict[str, float] = {}
    size = g.n
    graph: Any = g.to_igraph()
    return _assemble_metrics(
        size,
        _timed(timings, "degree", lambda: _degrees_igraph(graph, size)),
        _timed(timings, "pagerank", lambda: _pagerank_igraph(graph, size)),
        _timed(timings, "betweenness", lambda: betweenness_igraph(graph, size, cfg)),
        _timed(timings, "clustering", lambda: _clustering_igraph(graph)),
        _timed(timings, "core_number", lambda: np.array(graph.coreness(), dtype=np.int64)),
        _timed(timings, "connectors", lambda: _connectors_igraph(graph, g)),
        _timed(timings, "communities", lambda: _communities_igraph(graph, size, g.m, cfg)),
        _timed(
            timings,
            "components",
            lambda: np.array(graph.connected_components().membership, dtype=np.int64),
        ),
        "igraph",
        timings,
    )


def compute_metrics(g: CoAttendanceGraph, cfg: MetricsConfig | None = None) -> NetworkMetrics:
    """All metrics on the configured engine (igraph by default, networkx as reference)."""
    cfg = cfg or MetricsConfig()
    if cfg.engine == "networkx":
        return metrics_networkx(g, cfg)
    return metrics_igraph(g, cfg)
