"""Co-attendance weights, network metrics on known graphs, and engine agreement."""

from __future__ import annotations

from datetime import UTC, datetime

import networkx as nx
import numpy as np
import pytest

from domain.network.coattendance import (
    Attendance,
    CoAttendanceGraph,
    WeightConfig,
    build_graph,
    from_edges,
)
from domain.network.layout import compute_layout
from domain.network.metrics import MetricsConfig, compute_metrics, hoeffding_error
from domain.network.temporal import active_months, activity_by_month, cohort_retention

END = datetime(2026, 4, 1, tzinfo=UTC)


def att(member: str, event: str, when: datetime, status: str = "attended") -> Attendance:
    return Attendance(member, event, when, status)


def from_nx(nxg: nx.Graph, weighted: bool = False) -> CoAttendanceGraph:
    members = [str(v) for v in nxg.nodes]
    edges = [
        (str(a), str(b), d.get("weight", 1.0) if weighted else 1.0)
        for a, b, d in nxg.edges(data=True)
    ]
    return from_edges(members, edges)


def test_checkin_outweighs_rsvp_and_decay_applies() -> None:
    march = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        att("a", "e1", march),
        att("b", "e1", march),
        att("c", "e1", march, "going"),
        att("d", "e1", march, "declined"),
    ]
    g = build_graph(rows, end=END, cfg=WeightConfig(monthly_decay=0.0))
    w = {(g.members[s], g.members[d]): x for s, d, x in zip(g.src, g.dst, g.weight, strict=True)}
    assert w[("a", "b")] == pytest.approx(1.0)
    assert w[("a", "c")] == pytest.approx(0.5)
    assert "d" not in g.members  # declined guests were not there
    decayed = build_graph(rows, end=END, cfg=WeightConfig(monthly_decay=0.10))
    months = (END - march).total_seconds() / 86400 / (365.25 / 12)
    assert decayed.weight.max() == pytest.approx(0.9**months)


def test_weights_sum_over_shared_events_and_windows_filter() -> None:
    jan, feb = datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 2, 10, tzinfo=UTC)
    rows = [att("a", "e1", jan), att("b", "e1", jan), att("a", "e2", feb), att("b", "e2", feb)]
    cfg = WeightConfig(monthly_decay=0.0)
    both = build_graph(rows, end=END, cfg=cfg)
    assert both.m == 1 and both.weight[0] == pytest.approx(2.0) and both.shared_events[0] == 2
    feb_only = build_graph(
        rows, start=datetime(2026, 2, 1, tzinfo=UTC), end=datetime(2026, 3, 1, tzinfo=UTC), cfg=cfg
    )
    assert feb_only.shared_events.tolist() == [1] and feb_only.events == 1


def test_star_centre_has_betweenness_one() -> None:
    g = from_nx(nx.star_graph(9))
    for engine in ("networkx", "igraph"):
        m = compute_metrics(g, MetricsConfig(engine=engine))
        centre = g.index["0"]
        assert m.betweenness.values[centre] == pytest.approx(1.0)
        assert np.allclose(np.delete(m.betweenness.values, centre), 0.0)
        assert m.articulation[centre] and m.articulation.sum() == 1
        assert len(m.bridges) == 9


def test_two_cliques_joined_by_a_bridge() -> None:
    G = nx.disjoint_union(nx.complete_graph(6), nx.complete_graph(6))
    G.add_edge(0, 6)
    g = from_nx(G)
    for engine in ("networkx", "igraph"):
        m = compute_metrics(g, MetricsConfig(engine=engine))
        assert m.bridges == [(g.index["0"], g.index["6"])]
        assert sorted(g.members[i] for i in np.flatnonzero(m.articulation)) == ["0", "6"]
        assert len(set(m.community.tolist())) == 2
        assert m.modularity == pytest.approx(
            nx.community.modularity(G, [set(range(6)), set(range(6, 12))]), abs=1e-9
        )
        assert m.core_number.max() == 5
        s = m.summary(g)
        assert s["components"] == 1 and s["density"] == pytest.approx(31 / 66)


