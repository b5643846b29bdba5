"""A graph layout for front ends: positions, community colours and sizes by centrality.

Large graphs are cut to the `max_nodes` members with the highest PageRank (and the
edges among them, strongest first up to `max_edges`) so a browser can draw them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from domain.network.coattendance import CoAttendanceGraph
from domain.network.metrics import NetworkMetrics

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
OTHER_COLOUR = "#c7c7c7"


def community_colour(community: int) -> str:
    return PALETTE[community] if 0 <= community < len(PALETTE) else OTHER_COLOUR


def _most_central(pagerank: np.ndarray, size: int, max_nodes: int) -> np.ndarray:
    """The `max_nodes` members with the highest PageRank, back in vertex order."""
    keep = np.argsort(-pagerank, kind="stable")[: min(max_nodes, size)]
    keep.sort()
    return keep


def _edges_among(
    g: CoAttendanceGraph, position: dict[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source, target and weight of the edges whose both ends were kept."""
    mask = np.array(
        [
            source in position and target in position
            for source, target in zip(g.src, g.dst, strict=True)
        ],
        dtype=bool,
    )
    return g.src[mask], g.dst[mask], g.weight[mask]


def _unit_square_positions(
    count: int, edges: list[tuple[int, int]], weight: np.ndarray, seed: int
) -> np.ndarray:
    """Force-directed positions scaled to [0, 1] on each axis, so front ends need not rescale."""
    import igraph as ig

    graph = ig.Graph(n=count, edges=edges)
    if not count:
        return np.zeros((0, 2))
    import random

    # igraph draws its starting positions from Python's `random`: seeding it repeats a layout.
    random.seed(seed)
    coords = graph.layout_fruchterman_reingold(
        weights=weight.tolist() if len(weight) else None, niter=500, grid="auto"
    )
    xy = np.array(coords.coords, dtype=np.float64).reshape(-1, 2)
    span = np.ptp(xy, axis=0)
    return (xy - xy.min(axis=0)) / np.where(span > 0, span, 1.0)


def _node_rows(
    g: CoAttendanceGraph, metrics: NetworkMetrics, keep: np.ndarray, xy: np.ndarray
) -> list[dict[str, Any]]:
    """One drawable node per kept member, sized by PageRank relative to the most central."""
    kept_pagerank = metrics.pagerank[keep] if len(keep) else np.zeros(0)
    top = float(kept_pagerank.max()) if len(kept_pagerank) else 1.0
    return [
        {
            "id": g.members[int(vertex)],
            "x": round(float(xy[row, 0]), 5),
            "y": round(float(xy[row, 1]), 5),
            "community": int(metrics.community[vertex]),
            "colour": community_colour(int(metrics.community[vertex])),
            "size": round(4.0 + 16.0 * float(metrics.pagerank[vertex]) / top, 3)
            if top > 0
            else 4.0,
            "pagerank": float(metrics.pagerank[vertex]),
            "betweenness": float(metrics.betweenness.values[vertex]),
            "connector": bool(metrics.articulation[vertex]),
        }
        for row, vertex in enumerate(keep)
    ]


def _edge_rows(
    g: CoAttendanceGraph, src: np.ndarray, dst: np.ndarray, weight: np.ndarray, max_edges: int
) -> list[dict[str, Any]]:
    """The strongest `max_edges` ties, strongest first, named by member id."""
    strongest = np.argsort(-weight, kind="stable")[:max_edges]
    return [
        {
            "source": g.members[int(src[edge])],
            "target": g.members[int(dst[edge])],
            "weight": round(float(weight[edge]), 5),
        }
        for edge in strongest
    ]


def compute_layout(
    g: CoAttendanceGraph,
    metrics: NetworkMetrics,
    max_nodes: int = 2000,
    max_edges: int = 10000,
    seed: int = 7,
) -> dict[str, Any]:
    """Nodes and edges ready to draw, cut to what a browser can handle and labelled so."""
    size = g.n
    keep = _most_central(metrics.pagerank, size, max_nodes)
    position = {int(vertex): row for row, vertex in enumerate(keep)}
    src, dst, weight = _edges_among(g, position)
    local_edges = [
        (position[int(source)], position[int(target)])
        for source, target in zip(src, dst, strict=True)
    ]
    xy = _unit_square_positions(len(keep), local_edges, weight, seed)
    nodes = _node_rows(g, metrics, keep, xy)
    edges = _edge_rows(g, src, dst, weight, max_edges)
    return {
        "nodes": nodes,
        "edges": edges,
        "members_total": size,
        "edges_total": g.m,
        "truncated": len(keep) < size or len(edges) < g.m,
        "size_by": "pagerank",
        "colour_by": "community",
    }
