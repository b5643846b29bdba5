"""An erased member leaves no trace in the stored graph layout: neither its node nor the
edges that name it at either end."""

from __future__ import annotations

from typing import Any

from api.routes.admin import _without_edges_of
from infra import erasure
from infra.documents import LayoutDocument


def _layout() -> dict[str, Any]:
    node = {"x": 0.5, "y": 0.5, "community": 0, "colour": "#1f77b4", "size": 4.0}
    metrics = {"pagerank": 0.1, "betweenness": 0.0, "connector": False}
    return {
        "schema_version": 1,
        "nodes": [{"id": member, **node, **metrics} for member in ("mem_a", "mem_b", "mem_c")],
        "edges": [
            {"source": "mem_a", "target": "mem_b", "weight": 1.0},
            {"source": "mem_c", "target": "mem_a", "weight": 2.0},
            {"source": "mem_b", "target": "mem_c", "weight": 3.0},
        ],
        "members_total": 3,
        "edges_total": 3,
        "truncated": False,
        "size_by": "pagerank",
        "colour_by": "community",
    }


def test_erasure_removes_the_members_node_and_edges_from_the_layout() -> None:
    scrubbed = _without_edges_of(erasure.scrub_document(_layout(), "mem_a"), "mem_a")
    assert "mem_a" not in repr(scrubbed)
    assert [node["id"] for node in scrubbed["nodes"]] == ["mem_b", "mem_c"]
    assert scrubbed["edges"] == [{"source": "mem_b", "target": "mem_c", "weight": 3.0}]
    LayoutDocument.model_validate(scrubbed)  # still a readable document


def test_other_documents_are_left_as_they_are() -> None:
    summary = {"edges": 12, "members": 3}
    assert _without_edges_of(dict(summary), "mem_a") == summary