def test_disconnected_graph_summary() -> None:
    G = nx.disjoint_union(nx.path_graph(3), nx.path_graph(2))
    g = from_edges([*map(str, G.nodes), "lonely"], [(str(a), str(b), 1.0) for a, b in G.edges])
    m = compute_metrics(g)
    s = m.summary(g)
    assert s["components"] == 3 and s["isolated_members"] == 1 and s["largest_component"] == 3
    rows = m.member_rows(g)
    assert len(rows) == 6 and all(
        set(r) >= {"pagerank", "betweenness", "core_number"} for r in rows
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_igraph_agrees_with_networkx(seed: int) -> None:
    rng = np.random.default_rng(seed)
    G = nx.planted_partition_graph(5, 40, 0.3, 0.01, seed=seed)
    G.add_nodes_from([1000])  # an isolated member
    for a, b in G.edges:
        G[a][b]["weight"] = float(rng.uniform(0.1, 3.0))
    g = from_nx(G, weighted=True)
    ref = compute_metrics(g, MetricsConfig(engine="networkx"))
    fast = compute_metrics(g, MetricsConfig(engine="igraph"))
    assert np.array_equal(ref.degree, fast.degree)
    assert np.allclose(ref.weighted_degree, fast.weighted_degree)
    assert np.allclose(ref.pagerank, fast.pagerank, atol=1e-6)  # stated tolerance
    assert np.allclose(ref.betweenness.values, fast.betweenness.values, atol=1e-9)
    assert np.allclose(ref.clustering, fast.clustering, atol=1e-12)
    assert np.array_equal(ref.core_number, fast.core_number)
    assert np.array_equal(ref.articulation, fast.articulation) and ref.bridges == fast.bridges
    assert np.array_equal(ref.component, fast.component)
    # Different heuristics (Louvain, Leiden): modularity within 0.02, same planted groups.
    assert abs(ref.modularity - fast.modularity) < 0.02
    assert adjusted_rand(ref.community, fast.community) > 0.9


def test_sampled_betweenness_matches_between_engines_and_is_within_error() -> None:
    G = nx.connected_watts_strogatz_graph(400, 6, 0.1, seed=3)
    g = from_nx(G)
    cfg = {"betweenness_exact_max": 100, "betweenness_samples": 100, "seed": 5}
    ref = compute_metrics(g, MetricsConfig(engine="networkx", **cfg))
    fast = compute_metrics(g, MetricsConfig(engine="igraph", **cfg))
    assert ref.betweenness.method == fast.betweenness.method == "sampled"
    assert np.allclose(ref.betweenness.values, fast.betweenness.values, atol=1e-9)
    exact = nx.betweenness_centrality(nx.relabel_nodes(G, {v: g.index[str(v)] for v in G}))
    err = np.abs(fast.betweenness.values - np.array([exact[i] for i in range(g.n)]))
    assert fast.betweenness.error == pytest.approx(hoeffding_error(100))
    assert np.quantile(err, 0.95) <= fast.betweenness.error


def test_layout_json_shape() -> None:
    g = from_nx(nx.karate_club_graph())
    m = compute_metrics(g)
    lay = compute_layout(g, m, max_nodes=20)
    assert len(lay["nodes"]) == 20 and lay["truncated"]
    ids = {n["id"] for n in lay["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in lay["edges"])
    assert all(0.0 <= n["x"] <= 1.0 and n["colour"].startswith("#") for n in lay["nodes"])


def test_new_returning_lapsed_and_cohorts() -> None:
    def d(month: int) -> datetime:
        return datetime(2026, month, 5, tzinfo=UTC)

    rows = [
        att("a", "e1", d(1)), att("b", "e1", d(1)),
        att("a", "e2", d(2)), att("c", "e2", d(2)),
        att("c", "e3", d(3)),
        att("b", "e4", d(5), "going"),
    ]  # fmt: skip
    active = active_months(rows)
    months = {m.month: m for m in activity_by_month(active, "2026-01", "2026-05", lapse_months=2)}
    assert (months["2026-01"].new, months["2026-01"].returning) == (2, 0)
    assert (months["2026-02"].new, months["2026-02"].returning) == (1, 1)
    assert months["2026-03"].lapsed == 1  # b: last seen January, absent two months
    assert months["2026-04"].lapsed == 1  # a: last seen February
    assert months["2026-05"].returning == 1 and months["2026-05"].lapsed == 1  # b back; c lapsed
    cohorts = {c["cohort"]: c for c in cohort_retention(active, "2026-05")}
    assert cohorts["2026-01"]["size"] == 2
    assert cohorts["2026-01"]["retention"][:2] == [1.0, 0.5]
    assert cohorts["2026-01"]["retention"][4] == 0.5


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings (no sklearn in the environment)."""
    from math import comb

    n = len(a)
    table: dict[tuple[int, int], int] = {}
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        table[(x, y)] = table.get((x, y), 0) + 1
    sum_ij = sum(comb(v, 2) for v in table.values())
    sum_a = sum(comb(int(v), 2) for v in np.bincount(a))
    sum_b = sum(comb(int(v), 2) for v in np.bincount(b))
    expected = sum_a * sum_b / comb(n, 2)
    top = (sum_a + sum_b) / 2
    return 1.0 if top == expected else (sum_ij - expected) / (top - expected)


def test_members_who_never_share_an_event_give_isolated_members_not_a_crash() -> None:
    when = datetime(2026, 1, 10, tzinfo=UTC)
    graph = build_graph([att("a", "e1", when), att("b", "e2", when)], end=END)
    assert sorted(graph.members) == ["a", "b"]
    assert graph.m == 0 and graph.events == 2
