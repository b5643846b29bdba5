"""Persistence diagrams under a time budget and memory cap.

Each Rips computation is one attempt handed to a runner. The pipeline passes
`infra.bounded.run_bounded`, which runs it in a child process and kills it when it
passes the memory cap or its share of the time budget; this module only plans the
attempts and reads their outcomes, so it stays pure. A run that hits a bound is
retried smaller — first dropping the highest homology dimension, then halving the
landmarks (a prefix of the max-min order) — and the last resort is H0 alone from the minimum spanning tree, computed in-process in
milliseconds (H0 of a Rips filtration is exactly single linkage). Whatever comes back
says what was computed and which bound was hit: never a crash, never a silent partial.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from domain.topology.filtration import PointCloud

FIRST_ATTEMPT_SHARE = 0.7

# (status, payload, seconds, peak RSS bytes); status "ok" (payload: the diagrams),
# "memory", "timeout" or "error" (payload: why).
Attempt = tuple[str, Any, float, int]


class Runner(Protocol):
    """Runs one attempt, `fn(*args)`, within `timeout_s` and `memory_bytes` if it can."""

    def __call__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float, memory_bytes: int
    ) -> Attempt: ...


@dataclass
class PersistenceResult:
    diagrams: list[np.ndarray]  # per dimension, (k, 2) birth/death, death may be inf
    max_dimension: int  # highest dimension computed
    requested_dimension: int
    points: int  # points in the computed filtration
    requested_points: int
    landmarks: bool
    engine: str
    complete: bool  # False when a bound forced a smaller result
    bounds_hit: list[str] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    threshold: float = float("inf")

    def label(self) -> str:
        if self.complete:
            return f"complete: H0–H{self.max_dimension} on {self.points} points"
        return (
            f"reduced: H0–H{self.max_dimension} on {self.points} of {self.requested_points} "
            f"points (asked H0–H{self.requested_dimension}); " + "; ".join(self.bounds_hit)
        )


def finite_threshold(distances: np.ndarray) -> float:
    finite = distances[np.isfinite(distances)]
    return float(finite.max()) if finite.size else 0.0


def enclosing_radius(distances: np.ndarray) -> float:
    """min over points of the farthest distance: the Rips complex is a cone from there on.

    A cone is contractible, so every finite class has died by this scale; computing past
    it (as a threshold at the diameter would) only adds work, never bars.
    """
    return float(distances.max(axis=1).min()) if distances.size else 0.0


def components_of(distances: np.ndarray) -> list[np.ndarray]:
    """Index sets of the blocks of mutually finite distance (graph components)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    finite_mask = np.isfinite(distances)
    if finite_mask.all():
        return [np.arange(distances.shape[0])]
    count, labels = connected_components(csr_matrix(finite_mask), directed=False)
    return [np.flatnonzero(labels == c) for c in range(count)]


def engine_diagrams(engine: str, d: np.ndarray, maxdim: int, thresh: float) -> list[np.ndarray]:
    """One engine on one finite distance matrix, Rips up to `thresh`."""
    if engine == "ripser":
        from ripser import ripser

        dgms = ripser(d, distance_matrix=True, maxdim=maxdim, thresh=thresh)["dgms"]
    elif engine == "giotto":
        from gph import ripser_parallel

        dgms = ripser_parallel(d, metric="precomputed", maxdim=maxdim, thresh=thresh, n_threads=-1)[
            "dgms"
        ]
    elif engine == "gudhi":
        import gudhi

        rips = gudhi.RipsComplex(distance_matrix=d, max_edge_length=thresh)
        st = rips.create_simplex_tree(max_dimension=maxdim + 1)
        st.persistence(homology_coeff_field=2, min_persistence=0)
        dgms = [st.persistence_intervals_in_dimension(k) for k in range(maxdim + 1)]
    else:
        raise ValueError(f"unknown persistence engine {engine!r}")
    out = []
    for k in range(maxdim + 1):
        arr = (
            np.asarray(dgms[k], dtype=np.float64).reshape(-1, 2)
            if k < len(dgms)
            else np.zeros((0, 2))
        )
        out.append(arr)
    return out


