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


def compute_layout(
    g: CoAttendanceGraph,
    metrics: NetworkMetrics,
    max_nodes: int = 2000,
    max_edges: int = 10000,
    seed: int = 7,
) -> dict[str, Any]:
    import igraph as ig

    n = g.n
    keep = np.argsort(-metrics.pagerank, kind="stable")[: min(max_nodes, n)]
    keep.sort()
    pos = {int(v): i for i, v in enumerate(keep)}
    mask = np.array([s in pos and d in pos for s, d in zip(g.src, g.dst, strict=True)], dtype=bool)
    src, dst, w = g.src[mask], g.dst[mask], g.weight[mask]
    sub = ig.Graph(
        n=len(keep), edges=[(pos[int(a)], pos[int(b)]) for a, b in zip(src, dst, strict=True)]
    )
    if len(keep):
        import random

        random.seed(seed)
        coords = sub.layout_fruchterman_reingold(
            weights=w.tolist() if len(w) else None, niter=500, grid="auto"
        )
        xy = np.array(coords.coords, dtype=np.float64).reshape(-1, 2)
        span = np.ptp(xy, axis=0)
        xy = (xy - xy.min(axis=0)) / np.where(span > 0, span, 1.0)
    else:
        xy = np.zeros((0, 2))
    pr = metrics.pagerank[keep] if len(keep) else np.zeros(0)
    top = float(pr.max()) if len(pr) else 1.0
    nodes = [
        {
            "id": g.members[int(v)],
            "x": round(float(xy[i, 0]), 5),
            "y": round(float(xy[i, 1]), 5),
            "community": int(metrics.community[v]),
            "colour": community_colour(int(metrics.community[v])),
            "size": round(4.0 + 16.0 * float(metrics.pagerank[v]) / top, 3) if top > 0 else 4.0,
            "pagerank": float(metrics.pagerank[v]),
            "betweenness": float(metrics.betweenness.values[v]),
            "connector": bool(metrics.articulation[v]),
        }
        for i, v in enumerate(keep)
    ]
    order = np.argsort(-w, kind="stable")[:max_edges]
    edges = [
        {
            "source": g.members[int(src[e])],
            "target": g.members[int(dst[e])],
            "weight": round(float(w[e]), 5),
        }
        for e in order
    ]
    return {
        "nodes": nodes,
        "edges": edges,
        "members_total": n,
        "edges_total": g.m,
        "truncated": len(keep) < n or len(edges) < g.m,
        "size_by": "pagerank",
        "colour_by": "community",
    }
