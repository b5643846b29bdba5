"""Community-level views: the groups found, who anchors each, and the connectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from domain.network.coattendance import CoAttendanceGraph
from domain.network.metrics import NetworkMetrics


def communities_report(
    g: CoAttendanceGraph, m: NetworkMetrics, top: int = 5, max_listed: int = 200
) -> list[dict[str, Any]]:
    """Communities by size, each with internal density and its most central members."""
    out: list[dict[str, Any]] = []
    if g.n == 0:
        return out
    labels = m.community
    internal = np.zeros(labels.max() + 1, dtype=np.int64)
    same = labels[g.src] == labels[g.dst]
    np.add.at(internal, labels[g.src][same], 1)
    for c in range(min(labels.max() + 1, max_listed)):
        members = np.flatnonzero(labels == c)
        if len(members) == 0:
            continue
        order = members[np.argsort(-m.pagerank[members], kind="stable")]
        size = len(members)
        out.append(
            {
                "community": c,
                "size": size,
                "internal_edges": int(internal[c]),
                "density": 0.0 if size < 2 else 2.0 * internal[c] / (size * (size - 1)),
                "top_members": [g.members[int(i)] for i in order[:top]],
                "connectors": [g.members[int(i)] for i in members if m.articulation[i]][:top],
            }
        )
    return out
