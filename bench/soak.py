"""Soak: the API under steady load while a full pipeline run writes to the same Neo4j.

    python -m bench.soak [--seconds 300] [--rate 20] [--quick]

Starts the API (uvicorn, loopback, dev tokens) and, after a quiet baseline period, a full
`refresh_all` run (the platform fakes are started when the settings point at them). A
fixed number of client threads send requests at a steady total rate to a mix of read
endpoints. Reports, per 30-second window: requests, errors other than planned 429s (goal
0), p50 and p99; the API's p99 during the pipeline against the quiet baseline's p99 (same
run); and the resident memory of the API, the pipeline, Neo4j and Redis at start, peak and
end (goal: flat). Services must be up. Loopback only; every loop is bounded by a deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from bench.report import Figure, record
from infra.settings import PROJECT_ROOT, get_settings

ROUTES = ("/v1/events?limit=20", "/v1/members?limit=20", "/v1/analytics/summary", "/health")
WINDOW = 30.0


@dataclass
class Samples:
    lock: threading.Lock = field(default_factory=threading.Lock)
    rows: list[tuple[float, float, int]] = field(default_factory=list)  # (t, ms, status)
    memory: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 2**20


def _pid_from(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="load duration")
    parser.add_argument("--baseline", type=float, default=30.0, help="quiet seconds first")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="60 s with a 15 s baseline")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.baseline = 60.0, 15.0
    console = Console(width=160)
    settings = get_settings()
    port = _free_port()
    # One client address sends everything: the per-caller limit is set to twice the
    # rate (429s stay possible in bursts, planned) and address blocking off.
    env = {
        **os.environ,
        "AUTH_MODE": "dev",
        "API_HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PER_MINUTE": str(int(args.rate * 60 * 2)),
        "IP_BLOCK_THRESHOLD": "1000000",
    }
    from api.auth import mint_dev_token
    from cli.imports import start_fakes
    from cli.main import dagster_env
    from orchestration.definitions import refresh_tags

    token = mint_dev_token(settings, "soak", "organizer", 3600)
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        start_new_session=True,
    )
    fakes = start_fakes(settings)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code in (200, 503):
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    samples = Samples()
    start = time.monotonic()
    stop_at = start + args.baseline + args.seconds
    pipeline: subprocess.Popen[bytes] | None = None
    pipeline_started: float | None = None
    pipeline_ended: float | None = None

    def client(k: int) -> None:
        interval = args.threads / args.rate
        next_at = time.monotonic() + k * interval / args.threads
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            i = k
            while (now := time.monotonic()) < stop_at:
                if now < next_at:
                    time.sleep(min(next_at - now, 0.5))
                    continue
                route = ROUTES[i % len(ROUTES)]
                i += 1
                t0 = time.perf_counter()
                try:
                    status = http.get(route).status_code
                except httpx.HTTPError:
                    status = 599
                ms = (time.perf_counter() - t0) * 1000
                with samples.lock:
                    samples.rows.append((now - start, ms, status))
                next_at += interval

    workers = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(args.threads)]
    for w in workers:
        w.start()
    neo_pid = _pid_from(settings.state_path / "neo4j" / "run" / "neo4j.pid")
    redis_pid = _pid_from(settings.state_path / "redis" / "redis.pid")
    try:
        while (now := time.monotonic()) < stop_at:
            t = now - start
            if pipeline is None and t >= args.baseline:
                pipeline = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "dagster"),
                        "job",
                        "execute",
                        "-m",
                        "orchestration.definitions",
                        "-j",
                        "refresh_all",
                        "--tags",
                        json.dumps(refresh_tags(settings)),
                    ],
                    cwd=PROJECT_ROOT,
                    env=dagster_env(settings),
                    start_new_session=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                pipeline_started = t
            if pipeline is not None and pipeline.poll() is not None and pipeline_ended is None:
                pipeline_ended = t
            for name, pid in (
                ("api", api.pid),
                ("pipeline", pipeline.pid if pipeline else None),
                ("neo4j", neo_pid),
                ("redis", redis_pid),
            ):
                if pid:
                    samples.memory[name].append((t, _rss_mb(pid)))
            time.sleep(5.0)
    finally:
        for w in workers:
            w.join(timeout=15)
        for proc in (pipeline, api, fakes):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, 15)
                proc.wait(timeout=30)
    report(console, samples, args.baseline, pipeline_started, pipeline_ended, pipeline)


def report(
    console: Console,
    samples: Samples,
    baseline: float,
    pipeline_started: float | None,
    pipeline_ended: float | None,
    pipeline: subprocess.Popen[bytes] | None,
) -> None:
    windows: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for t, ms, status in samples.rows:
        windows[int(t // WINDOW)].append((ms, status))
    table = Table(title="API under load (windows of 30 s)")
    for col in ("window", "pipeline", "requests", "429", "errors", "p50 ms", "p99 ms"):
        table.add_column(col, justify="right")
    errors_total = 0
    for w in sorted(windows):
        rows = windows[w]
        lat = [ms for ms, s in rows if s < 400]
        errors = sum(1 for _, s in rows if s >= 400 and s != 429)
        errors_total += errors
        lo, hi = w * WINDOW, (w + 1) * WINDOW
        running = (
            pipeline_started is not None
            and hi > pipeline_started
            and (pipeline_ended is None or lo < pipeline_ended)
        )
        table.add_row(
            f"{lo:.0f}-{hi:.0f}s",
            "running" if running else "-",
            str(len(rows)),
            str(sum(1 for _, s in rows if s == 429)),
            str(errors),
            f"{_p(lat, 0.5):.1f}",
            f"{_p(lat, 0.99):.1f}",
        )
    console.print(table)
    mem = Table(title="resident memory, MiB (process and children)")
    for col in ("process", "start", "peak", "end", "end / start"):
        mem.add_column(col, justify="right")
    for name, series in samples.memory.items():
        values = [v for _, v in series if v > 0]
        if values:
            mem.add_row(
                name,
                f"{values[0]:.0f}",
                f"{max(values):.0f}",
                f"{values[-1]:.0f}",
                f"{values[-1] / values[0]:.2f}x",
            )
    console.print(mem)
    quiet = [ms for t, ms, s in samples.rows if t < baseline and s < 400]
    busy = [ms for t, ms, s in samples.rows if t >= baseline and s < 400]
    outcome = (
        "not started"
        if pipeline is None
        else (
            "still running at the end (stopped)"
            if pipeline_ended is None or pipeline_started is None
            else f"exit {pipeline.returncode} after {pipeline_ended - pipeline_started:.0f}s"
        )
    )
    console.print(f"pipeline: {outcome}; errors beyond planned 429s: {errors_total} (goal 0)")
    if quiet and busy:
        q99, b99 = _p(quiet, 0.99), _p(busy, 0.99)
        console.print(f"p99 quiet {q99:.1f} ms, under the pipeline {b99:.1f} ms ({b99 / q99:.2f}x)")
        record(
            Figure(
                "soak",
                "API p99 with the pipeline writing (ms)",
                b99,
                "ms",
                "API p99 before the pipeline started",
                q99,
            )
        )
    api_mem = [v for _, v in samples.memory.get("api", []) if v > 0]
    if len(api_mem) >= 2:
        record(
            Figure(
                "soak",
                "API resident memory at the end (MiB)",
                api_mem[-1],
                "MiB",
                "at the start",
                api_mem[0],
                "ratio <= 1.2",
                api_mem[-1] / api_mem[0] <= 1.2,
            )
        )
    record(
        Figure(
            "soak",
            "errors beyond planned 429s",
            float(errors_total),
            "",
            "goal",
            0.0,
            "0",
            errors_total == 0,
        )
    )


if __name__ == "__main__":
    main()
