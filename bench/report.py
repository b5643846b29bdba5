"""The benchmark report: figures the benchmarks record, written to bench/RESULTS.md with
each beside its baseline (measured in the same run) and the ratio, plus the machine and
the date.

A benchmark records a figure with `record(...)`; the figures go to the JSON-lines file
named by BENCH_FIGURES (set by `community bench`), and nowhere when it is unset, so a
benchmark run by hand only prints its tables.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

ENV = "BENCH_FIGURES"


@dataclass(frozen=True)
class Figure:
    bench: str  # the module, e.g. "normalize"
    name: str  # what was measured, e.g. "luma: read+normalize (median wall s)"
    value: float
    unit: str
    baseline: str  # what it is compared with, measured in the same run
    baseline_value: float
    goal: str = ""  # e.g. "ratio <= 3"
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline_value if self.baseline_value else None


def record(figure: Figure, path: str | None = None) -> None:
    target = path or os.environ.get(ENV)
    if not target:
        return
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with Path(target).open("a", encoding="utf-8") as f:
        f.write(json.dumps(asdict(figure)) + "\n")


def load(path: Path) -> list[Figure]:
    if not path.exists():
        return []
    return [Figure(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(psutil.cpu_count(logical=True)),
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def _num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.4g}"


def render(
    figures: list[Figure],
    ran: list[str],
    failed: list[str],
    quick: bool,
    when: datetime | None = None,
    host: dict[str, str] | None = None,
) -> str:
    when = when or datetime.now(UTC)
    host = host or machine()
    lines = [
        "# Benchmark results",
        "",
        f"Written by `./run bench{' --quick' if quick else ''}` on "
        f"{when.strftime('%Y-%m-%d %H:%M UTC')}"
        + (
            " — **quick mode: small inputs, figures are a smoke run, not the measurement**."
            if quick
            else "."
        ),
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in host.items()) + ".",
        "Every figure is a median, beside its baseline measured in the same run; "
        "ratio = figure / baseline.",
        "",
    ]
    by_bench: dict[str, list[Figure]] = {}
    for f in figures:
        by_bench.setdefault(f.bench, []).append(f)
    for bench in sorted(set(ran) | set(by_bench)):
        lines.append(f"## {bench}")
        lines.append("")
        if bench in failed:
            lines.append(
                "**The benchmark failed in this run**; figures below, if any, are partial."
            )
            lines.append("")
        rows = by_bench.get(bench, [])
        if not rows:
            lines.append("No figures recorded (the benchmark prints its tables only).")
            lines.append("")
            continue
        lines.append("| figure | value | baseline | baseline value | ratio | goal | met |")
        lines.append("| --- | ---: | --- | ---: | ---: | --- | --- |")
        for f in rows:
            ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
            met = "-" if f.met is None else ("yes" if f.met else "**no**")
            lines.append(
                f"| {f.name} | {_num(f.value)} {f.unit} | {f.baseline} | "
                f"{_num(f.baseline_value)} {f.unit} | {ratio} | {f.goal or '-'} | {met} |"
            )
        lines.append("")
    return "\n".join(lines)


def write(
    path: Path, figures: list[Figure], ran: list[str], failed: list[str], quick: bool
) -> Path:
    path.write_text(render(figures, ran, failed, quick))
    return path
