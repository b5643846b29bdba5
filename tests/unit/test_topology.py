"""Persistent homology on graphs with known answers, bounds, summaries and distances."""

from __future__ import annotations

import warnings
from typing import Any

import networkx as nx
import numpy as np
import pytest

from domain.network.coattendance import CoAttendanceGraph, from_edges
from domain.topology.filtration import from_distance_matrix, point_cloud
from domain.topology.persistence import compute_persistence, h0_from_mst, plan, run_engine
from domain.topology.summaries import (
    betti_curve,
    diagrams_from_json,
    diagrams_to_json,
    persistence_entropy,
    reading,
    structural_change,
    summarize,
    total_persistence,
)
from infra.bounded import run_bounded, warm_up


def graph_of(nxg: nx.Graph) -> CoAttendanceGraph:
    return from_edges([str(v) for v in nxg.nodes], [(str(a), str(b), 1.0) for a, b in nxg.edges])


def long_lived(dgm: np.ndarray, min_life: float) -> int:
    return int(np.sum((dgm[:, 1] - dgm[:, 0]) >= min_life))


def test_cycle_has_exactly_one_long_lived_loop() -> None:
    cloud = point_cloud(graph_of(nx.cycle_graph(12)), max_points=100)
    res = compute_persistence(cloud, max_dimension=1, timeout_s=60)
    assert res.complete and res.max_dimension == 1
    h1 = res.diagrams[1]
    assert long_lived(h1, 1.0) == 1
    assert h1[0, 0] == pytest.approx(1.0) and h1[0, 1] == pytest.approx(4.0)  # C12: [1, n/3)
    assert int(np.sum(np.isinf(res.diagrams[0][:, 1]))) == 1


def test_complete_graph_has_no_loops() -> None:
    cloud = point_cloud(graph_of(nx.complete_graph(10)), max_points=100)
    res = compute_persistence(cloud, max_dimension=2, timeout_s=60)
    assert res.complete
    assert len(res.diagrams[1]) == 0 and len(res.diagrams[2]) == 0


def test_two_disconnected_cliques_give_two_infinite_h0_classes() -> None:
    G = nx.disjoint_union(nx.complete_graph(5), nx.complete_graph(7))
    cloud = point_cloud(graph_of(G), max_points=100)
    res = compute_persistence(cloud, max_dimension=1, timeout_s=60)
    h0 = res.diagrams[0]
    assert int(np.sum(np.isinf(h0[:, 1]))) == 2
    assert len(res.diagrams[1]) == 0
    assert np.allclose(np.sort(h0_from_mst(cloud.distances), axis=0), np.sort(h0, axis=0))


def test_isolated_members_are_counted_not_clouded() -> None:
    g = from_edges(["a", "b", "c", "alone"], [("a", "b", 1.0), ("b", "c", 2.0)])
    cloud = point_cloud(g, max_points=10)
    assert cloud.size == 3 and cloud.isolated == 1
    assert cloud.distances.max() == pytest.approx(1.5)  # a to c via b: 1/1 + 1/2


def test_landmarks_above_threshold_cover_the_cycle() -> None:
    cloud = point_cloud(graph_of(nx.cycle_graph(200)), max_points=40)
    assert cloud.landmarks and cloud.size == 40 and cloud.total_points == 200
    res = compute_persistence(cloud, max_dimension=1, timeout_s=60)
    assert long_lived(res.diagrams[1], 20.0) == 1
    assert not res.complete or res.landmarks


def test_engines_agree_on_the_same_matrix() -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(60, 3))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    ref = run_engine("ripser", d, 2)
    for engine in ("giotto", "gudhi"):
        other = run_engine(engine, d, 2)
        for k in range(3):
            a = np.sort(ref[k], axis=0)
            b = np.sort(other[k], axis=0)
            assert a.shape == b.shape
            assert np.allclose(a, b, atol=1e-6)


@pytest.fixture(scope="module")
def fork_server() -> None:
    """The bounded runner's fork server, started before a test times a budget."""
    warm_up()


@pytest.mark.usefixtures("fork_server")
def test_timeout_returns_a_labelled_smaller_result() -> None:
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(400, 4))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    res = compute_persistence(
        from_distance_matrix(d), max_dimension=3, timeout_s=3.0, runner=run_bounded
    )
    assert not res.complete
    assert res.max_dimension < 3 or res.points < 400
    assert any("timeout" in b for b in res.bounds_hit)
    assert "reduced" in res.label()
    assert len(res.diagrams[0]) > 0
    assert res.seconds < 3.0 + 2.0  # the budget holds, plus kill and cleanup


@pytest.mark.usefixtures("fork_server")
def test_memory_cap_returns_a_labelled_smaller_result() -> None:
    rng = np.random.default_rng(2)
    d = np.linalg.norm(
        rng.normal(size=(100, 2))[:, None] - rng.normal(size=(100, 2))[None], axis=-1
    )
    d = np.minimum(d, d.T)
    np.fill_diagonal(d, 0.0)
    res = compute_persistence(
        from_distance_matrix(d), max_dimension=1, memory_bytes=1, timeout_s=60, runner=run_bounded
    )
    assert not res.complete and res.max_dimension == 0
    assert all("memory" in b for b in res.bounds_hit)
    assert len(res.diagrams) == 1 and len(res.diagrams[0]) == 100  # exact H0 from the MST
    assert int(np.sum(np.isinf(res.diagrams[0][:, 1]))) == 1


