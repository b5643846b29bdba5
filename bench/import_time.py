"""What loading the code location costs: `import orchestration.definitions` in a fresh
interpreter, against `import dagster` (the floor: no code location loads faster) measured
in the same run.

Each target runs in `--runs` fresh interpreters, alternating targets so a change in the
machine's load hits all of them alike; medians of wall time and of CPU time (user + system
of the child, which other processes on a shared machine disturb less than wall time). The
goal is a wall median of at most 1.5 s on an idle machine; on a loaded one read the ratio to
the floor. `--compare DIR` times the code location of another checkout too (say, an
archive of an earlier commit), for a before/after in the same conditions.

    .venv/bin/python -m bench.import_time [--quick] [--runs N] [--compare DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.report import Figure, record
from infra.settings import PROJECT_ROOT

GOAL_SECONDS = 1.5

# name -> (python statement, checkout whose modules it imports)
Target = tuple[str, Path]


def targets(compare: Path | None) -> dict[str, Target]:
    out: dict[str, Target] = {
        "python (bare)": ("pass", PROJECT_ROOT),
        "import dagster (floor)": ("import dagster", PROJECT_ROOT),
        "import orchestration.definitions": ("import orchestration.definitions", PROJECT_ROOT),
        "load the code location (import + build)": (
            "import orchestration.definitions as d; d.defs()",
            PROJECT_ROOT,
        ),
    }
    if compare is not None:
        out["import orchestration.definitions (--compare)"] = (
            "import orchestration.definitions",
            compare,
        )
    return out


def run_once(statement: str, root: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh interpreter running `statement` in `root`."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", statement],
        cwd=root,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(chosen: dict[str, Target], runs: int) -> dict[str, tuple[float, float]]:
    walls: dict[str, list[float]] = {name: [] for name in chosen}
    cpus: dict[str, list[float]] = {name: [] for name in chosen}
    for statement, root in chosen.values():  # warm the file cache and the .pyc files
        run_once(statement, root)
    for _ in range(runs):
        for name, (statement, root) in chosen.items():
            wall, cpu = run_once(statement, root)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return {n: (statistics.median(walls[n]), statistics.median(cpus[n])) for n in chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs per target")
    parser.add_argument("--runs", type=int, default=None, help="fresh interpreters per target")
    parser.add_argument("--compare", type=Path, default=None, help="another checkout to time")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    compare = args.compare.resolve() if args.compare else None
    results = measure(targets(compare), runs)

    floor_wall, floor_cpu = results["import dagster (floor)"]
    table = Table(
        "target",
        "wall median s",
        "CPU median s",
        "wall / floor",
        "over the floor s",
        title=f"fresh interpreters, median of {runs} (load average {os.getloadavg()[0]:.1f})",
    )
    for name, (wall, cpu) in results.items():
        table.add_row(
            name,
            f"{wall:.2f}",
            f"{cpu:.2f}",
            f"{wall / floor_wall:.2f}",
            f"{wall - floor_wall:+.2f}",
        )
    Console().print(table)

    for name in [n for n in results if n.startswith(("import orchestration", "load the"))]:
        wall, cpu = results[name]
        record(
            Figure(
                bench="import_time",
                name=f"{name} (median wall s)",
                value=wall,
                unit="s",
                baseline="import dagster (median wall s)",
                baseline_value=floor_wall,
                goal=f"<= {GOAL_SECONDS} s on an idle machine",
                met=wall <= GOAL_SECONDS if "--compare" not in name else None,
            )
        )
        record(
            Figure(
                bench="import_time",
                name=f"{name} (median CPU s)",
                value=cpu,
                unit="s",
                baseline="import dagster (median CPU s)",
                baseline_value=floor_cpu,
            )
        )


if __name__ == "__main__":
    main()