def run_engine(engine: str, distances: np.ndarray, maxdim: int) -> list[np.ndarray]:
    """Rips persistence of a distance matrix on one engine; diagrams for dims 0..maxdim.

    Each component (block of finite distances) is computed on its own up to its
    enclosing radius; the diagram of a disjoint union is the union of the diagrams.
    """
    parts: list[list[np.ndarray]] = [[] for _ in range(maxdim + 1)]
    for idx in components_of(distances):
        if len(idx) == 1:
            parts[0].append(np.array([[0.0, np.inf]]))
            continue
        sub = np.ascontiguousarray(distances[np.ix_(idx, idx)])
        for k, dgm in enumerate(engine_diagrams(engine, sub, maxdim, enclosing_radius(sub))):
            parts[k].append(dgm)
    result = []
    for k in range(maxdim + 1):
        arr = np.vstack(parts[k]) if parts[k] else np.zeros((0, 2))
        # Drop zero-length bars (some engines report them); they carry no information.
        result.append(arr[arr[:, 1] > arr[:, 0]])
    return result


def engine_available(engine: str) -> bool:
    """Whether the engine's package is installed (found, not imported: imports are slow)."""
    from importlib.util import find_spec

    module = {"ripser": "ripser", "giotto": "gph", "gudhi": "gudhi"}.get(engine)
    return module is not None and find_spec(module) is not None


def h0_from_mst(distances: np.ndarray) -> np.ndarray:
    """H0 diagram from the minimum spanning forest: one bar per merge, inf per component."""
    from scipy.sparse.csgraph import minimum_spanning_tree

    n = distances.shape[0]
    if n == 0:
        return np.zeros((0, 2))
    d = np.where(np.isfinite(distances), distances, 0.0)
    # csgraph treats 0 as "no edge"; nudge true zero distances between distinct points.
    tiny = np.finfo(np.float64).tiny
    d = np.where((d == 0) & np.isfinite(distances) & ~np.eye(n, dtype=bool), tiny, d)
    mst = minimum_spanning_tree(d).tocoo()
    deaths = np.sort(np.where(mst.data == tiny, 0.0, mst.data))
    components = n - len(deaths)
    bars = [[0.0, float(x)] for x in deaths if x > 0] + [[0.0, np.inf]] * components
    return np.array(bars, dtype=np.float64).reshape(-1, 2)


def run_inline(
    fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float, memory_bytes: int
) -> Attempt:
    """`fn(*args)` in this process, unbounded: the default for tests and small inputs.

    Same statuses as the supervised runner, so the caller degrades the same way; the
    bounds are not enforced (nothing can stop a computation from inside its own process).
    """
    start = time.perf_counter()
    try:
        status, payload = "ok", fn(*args)
    except MemoryError:
        status, payload = "memory", "MemoryError in the computation"
    except Exception as exc:  # reported like a failed child: the caller degrades and labels
        status, payload = "error", f"{type(exc).__name__}: {exc}"
    return status, payload, time.perf_counter() - start, 0


def plan(points: int, maxdim: int, min_points: int = 16) -> list[tuple[int, int]]:
    """Attempts from largest to smallest: lower dimension first, then fewer points."""
    steps = [(points, d) for d in range(maxdim, 0, -1)]
    k = points // 2
    while k >= min_points:
        steps.append((k, 1))
        k //= 2
    return steps


@dataclass
class _Run:
    """What one call has learned so far, so every way out reports it the same way."""

    cloud: PointCloud
    requested_dimension: int
    engine: str
    began: float
    bounds: list[str]
    attempts: list[dict[str, Any]] = field(default_factory=list)
    peak_rss_bytes: int = 0

    def result(
        self, diagrams: list[np.ndarray], points: int, dimension: int, complete: bool
    ) -> PersistenceResult:
        """The outcome; a complete run does not list the engine fallback as a bound hit."""
        requested_points = self.cloud.size
        return PersistenceResult(
            diagrams=diagrams,
            max_dimension=dimension,
            requested_dimension=self.requested_dimension,
            points=points,
            requested_points=requested_points,
            landmarks=self.cloud.landmarks or points < requested_points,
            engine=self.engine,
            complete=complete,
            bounds_hit=(
                [bound for bound in self.bounds if not bound.startswith("engine")]
                if complete
                else self.bounds
            ),
            attempts=self.attempts,
            seconds=time.perf_counter() - self.began,
            peak_rss_bytes=self.peak_rss_bytes,
            threshold=finite_threshold(self.cloud.distances[:points, :points]),
        )


