"""Soak: the API under steady load while a full pipeline run writes to the same Neo4j.

    python -m bench.soak [--seconds 300] [--rate 20] [--quick]

First prepares the data the API serves: one full `refresh_all` run (imports, graph,
identity, analytics), then checks that every route of the load answers 2xx; the load does
not start against an empty or half-computed store. Then starts the API (uvicorn, loopback,
dev tokens), a quiet baseline period, and a second full `refresh_all` run writing to the
same Neo4j while a fixed number of client threads send requests at a steady total rate to
a mix of read endpoints. The platform fakes run on free ports of their own.

Reports every non-2xx answer by route and status (planned 429s apart: goal 0 errors),
per 30-second window the requests, errors, p50 and p99; the API's p99 during the pipeline
against the quiet baseline's p99 (same run); and the resident memory of the API, the
pipeline, Neo4j and Redis at start, peak and end (goal: flat). Services must be up.
Loopback only; every loop is bounded by a deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.table import Table

from bench.report import Figure, record
from infra.settings import PROJECT_ROOT, Settings, get_settings

ROUTES = ("/v1/events?limit=20", "/v1/members?limit=20", "/v1/analytics/summary", "/health")
WINDOW = 30.0


@dataclass
class Samples:
    lock: threading.Lock = field(default_factory=threading.Lock)
    rows: list[tuple[float, float, int]] = field(default_factory=list)  # (t, ms, status)
    failures: Counter[tuple[str, int, str]] = field(default_factory=Counter)  # route, status, error
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


def _pipeline_cmd(settings: Settings, executor: str) -> list[str]:
    from orchestration.definitions import refresh_tags
    from orchestration.executors import RUN_IN_PROCESS

    config = settings.state_path / "soak-run-config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    # The job's own executor: every step in the run's process, or one forked process each.
    config.write_text(json.dumps(RUN_IN_PROCESS if executor == "in_process" else {}))
    return [
        str(Path(sys.executable).parent / "dagster"),
        "job",
        "execute",
        "-m",
        "orchestration.definitions",
        "-j",
        "refresh_all",
        "--tags",
        json.dumps(refresh_tags(settings)),
        "-c",
        str(config),
    ]


def _wait_healthy(base: str, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the API at {base} did not answer /health within {deadline_s:.0f}s")


def _error_code(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return "-"
    return str(body.get("error", "-")) if isinstance(body, dict) else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="load duration")
    parser.add_argument("--baseline", type=float, default=30.0, help="quiet seconds first")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--skip-prepare", action="store_true", help="data already prepared: no first run"
    )
    parser.add_argument(
        "--executor",
        choices=("in_process", "step_processes"),
        default="in_process",
        help="how the pipeline runs its steps (in_process: writes not spread out by a "
        "process start per step, the denser load on a small machine)",
    )
    parser.add_argument("--quick", action="store_true", help="60 s with a 15 s baseline")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.baseline = 60.0, 15.0
    console = Console(width=160)
    # The platform fakes on free ports: never someone else's fakes on the default ports.
    luma_port, eventbrite_port = _free_port(), _free_port()
    os.environ.update(
        {
            "FAKE_LUMA_PORT": str(luma_port),
            "FAKE_EVENTBRITE_PORT": str(eventbrite_port),
            "LUMA_BASE_URL": f"http://127.0.0.1:{luma_port}/v1",
            "EVENTBRITE_BASE_URL": f"http://127.0.0.1:{eventbrite_port}/v3",
        }
    )
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

    token = mint_dev_token(settings, "soak", "organizer", 3600)
    fakes = start_fakes(settings)
    api: subprocess.Popen[bytes] | None = None
    pipeline: subprocess.Popen[bytes] | None = None
    try:
        if not args.skip_prepare:
            console.print("preparing: a first full refresh_all run (imports, graph, analytics)")
            t0 = time.monotonic()
            first = subprocess.run(
                _pipeline_cmd(settings, args.executor),
                cwd=PROJECT_ROOT,
                env=dagster_env(settings),
                capture_output=True,
                timeout=1800,
                check=False,
            )
            if first.returncode != 0:
                console.print(first.stdout.decode()[-3000:], first.stderr.decode()[-3000:])
                raise SystemExit("the preparing pipeline run failed; no load started")
            console.print(f"prepared in {time.monotonic() - t0:.0f}s")
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
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base)
        headers = {"Authorization": f"Bearer {token}"}
        not_ready = []
        for route in ROUTES:
            resp = httpx.get(base + route, headers=headers, timeout=30)
            if not 200 <= resp.status_code < 300:
                not_ready.append(f"{route}: {resp.status_code} {resp.text[:200]}")
        if not_ready:
            raise SystemExit("the data is not ready for the load:\n" + "\n".join(not_ready))
        samples = Samples()
        start = time.monotonic()
        stop_at = start + args.baseline + args.seconds
        pipeline_started: float | None = None
        pipeline_ended: float | None = None

        def client(k: int) -> None:
            interval = args.threads / args.rate
            next_at = time.monotonic() + k * interval / args.threads
            with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
                i = k
                while (now := time.monotonic()) < stop_at:
                    if now < next_at:
                        time.sleep(min(next_at - now, 0.5))
                        continue
                    route = ROUTES[i % len(ROUTES)]
                    i += 1
                    t0 = time.perf_counter()
                    error = ""
                    try:
                        resp = http.get(route)
                        status = resp.status_code
                        if not 200 <= status < 300:
                            error = _error_code(resp)
                    except httpx.HTTPError as exc:
                        status, error = 599, type(exc).__name__
                    ms = (time.perf_counter() - t0) * 1000
                    with samples.lock:
                        samples.rows.append((now - start, ms, status))
                        if error:
                            samples.failures[(route.split("?")[0], status, error)] += 1
                    next_at += interval

        workers = [
            threading.Thread(target=client, args=(k,), daemon=True) for k in range(args.threads)
        ]
        for w in workers:
            w.start()
        neo_pid = _pid_from(settings.state_path / "neo4j" / "run" / "neo4j.pid")
        redis_pid = _pid_from(settings.state_path / "redis" / "redis.pid")
        try:
            while (now := time.monotonic()) < stop_at:
                t = now - start
                if pipeline is None and t >= args.baseline:
                    pipeline = subprocess.Popen(
                        _pipeline_cmd(settings, args.executor),
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
                    if pid and not (name == "pipeline" and pipeline_ended is not None):
                        samples.memory[name].append((t, _rss_mb(pid)))
                time.sleep(5.0)
        finally:
            for w in workers:
                w.join(timeout=15)
    finally:
        for proc in (pipeline, api, fakes):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
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
        errors = sum(1 for _, s in rows if not 200 <= s < 300 and s != 429)
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
    failed = Table(title="every non-2xx answer, by route and status")
    for col in ("route", "status", "error", "count", "planned"):
        failed.add_column(col, justify="right")
    for (route, status, error), n in sorted(samples.failures.items()):
        failed.add_row(route, str(status), error, str(n), "yes" if status == 429 else "no")
    if samples.failures:
        console.print(failed)
    else:
        console.print("every answer was 2xx")
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