def test_inline_and_supervised_runners_give_the_same_diagrams() -> None:
    cloud = point_cloud(graph_of(nx.cycle_graph(30)), max_points=100)
    inline = compute_persistence(cloud, max_dimension=1, timeout_s=60)
    bounded = compute_persistence(cloud, max_dimension=1, timeout_s=60, runner=run_bounded)
    assert inline.complete and bounded.complete
    for k in range(2):
        a, b = np.sort(inline.diagrams[k], axis=0), np.sort(bounded.diagrams[k], axis=0)
        assert a.shape == b.shape and np.allclose(a, b)
    assert inline.peak_rss_bytes == 0 < bounded.peak_rss_bytes  # only the child is measured


def test_failed_attempts_from_any_runner_degrade_to_a_labelled_h0() -> None:
    calls: list[tuple[int, float]] = []

    def failing(fn: Any, args: tuple[Any, ...], timeout_s: float, memory_bytes: int) -> Any:
        calls.append((args[1].shape[0], timeout_s))
        return "error", "engine crashed", 0.01, 0

    cloud = point_cloud(graph_of(nx.cycle_graph(40)), max_points=100)
    res = compute_persistence(cloud, max_dimension=1, timeout_s=60, runner=failing)
    assert [n for n, _ in calls] == [40, 20]  # H1 on all points, then half of them
    assert not res.complete and res.max_dimension == 0 and len(res.diagrams) == 1
    assert all("engine crashed" in b for b in res.bounds_hit)
    assert int(np.sum(np.isinf(res.diagrams[0][:, 1]))) == 1


def test_plan_shrinks_dimension_then_points() -> None:
    assert plan(100, 3) == [(100, 3), (100, 2), (100, 1), (50, 1), (25, 1)]


def test_summaries_on_a_known_diagram() -> None:
    dgms = [np.array([[0.0, 1.0], [0.0, 3.0], [0.0, np.inf]]), np.array([[1.0, 2.0], [1.0, 2.0]])]
    assert total_persistence(dgms[0]) == pytest.approx(4.0)
    assert persistence_entropy(dgms[1]) == pytest.approx(np.log(2))
    grid = np.array([0.0, 0.5, 1.5, 2.5, 5.0])
    assert betti_curve(dgms[0], grid).tolist() == [3, 3, 2, 2, 1]
    assert betti_curve(dgms[1], grid).tolist() == [0, 0, 2, 0, 0]
    s = summarize(dgms, image_scale=4.0, pixels=8)
    assert s["image"]["length"] == 2 * 64 and any(v > 0 for v in s["image"]["values"])
    again = summarize([dgms[0], np.zeros((0, 2))], image_scale=4.0, pixels=8)
    assert again["image"]["length"] == s["image"]["length"]  # fixed length
    assert s["dimensions"][0]["essential"] == 1
    assert diagrams_from_json(diagrams_to_json(dgms))[0][2, 1] == np.inf
    text = reading(s)
    assert any("H0" in line for line in text) and any("H1" in line for line in text)


def test_structural_change_is_zero_for_same_and_grows_with_difference() -> None:
    a = [np.array([[0.0, 1.0], [0.0, np.inf]]), np.array([[1.0, 4.0]])]
    b = [np.array([[0.0, 1.0], [0.0, np.inf]]), np.zeros((0, 2))]
    assert structural_change(a, a)["score"] == pytest.approx(0.0)
    change = structural_change(a, b)
    assert change["score"] == pytest.approx(1.5)  # the loop [1, 4] vanished: (4-1)/2
    assert change["per_dimension"]["H1"]["wasserstein"] > 0


def test_empty_and_tiny_graphs_go_through_every_step() -> None:
    from domain.network.layout import compute_layout
    from domain.network.metrics import compute_metrics
    from domain.network.plots import betti_png, diagrams_png, graph_png
    from domain.topology.report import TdaConfig, analyse_topology

    for g in (
        from_edges([], []),
        from_edges(["solo"], []),
        from_edges(["a", "b"], [("a", "b", 2.0)]),
    ):
        m = compute_metrics(g)
        assert m.summary(g)["members"] == g.n
        lay = compute_layout(g, m)
        rep = analyse_topology(g, TdaConfig(max_dimension=2, timeout_s=30))
        assert rep.data["complete"] and len(rep.data["dimensions"]) == 3
        assert rep.data["dimensions"][0]["essential"] == (1 if g.m else 0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. a legend with nothing to key
            pngs = (
                graph_png(lay),
                diagrams_png(rep.diagrams),
                betti_png(rep.data["grid"], [[0] * len(rep.data["grid"])]),
                betti_png(rep.data["grid"], []),
            )
        for png in pngs:
            assert png.startswith(b"\x89PNG")
