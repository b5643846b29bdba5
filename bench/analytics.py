"""Analytics benchmark: network metrics and persistent homology beside the libraries.

Part 1, network metrics. A synthetic community (default 50,000 members, ~500,000
co-attendance edges: 250 friend groups, events of 6-30 guests drawn 85 % from one group,
two years of dates, 70 % check-ins) is built with `domain.network.coattendance`. Then,
in the same run, each metric is timed three ways:

    ours:     domain.network.metrics (the configured engine, as the pipeline runs it)
    networkx: the reference library on the same graph
    igraph:   python-igraph called directly on the same graph

Betweenness on the full size is sampled with the same k source members everywhere
(networkx: `betweenness_centrality(k=…)`, igraph: subset betweenness from the same
sources as ours). Communities: networkx Louvain, igraph multilevel (Louvain) and igraph
Leiden. Medians of `--runs` runs (networkx's slow metrics run once on the full size; the
table says so). Goal: ours within 1.5× of the fastest library.

Part 2, persistent homology. Max-min landmarks (500, 1,000, 2,000 points; `--quick`
smaller) are taken from the largest component of the same graph; the shortest-path
distance matrix among them is handed to each engine, each in a fresh process:

    ours:  domain.topology.persistence.compute_persistence (child process, bounds on)
    ripser.py, giotto-ph, GUDHI: the library on the same matrix, same threshold

for H0–H1 and H0–H2, with time and peak memory (RSS of the computing process, sampled
every 20 ms). Each library run is killed at the time budget and reported as such.
Goal: ours within 1.2× of the fastest engine.

Part 3, the largest community that finishes inside the 300 s budget: the pipeline's
steps (graph, metrics, landmarks, H0–H1) timed at growing sizes, extrapolated by a
power-law fit of the last sizes (stated as an estimate).

    .venv/bin/python -m bench.analytics [--quick] [--runs K] [--budget S]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import networkx as nx
import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.sparse.csgraph import connected_components

from domain.network.coattendance import Attendance, CoAttendanceGraph, build_graph
from domain.network.metrics import MetricsConfig, compute_metrics, sample_sources
from domain.topology.filtration import PointCloud, from_distance_matrix, point_cloud
from domain.topology.persistence import compute_persistence, enclosing_radius
from infra.bounded import POLL_SECONDS, child_context, run_bounded, tree_rss, warm_up

console = Console()
MiB = 2**20


# --- synthetic community ---------------------------------------------------------------


def synthetic_attendance(
    members: int, events: int, groups: int = 250, seed: int = 1
) -> list[Attendance]:
    rng = np.random.default_rng(seed)
    group_of = rng.integers(0, groups, members)
    by_group = [np.flatnonzero(group_of == g) for g in range(groups)]
    start = datetime(2024, 12, 1, tzinfo=UTC)
    rows: list[Attendance] = []
    for e in range(events):
        home_group = by_group[int(rng.integers(0, groups))]
        size = int(rng.integers(4, 17))
        home = rng.choice(home_group, size=min(round(size * 0.85), len(home_group)), replace=False)
        other = rng.integers(0, members, size - len(home))
        when = start + timedelta(days=float(rng.uniform(0, 730)))
        for m in {*home.tolist(), *other.tolist()}:
            status = "attended" if rng.random() < 0.7 else "going"
            rows.append(Attendance(f"m{m}", f"e{e}", when, status))
    return rows


def synthetic_graph(members: int, seed: int = 1) -> tuple[CoAttendanceGraph, float]:
    """~10 co-attendance edges per member (500,000 for 50,000), and the build time."""
    rows = synthetic_attendance(members, events=members // 5, seed=seed)
    t0 = time.perf_counter()
    g = build_graph(
        rows, end=datetime(2026, 12, 1, tzinfo=UTC), members=[f"m{i}" for i in range(members)]
    )
    return g, time.perf_counter() - t0


def timed(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --- part 1: network metrics -------------------------------------------------------------


def network_part(g: CoAttendanceGraph, runs: int, nx_runs: int, k: int) -> list[dict[str, Any]]:
    import igraph as ig
    import leidenalg

    cfg = MetricsConfig(
        engine="igraph", betweenness_exact_max=min(5000, g.n - 1), betweenness_samples=k
    )
    ours: dict[str, list[float]] = {}
    t_total = []
    for _ in range(runs):
        t0 = time.perf_counter()
        m = compute_metrics(g, cfg)
        t_total.append(time.perf_counter() - t0)
        for key, v in m.timings.items():
            ours.setdefault(key, []).append(v)
    med = {key: statistics.median(v) for key, v in ours.items()}
    t0 = time.perf_counter()
    ig_graph: Any = g.to_igraph()
    t_ig_conv = time.perf_counter() - t0
    t0 = time.perf_counter()
    nx_graph = g.to_networkx()
    t_nx_conv = time.perf_counter() - t0
    sources = sample_sources(g.n, k, cfg.seed)

    def ig_leiden() -> Any:
        ig.set_random_number_generator(random.Random(7))
        return ig_graph.community_leiden(
            objective_function="modularity", weights="weight", n_iterations=-1
        )

    igraph_fns: dict[str, Callable[[], Any]] = {
        "degree": lambda: (ig_graph.degree(), ig_graph.strength(weights="weight")),
        "pagerank": lambda: ig_graph.pagerank(directed=False, damping=0.85, weights="weight"),
        "betweenness": lambda: ig_graph.betweenness(directed=False, sources=sources, targets=None),
        "clustering": lambda: ig_graph.transitivity_local_undirected(mode="zero"),
        "core_number": lambda: ig_graph.coreness(),
        "connectors": lambda: (ig_graph.articulation_points(), ig_graph.bridges()),
        "communities": ig_leiden,
        "components": lambda: ig_graph.connected_components(),
    }
    nx_fns: dict[str, Callable[[], Any]] = {
        "degree": lambda: (dict(nx_graph.degree()), dict(nx_graph.degree(weight="weight"))),
        "pagerank": lambda: nx.pagerank(nx_graph, alpha=0.85, weight="weight"),
        "betweenness": lambda: nx.betweenness_centrality(nx_graph, k=k, seed=7),
        "clustering": lambda: nx.clustering(nx_graph),
        "core_number": lambda: nx.core_number(nx_graph),
        "connectors": lambda: (list(nx.articulation_points(nx_graph)), list(nx.bridges(nx_graph))),
        "communities": lambda: nx.community.louvain_communities(nx_graph, weight="weight", seed=7),
        "components": lambda: list(nx.connected_components(nx_graph)),
    }
    slow = {"betweenness", "communities", "clustering"}
    rows = []
    for key in igraph_fns:
        t_ig = timed(igraph_fns[key], runs)
        console.print(f"  {key}: ours {med[key]:.3f}s igraph {t_ig:.3f}s; networkx …")
        t_nx = timed(nx_fns[key], nx_runs if key in slow else runs)
        note = ""
        if key == "betweenness":
            note = f"sampled k={k} everywhere (same sources for ours and igraph; networkx draws its own k)"
        if key == "communities":
            note = "ours and igraph: Leiden (modularity); networkx: Louvain"
        if key in slow and nx_runs < runs:
            note = (note + "; " if note else "") + f"networkx: {nx_runs} run"
        rows.append(
            {"metric": key, "ours": med[key], "networkx": t_nx, "igraph": t_ig, "note": note}
        )
    t_la = timed(
        lambda: leidenalg.find_partition(
            ig_graph, leidenalg.ModularityVertexPartition, weights="weight", seed=7
        ),
        runs,
    )
    rows.append(
        {"metric": "communities (leidenalg)", "ours": med["communities"], "networkx": None,
         "igraph": t_la, "note": "leidenalg's Leiden (2 iterations) in the igraph column"}
    )  # fmt: skip
    rows.append(
        {"metric": "conversion", "ours": t_ig_conv, "networkx": t_nx_conv, "igraph": t_ig_conv,
         "note": "arrays -> igraph (ours, igraph) / -> networkx"}
    )  # fmt: skip
    rows.append(
        {"metric": "all metrics (total)", "ours": statistics.median(t_total),
         "networkx": None, "igraph": None, "note": "compute_metrics end to end, incl. conversion"}
    )  # fmt: skip
    return rows


def print_network(
    rows: list[dict[str, Any]], g: CoAttendanceGraph, build_s: float, runs: int
) -> None:
    t = Table(title=f"Network metrics: {g.n:,} members, {g.m:,} edges (medians of {runs} runs)")
    for col in ("metric", "ours s", "networkx s", "igraph s", "ours / fastest", "≤1.5×", "note"):
        t.add_column(col)
    for r in rows:
        libs = [v for v in (r["networkx"], r["igraph"]) if v is not None]
        fastest = min(libs) if libs else None
        ratio = r["ours"] / fastest if fastest else None
        t.add_row(
            r["metric"],
            f"{r['ours']:.3f}",
            "-" if r["networkx"] is None else f"{r['networkx']:.3f}",
            "-" if r["igraph"] is None else f"{r['igraph']:.3f}",
            "-" if ratio is None else f"{ratio:.2f}",
            "-" if ratio is None else ("yes" if ratio <= 1.5 else "NO"),
            r["note"],
        )
    console.print(t)
    console.print(f"graph build from {g.n:,} members' attendance (ours only): {build_s:.3f} s")


# --- part 2: persistent homology ---------------------------------------------------------


def _library_child(conn: Any, engine: str, d: np.ndarray, maxdim: int, thresh: float) -> None:
    try:
        if engine == "ripser.py":
            from ripser import ripser

            dgms = ripser(d, distance_matrix=True, maxdim=maxdim, thresh=thresh)["dgms"]
        elif engine == "giotto-ph":
            from gph import ripser_parallel

            dgms = ripser_parallel(
                d, metric="precomputed", maxdim=maxdim, thresh=thresh, n_threads=-1
            )["dgms"]
        else:
            import gudhi

            st = gudhi.RipsComplex(distance_matrix=d, max_edge_length=thresh).create_simplex_tree(
                max_dimension=maxdim + 1
            )
            st.persistence(homology_coeff_field=2, min_persistence=0)
            dgms = [st.persistence_intervals_in_dimension(k) for k in range(maxdim + 1)]
        conn.send(("ok", [len(x) for x in dgms]))
    except MemoryError:
        conn.send(("memory", None))
    finally:
        conn.close()


def run_library(engine: str, d: np.ndarray, maxdim: int, budget: float, cap: int) -> dict[str, Any]:
    """A library in a fresh child process, timed from the parent like ours (start included)."""
    ctx = child_context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_library_child, args=(child, engine, d, maxdim, enclosing_radius(d)))
    t0 = time.perf_counter()
    proc.start()
    child.close()
    peak, status, sizes = 0, "error", None
    while True:
        if parent.poll(POLL_SECONDS):
            try:
                status, sizes = parent.recv()
            except EOFError:
                status = "crashed"
            break
        peak = max(peak, tree_rss(proc.pid or 0))
        if peak > cap:
            status = "memory cap"
            break
        if time.perf_counter() - t0 > budget:
            status = "timeout"
            break
        if not proc.is_alive() and not parent.poll(0):
            status = "crashed"
            break
    seconds = time.perf_counter() - t0
    if proc.is_alive():
        proc.kill()
    proc.join(5)
    return {"status": status, "seconds": seconds, "peak": peak, "sizes": sizes}


def largest_component(g: CoAttendanceGraph) -> CoAttendanceGraph:
    _, labels = connected_components(g.adjacency(), directed=False)
    big = np.argmax(np.bincount(labels))
    keep = np.flatnonzero(labels == big)
    remap = -np.ones(g.n, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    mask = (remap[g.src] >= 0) & (remap[g.dst] >= 0)
    return CoAttendanceGraph(
        [g.members[i] for i in keep], remap[g.src[mask]], remap[g.dst[mask]], g.weight[mask],
        g.shared_events[mask], events=g.events,
    )  # fmt: skip


def ph_part(
    cloud: PointCloud, sizes: list[int], dims: list[int], budget: float, cap: int, engine: str
) -> list[dict[str, Any]]:
    rows = []
    failed: set[tuple[str, int]] = set()
    for n in sizes:
        d = np.ascontiguousarray(cloud.distances[:n, :n])
        for dim in dims:
            res = compute_persistence(
                from_distance_matrix(d),
                max_dimension=dim,
                engine=engine,
                timeout_s=budget,
                memory_bytes=cap,
                runner=run_bounded,
            )
            ours: dict[str, Any] = {
                "status": "ok" if res.complete else "reduced: " + "; ".join(res.bounds_hit)[:60],
                "seconds": res.seconds,
                "peak": res.peak_rss_bytes,
            }
            libs: dict[str, dict[str, Any]] = {}
            for lib in ("ripser.py", "giotto-ph", "gudhi"):
                if (lib, dim) in failed:
                    libs[lib] = {
                        "status": "skipped (bound hit at a smaller size)",
                        "seconds": None,
                        "peak": None,
                    }
                    continue
                libs[lib] = run_library(lib, d, dim, budget, cap)
                if libs[lib]["status"] != "ok":
                    failed.add((lib, dim))
            console.print(
                f"  {n} points H0–H{dim}: ours {ours['seconds']:.2f}s {ours['status'][:30]}; "
                + ", ".join(f"{k} {v['status']} {v['seconds'] or 0:.2f}s" for k, v in libs.items())
            )
            rows.append({"points": n, "dim": dim, "ours": ours, **libs})
    return rows


def print_ph(
    rows: list[dict[str, Any]], engine: str, budget: float, landmark_s: float, spawn_s: float
) -> None:
    t = Table(
        title=f"Persistent homology (ours: engine={engine}, bounded child process; budget {budget:.0f} s, cap 4 GiB)"
    )
    for col in (
        "points",
        "dims",
        "ours s",
        "ripser.py s",
        "giotto-ph s",
        "gudhi s",
        "ours / fastest",
        "≤1.2×",
        "peak MiB ours / ripser / giotto / gudhi",
    ):
        t.add_column(col)

    def cell(r: dict[str, Any]) -> str:
        if r["status"] == "ok":
            return f"{r['seconds']:.2f}"
        return f"{r['status']}" + (f" ({r['seconds']:.0f}s)" if r.get("seconds") else "")

    for r in rows:
        ok = [
            r[k]["seconds"] for k in ("ripser.py", "giotto-ph", "gudhi") if r[k]["status"] == "ok"
        ]
        fastest = min(ok) if ok else None
        ratio = r["ours"]["seconds"] / fastest if fastest and r["ours"]["status"] == "ok" else None
        peaks = " / ".join(
            "-" if not r[k].get("peak") else f"{r[k]['peak'] / MiB:.0f}"
            for k in ("ours", "ripser.py", "giotto-ph", "gudhi")
        )
        t.add_row(
            str(r["points"]), f"H0–H{r['dim']}", cell(r["ours"]), cell(r["ripser.py"]), cell(r["giotto-ph"]), cell(r["gudhi"]),
            "-" if ratio is None else f"{ratio:.2f}", "-" if ratio is None else ("yes" if ratio <= 1.2 else "NO"), peaks,
        )  # fmt: skip
    console.print(t)
    console.print(
        f"Landmarks (greedy max-min, shortest-path metric) for the largest size: {landmark_s:.1f} s. "
        f"Every engine is timed from the parent, including starting its process (~{spawn_s:.2f} s for an empty child)."
    )


# --- part 3: largest community inside the budget -----------------------------------------


def scaling_part(
    sizes: list[int], budget: float, engine: str, max_points: int, maxdim: int
) -> None:
    from domain.topology.report import TdaConfig, analyse_topology

    t = Table(
        title=f"Whole analysis per community size (metrics + landmarks {max_points} + H0–H{maxdim}, engine {engine})"
    )
    for col in (
        "members",
        "edges",
        "build s",
        "metrics s",
        "topology s",
        "total s",
        "topology status",
    ):
        t.add_column(col)
    xs, ys = [], []
    for n in sizes:
        g, build_s = synthetic_graph(n)
        t0 = time.perf_counter()
        compute_metrics(g, MetricsConfig(betweenness_exact_max=5000, betweenness_samples=500))
        metrics_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = analyse_topology(
            g,
            TdaConfig(max_dimension=maxdim, max_points=max_points, engine=engine, timeout_s=budget),
            run_bounded,
        )
        topo_s = time.perf_counter() - t0
        total = build_s + metrics_s + topo_s
        xs.append(n)
        ys.append(total)
        t.add_row(
            f"{n:,}",
            f"{g.m:,}",
            f"{build_s:.2f}",
            f"{metrics_s:.2f}",
            f"{topo_s:.2f}",
            f"{total:.2f}",
            rep.data["label"][:60],
        )
        console.print(f"  {n}: total {total:.1f}s")
    console.print(t)
    if len(xs) >= 2:
        slope, intercept = np.polyfit(np.log(xs[-3:]), np.log(ys[-3:]), 1)
        largest = float(np.exp((np.log(budget) - intercept) / slope))
        console.print(
            f"Power-law fit of the last sizes: time ≈ {np.exp(intercept):.3g} · n^{slope:.2f}; "
            f"estimated largest community inside {budget:.0f} s: ~{largest:,.0f} members "
            "(an extrapolation, not a measured run)."
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--engine", default="giotto", help="ours: ripser | giotto | gudhi")
    parser.add_argument(
        "--skip", default="", help="comma list of parts to skip: network,ph,scaling"
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    members = args.members or (3_000 if args.quick else 50_000)
    k = 100 if args.quick else 500
    nx_runs = args.runs if args.quick else 1
    ph_sizes = [100, 200] if args.quick else [500, 1000, 2000]
    budget = min(args.budget, 30.0) if args.quick else args.budget
    cap = 4 * 2**30

    g, build_s = synthetic_graph(members)
    console.print(f"synthetic community: {g.n:,} members, {g.m:,} edges, {g.events:,} events")
    if "network" not in skip:
        rows = network_part(g, args.runs, nx_runs, k)
        print_network(rows, g, build_s, args.runs)
    if "ph" not in skip:
        warm_up()  # start the fork server once, outside every timing
        comp = largest_component(g)
        t0 = time.perf_counter()
        cloud = point_cloud(comp, max(ph_sizes))
        landmark_s = time.perf_counter() - t0
        rows_ph = ph_part(cloud, ph_sizes, [1, 2], budget, cap, args.engine)
        print_ph(rows_ph, args.engine, budget, landmark_s, warm_up())
    if "scaling" not in skip:
        sizes = [1_000, 2_000, 4_000] if args.quick else [10_000, 25_000, 50_000, 100_000]
        scaling_part(sizes, args.budget, args.engine, 200 if args.quick else 1000, 1)


if __name__ == "__main__":
    main()
