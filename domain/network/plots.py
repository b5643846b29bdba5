"""PNG pictures (matplotlib, Agg) of the member graph and the persistence figures."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np


def _figure(width: float = 6.0, height: float = 5.0) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def graph_png(layout: dict[str, Any]) -> bytes:
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    where = {n["id"]: (n["x"], n["y"]) for n in layout["nodes"]}
    for e in layout["edges"][:3000]:
        (x1, y1), (x2, y2) = where[e["source"]], where[e["target"]]
        ax.plot([x1, x2], [y1, y2], color="#999999", linewidth=0.3, alpha=0.5, zorder=1)
    if layout["nodes"]:
        ax.scatter(
            [n["x"] for n in layout["nodes"]],
            [n["y"] for n in layout["nodes"]],
            s=[n["size"] ** 1.5 for n in layout["nodes"]],
            c=[n["colour"] for n in layout["nodes"]],
            edgecolors=["black" if n["connector"] else "none" for n in layout["nodes"]],
            zorder=2,
        )
    ax.set_title(
        f"Co-attendance graph ({len(layout['nodes'])} of {layout['members_total']} members; "
        "colour: community, size: PageRank, ring: connector)",
        fontsize=8,
    )
    ax.set_axis_off()
    return _png(fig)


def diagrams_png(dgms: Sequence[np.ndarray], title: str = "Persistence diagrams") -> bytes:
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    finite_vals = [v for d in dgms for v in np.asarray(d).ravel() if np.isfinite(v)]
    top = (max(finite_vals) if finite_vals else 1.0) * 1.1 or 1.0
    for k, d in enumerate(dgms):
        d = np.asarray(d).reshape(-1, 2)
        if len(d) == 0:
            continue
        deaths = np.where(np.isfinite(d[:, 1]), d[:, 1], top)
        ax.scatter(d[:, 0], deaths, s=12, label=f"H{k}", alpha=0.7)
    ax.plot([0, top], [0, top], color="black", linewidth=0.8)
    ax.axhline(top, color="grey", linestyle="--", linewidth=0.6)
    ax.set_xlabel("birth (scale)")
    ax.set_ylabel("death (scale; dashed line = never)")
    ax.set_title(title, fontsize=9)
    if any(len(np.asarray(d)) for d in dgms):  # an empty community has no points to key
        ax.legend(loc="lower right")
    return _png(fig)


def betti_png(grid: Sequence[float], curves: Sequence[Sequence[int]]) -> bytes:
    fig = _figure(6.0, 3.5)
    ax = fig.add_subplot(1, 1, 1)
    for k, curve in enumerate(curves):
        ax.step(grid, curve, where="post", label=f"β{k}")
    ax.set_xlabel("scale")
    ax.set_ylabel("features alive")
    ax.set_title("Betti curves", fontsize=9)
    if curves:
        ax.legend()
    return _png(fig)


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown with the PNG embedded, as the Dagster UI renders it."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
