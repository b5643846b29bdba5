"""From a co-attendance graph to a JSON-ready topology report, within the configured bounds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.network.coattendance import CoAttendanceGraph
from domain.topology.filtration import point_cloud
from domain.topology.persistence import PersistenceResult, Runner, compute_persistence, run_inline
from domain.topology.summaries import (
    diagrams_from_json,
    diagrams_to_json,
    reading,
    structural_change,
    summarize,
)

FILTRATION = (
    "Vietoris–Rips on shortest-path distance; edge length = 1 / co-attendance weight "
    "(strong ties are short); isolated members left out and counted"
)


@dataclass(frozen=True)
class TdaConfig:
    max_dimension: int = 2
    max_points: int = 1000
    engine: str = "giotto"
    timeout_s: float = 300.0
    memory_bytes: int = 4 * 2**30
    image_scale: float = 10.0
    image_pixels: int = 10


@dataclass
class TopologyReport:
    result: PersistenceResult
    data: dict[str, Any]

    @property
    def diagrams(self) -> list[np.ndarray]:
        return self.result.diagrams


def analyse_topology(
    g: CoAttendanceGraph, cfg: TdaConfig, runner: Runner = run_inline
) -> TopologyReport:
    """The report; `runner` enforces the bounds (see `compute_persistence`)."""
    cloud = point_cloud(g, cfg.max_points)
    res = compute_persistence(
        cloud,
        max_dimension=cfg.max_dimension,
        engine=cfg.engine,
        timeout_s=cfg.timeout_s,
        memory_bytes=cfg.memory_bytes,
        runner=runner,
    )
    summary = summarize(res.diagrams, cfg.image_scale, cfg.image_pixels)
    data = {
        "filtration": FILTRATION,
        "status": "complete" if res.complete else "reduced",
        "label": res.label(),
        "complete": res.complete,
        "bounds_hit": res.bounds_hit,
        "attempts": res.attempts,
        "engine": res.engine,
        "max_dimension": res.max_dimension,
        "requested_dimension": res.requested_dimension,
        "points": res.points,
        "requested_points": res.requested_points,
        "members_in_cloud": cloud.total_points,
        "isolated_members": cloud.isolated,
        "landmarks": res.landmarks,
        "seconds": round(res.seconds, 3),
        "peak_rss_bytes": res.peak_rss_bytes,
        "threshold": res.threshold,
        "diagrams": diagrams_to_json(res.diagrams),
        **summary,
    }
    data["reading"] = reading(summary)
    return TopologyReport(res, data)


def change_between(
    previous: dict[str, Any] | None, current: dict[str, Any]
) -> dict[str, Any] | None:
    """Structural change between two stored topology reports (None without a previous one)."""
    if not previous or "diagrams" not in previous:
        return None
    prev: Sequence[np.ndarray] = diagrams_from_json(previous["diagrams"])
    cur: Sequence[np.ndarray] = diagrams_from_json(current["diagrams"])
    change = structural_change(prev, cur)
    change["comparable_dimensions"] = min(len(prev), len(cur))
    return change