def _start_run(cloud: PointCloud, max_dimension: int, engine: str) -> _Run:
    """Falls back to ripser when the asked engine is missing, and says so."""
    began = time.perf_counter()
    used_engine = engine if engine_available(engine) else "ripser"
    bounds = [] if used_engine == engine else [f"engine {engine!r} not installed; used ripser"]
    return _Run(cloud, max_dimension, used_engine, began, bounds)


def _h0_by_mst(run: _Run, dimension: int) -> np.ndarray:
    """Exact H0 of every point in milliseconds, recorded as an attempt like the others."""
    diagram = h0_from_mst(run.cloud.distances)
    run.attempts.append(
        {"points": run.cloud.size, "dimension": dimension, "status": "ok", "method": "mst"}
    )
    return diagram


def _attempt(
    run: _Run, runner: Runner, points: int, dimension: int, timeout_s: float, memory_bytes: int
) -> list[np.ndarray] | None:
    """One bounded Rips attempt: its diagrams, or None with the bound it hit recorded."""
    status, payload, seconds, rss = runner(
        run_engine,
        (run.engine, run.cloud.distances[:points, :points], dimension),
        timeout_s,
        memory_bytes,
    )
    run.peak_rss_bytes = max(run.peak_rss_bytes, rss)
    run.attempts.append(
        {
            "points": points,
            "dimension": dimension,
            "status": status,
            "seconds": round(seconds, 3),
            "peak_rss_bytes": rss,
            "detail": None if status == "ok" else str(payload),
        }
    )
    if status == "ok":
        return list(payload)
    run.bounds.append(f"{status} at {points} points, H0–H{dimension}: {payload}")
    return None


def _attempt_share(remaining: float, index: int) -> float:
    """The first (full) attempt gets most of the budget; each retry half of what is left."""
    return remaining * FIRST_ATTEMPT_SHARE if index == 0 else remaining * 0.5


def compute_persistence(
    cloud: PointCloud,
    max_dimension: int = 1,
    engine: str = "ripser",
    timeout_s: float = 300.0,
    memory_bytes: int = 4 * 2**30,
    runner: Runner = run_inline,
) -> PersistenceResult:
    """Diagrams H0..H`max_dimension` of the cloud within the bounds, or a labelled smaller result.

    The bounds hold only under a supervising runner (`infra.bounded.run_bounded`, which the
    pipeline passes); the in-process default keeps this module pure and tests fast.
    """
    if not 0 <= max_dimension <= 3:
        raise ValueError("max_dimension must be between 0 and 3")
    run = _start_run(cloud, max_dimension, engine)
    size = cloud.size
    if max_dimension == 0 or size < 2:
        higher = [np.zeros((0, 2)) for _ in range(max_dimension)]
        return run.result([_h0_by_mst(run, max_dimension), *higher], size, max_dimension, True)
    for index, (points, dimension) in enumerate(plan(size, max_dimension)):
        remaining = timeout_s - (time.perf_counter() - run.began)
        if remaining <= 0.05:
            run.bounds.append(
                f"timeout: time budget {timeout_s:.2f} s spent before {points} points, "
                f"H0–H{dimension}"
            )
            break
        share = _attempt_share(remaining, index)
        diagrams = _attempt(run, runner, points, dimension, share, memory_bytes)
        if diagrams is not None:
            complete = points == size and dimension == max_dimension
            return run.result(diagrams, points, dimension, complete)
    # Last resort: exact H0 of every point, from the minimum spanning tree.
    return run.result([_h0_by_mst(run, 0)], size, 0, False)
