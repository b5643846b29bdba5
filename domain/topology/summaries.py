"""Summaries of persistence diagrams, distances between snapshots, and how to read them.

- Betti curve of dimension k: how many k-dimensional features are alive at each scale.
- total persistence: sum of the finite bar lengths (how much structure, in scale units).
- persistence entropy: Shannon entropy of the finite bar lengths, normalised to sum 1
  (low: one dominant feature; high: many features of similar size).
- persistence image: the diagram (birth, persistence) smoothed by Gaussians on a fixed
  grid over a fixed range, flattened; the same length for every snapshot, so it can be
  fed to a model or compared with a plain vector distance.
- bottleneck and Wasserstein distances between consecutive monthly diagrams (finite
  bars; persim: bottleneck with L∞ ground metric, 1-Wasserstein with L2). The
  structural change score of a month is the largest per-dimension bottleneck distance:
  the biggest single feature that appeared, vanished or changed size.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np


def finite(dgm: np.ndarray) -> np.ndarray:
    dgm = np.asarray(dgm, dtype=np.float64).reshape(-1, 2)
    return dgm[np.isfinite(dgm[:, 1])]


def essential_count(dgm: np.ndarray) -> int:
    dgm = np.asarray(dgm, dtype=np.float64).reshape(-1, 2)
    return int(np.sum(~np.isfinite(dgm[:, 1])))


def total_persistence(dgm: np.ndarray) -> float:
    f = finite(dgm)
    return float(np.sum(f[:, 1] - f[:, 0]))


def persistence_entropy(dgm: np.ndarray) -> float:
    f = finite(dgm)
    lengths = f[:, 1] - f[:, 0]
    lengths = lengths[lengths > 0]
    if lengths.size == 0:
        return 0.0
    p = lengths / lengths.sum()
    return float(-np.sum(p * np.log(p)))


def scale_grid(dgms: Sequence[np.ndarray], steps: int = 64) -> np.ndarray:
    values = [v for d in dgms for v in np.asarray(d).ravel() if np.isfinite(v)]
    top = max(values) if values else 1.0
    return np.linspace(0.0, top * 1.05 if top > 0 else 1.0, steps)


def betti_curve(dgm: np.ndarray, grid: np.ndarray) -> np.ndarray:
    dgm = np.asarray(dgm, dtype=np.float64).reshape(-1, 2)
    if dgm.size == 0:
        return np.zeros(len(grid), dtype=np.int64)
    alive = (dgm[:, 0][None, :] <= grid[:, None]) & (grid[:, None] < dgm[:, 1][None, :])
    return alive.sum(axis=1).astype(np.int64)


def persistence_image(dgm: np.ndarray, max_scale: float, pixels: int = 10) -> np.ndarray:
    """A `pixels`² vector of the finite bars over birth and persistence in `[0, max_scale]`."""
    from persim import PersistenceImager

    f = finite(dgm)
    size = max_scale / pixels
    imager = PersistenceImager(
        birth_range=(0.0, max_scale),
        pers_range=(0.0, max_scale),
        pixel_size=size,
        kernel_params={"sigma": [[(size / 2) ** 2, 0.0], [0.0, (size / 2) ** 2]]},
    )
    if f.size == 0:
        return np.zeros(pixels * pixels)
    img = np.asarray(imager.transform(f, skew=True), dtype=np.float64)
    vec = np.zeros((pixels, pixels))
    h, w = min(img.shape[0], pixels), min(img.shape[1], pixels)
    vec[:h, :w] = img[:h, :w]
    return vec.ravel()


def diagram_distances(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    import persim

    fa, fb = finite(a), finite(b)
    if fa.size == 0 and fb.size == 0:
        return {"bottleneck": 0.0, "wasserstein": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "bottleneck": float(persim.bottleneck(fa, fb)),
            "wasserstein": float(persim.wasserstein(fa, fb)),
        }


def structural_change(
    previous: Sequence[np.ndarray], current: Sequence[np.ndarray]
) -> dict[str, Any]:
    dims = min(len(previous), len(current))
    per_dim = {f"H{k}": diagram_distances(previous[k], current[k]) for k in range(dims)}
    components = {
        "previous": essential_count(previous[0]) if previous else 0,
        "current": essential_count(current[0]) if current else 0,
    }
    score = max((v["bottleneck"] for v in per_dim.values()), default=0.0)
    return {"score": score, "per_dimension": per_dim, "components": components}


def summarize(dgms: Sequence[np.ndarray], image_scale: float, pixels: int = 10) -> dict[str, Any]:
    """Figures per dimension, the Betti curves on a shared grid, and the image vector."""
    grid = scale_grid(dgms)
    per_dim = []
    image: list[float] = []
    for k, d in enumerate(dgms):
        f = finite(d)
        lengths = f[:, 1] - f[:, 0]
        per_dim.append(
            {
                "dimension": k,
                "features": len(np.asarray(d).reshape(-1, 2)),
                "essential": essential_count(d),
                "total_persistence": total_persistence(d),
                "entropy": persistence_entropy(d),
                "longest": float(lengths.max()) if lengths.size else 0.0,
                "betti_curve": betti_curve(d, grid).tolist(),
            }
        )
        image.extend(persistence_image(d, image_scale, pixels).tolist())
    return {
        "grid": grid.tolist(),
        "dimensions": per_dim,
        "image": {"pixels": pixels, "scale": image_scale, "length": len(image), "values": image},
    }


def diagrams_to_json(dgms: Sequence[np.ndarray]) -> list[list[list[float | None]]]:
    """Diagrams as nested lists; infinite deaths become None (JSON has no infinity)."""
    return [
        [
            [float(b), None if not math.isfinite(d) else float(d)]
            for b, d in np.asarray(x).reshape(-1, 2)
        ]
        for x in dgms
    ]


def diagrams_from_json(raw: Sequence[Sequence[Sequence[float | None]]]) -> list[np.ndarray]:
    return [
        np.array([[b, np.inf if d is None else d] for b, d in dim], dtype=np.float64).reshape(-1, 2)
        for dim in raw
    ]


def reading(summary: dict[str, Any], change: dict[str, Any] | None = None) -> list[str]:
    """What the figures mean for an organizer, in plain words."""
    lines: list[str] = []
    dims = summary.get("dimensions", [])
    if dims:
        h0 = dims[0]
        groups = h0["essential"]
        lines.append(
            f"Groups (H0): {groups} separate group(s) never meet at any event together"
            + (
                " — everyone is connected."
                if groups == 1
                else "; introductions between them would join the community."
            )
        )
        lines.append(
            f"Cohesion: merging everyone into their groups takes {h0['total_persistence']:.2f} "
            "scale units in total; the lower, the tighter the ties."
        )
    if len(dims) > 1:
        h1 = dims[1]
        strong = h1["features"]
        lines.append(
            f"Loops (H1): {strong} ring(s) of members linked around a circle but not across it"
            + (
                f"; the most persistent spans {h1['longest']:.2f} units — a chance to introduce people across the ring."
                if strong
                else " — members' circles overlap closely."
            )
        )
        lines.append(
            f"Variety (H1 entropy {h1['entropy']:.2f}): "
            + (
                "many loops of similar size."
                if h1["entropy"] > 1.0
                else "few dominant loops, or none."
            )
        )
    if len(dims) > 2:
        h2 = dims[2]
        lines.append(
            f"Hollow shells (H2): {h2['features']} — groups that all know each other pairwise "
            "yet never gather all together; a joint event could close them."
        )
    if change is not None:
        lines.append(
            f"Structural change from last month: {change['score']:.2f} (bottleneck); "
            + (
                "the community's shape barely moved."
                if change["score"] < 0.5
                else "the shape changed noticeably."
            )
        )
    return lines
