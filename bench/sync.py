"""API sync throughput against the local Luma fake, beside a bare page-fetch loop.

A Luma fake with E events of G guests each (default 200 x 500 = 100,000 guests; `--quick`
20 x 100) runs in its own process. In the same run, alternating, it times

    baseline: httpx loop   list events, then page every guest list (100 per page) and
                           json-decode each page; nothing else (sequential)
    connector only, c=5:   LumaClient (retries, rate limiter, paging checks) in 5 threads,
                           without landing or normalization
    sync c=1:              ingest.connectors.sync.sync_source, concurrency 1: the same
                           requests plus retries/rate limiter, raw landing of every page,
                           normalization, and the day files written as parquet
    sync c=5:              the same with the default concurrency of 5

    sync c=1 / c=5, latency: the two syncs against a second fake that waits `--latency`
                           seconds (default 0.05) before each reply, as a remote API would

and prints the median of `--runs` runs of each as guests per second, with ratios.

    .venv/bin/python -m bench.sync [--quick] [--events E] [--guests G] [--runs K]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from fakes.data import WorldConfig
from infra.settings import PROJECT_ROOT, get_settings
from ingest.connectors.base import ClientOptions
from ingest.connectors.luma import LumaClient
from ingest.connectors.sync import sync_source
from ingest.landing import DataStore

KEY = "bench-key"
CLEANUP: list[Path] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_fake(port: int, events: int, guests: int, delay: float = 0.0) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fakes.luma",
            "--port",
            str(port),
            "--seed",
            "42",
            "--api-key",
            KEY,
            "--events",
            str(events),
            "--guests",
            str(guests),
            "--people",
            str(max(2 * guests, 1000)),
            "--delay",
            str(delay),
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_fake/stats", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the Luma fake did not start")


def baseline(base: str, page_size: int) -> int:
    """The least a sync must do: fetch and decode every page, one after another."""
    rows = 0
    headers = {"x-luma-api-key": KEY}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        events: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"pagination_limit": page_size}
            if cursor:
                params["pagination_cursor"] = cursor
            body = http.get("calendar/list-events", params=params).json()
            events += [e["api_id"] for e in body["entries"]]
            cursor = body.get("next_cursor")
            if not body.get("has_more"):
                break
        for eid in events:
            cursor = None
            while True:
                params = {"event_id": eid, "pagination_limit": page_size}
                if cursor:
                    params["pagination_cursor"] = cursor
                body = http.get("event/get-guests", params=params).json()
                rows += len(body["entries"])
                cursor = body.get("next_cursor")
                if not body.get("has_more"):
                    break
    return rows


def connector_only(base: str, page_size: int, concurrency: int) -> int:
    """The connector's own cost: retries, rate limiter, paging checks, no landing/normalizing."""
    opts = ClientOptions(
        base_url=base, requests_per_minute=10_000_000, page_size=page_size, concurrency=concurrency
    )
    with LumaClient(opts, KEY) as client:
        ids = [str(e["api_id"]) for e in (r.get("event", r) for r in client.list_events().records)]
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return sum(len(listing.records) for listing in pool.map(client.get_guests, ids))


def full_sync(base: str, page_size: int, concurrency: int, start: date, end: date) -> int:
    folder = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        settings = get_settings(
            luma_base_url=base,
            luma_api_key=KEY,
            luma_requests_per_minute=10_000_000,
            sync_page_size=page_size,
            sync_concurrency=concurrency,
        )
        report = sync_source("luma", settings, DataStore(folder), None, start, end, full=True)
        assert report.reconciles
        return report.input_records
    finally:
        CLEANUP.append(folder)  # removed after timing, outside the measured region


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 events x 100 guests, 2 runs")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--guests", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument(
        "--latency", type=float, default=0.05, help="server delay per reply for the last pair"
    )
    args = parser.parse_args()
    if args.quick:
        args.events, args.guests, args.runs = 20, 100, 2
    console = Console()
    cfg = WorldConfig()
    start, end = cfg.start, cfg.start + timedelta(days=cfg.days)
    port = free_port()
    console.print(
        f"Luma fake: {args.events} events x {args.guests} guests, page size {args.page_size}, "
        f"{args.runs} runs each"
    )
    proc = start_fake(port, args.events, args.guests)
    slow_port = free_port()
    slow_proc = start_fake(slow_port, args.events, args.guests, delay=args.latency)
    base = f"http://127.0.0.1:{port}/v1"
    slow = f"http://127.0.0.1:{slow_port}/v1"
    ms = f"{args.latency * 1000:.0f} ms latency"
    cases: dict[str, Callable[[], int]] = {
        "baseline: httpx page loop": lambda: baseline(base, args.page_size),
        "connector only, concurrency 5": lambda: connector_only(base, args.page_size, 5),
        "sync, concurrency 1": lambda: full_sync(base, args.page_size, 1, start, end),
        "sync, concurrency 5": lambda: full_sync(base, args.page_size, 5, start, end),
        f"sync, concurrency 1, {ms}": lambda: full_sync(slow, args.page_size, 1, start, end),
        f"sync, concurrency 5, {ms}": lambda: full_sync(slow, args.page_size, 5, start, end),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    rows: dict[str, int] = {}
    try:
        for _ in range(args.runs):
            for name, fn in cases.items():  # alternate, so drift hits every case alike
                t0 = time.perf_counter()
                rows[name] = fn()
                times[name].append(time.perf_counter() - t0)
                while CLEANUP:
                    shutil.rmtree(CLEANUP.pop(), ignore_errors=True)
    finally:
        for p in (proc, slow_proc):
            p.terminate()
            p.wait(timeout=30)
    expected = args.events * args.guests
    table = Table(
        "case", "guests", "median s", "guests/s", "vs baseline", title="Luma API sync throughput"
    )
    base_rate = rows["baseline: httpx page loop"] / statistics.median(
        times["baseline: httpx page loop"]
    )
    rates = {}
    for name in cases:
        med = statistics.median(times[name])
        rates[name] = rows[name] / med
        table.add_row(
            name,
            f"{rows[name]:,}",
            f"{med:.2f}",
            f"{rates[name]:,.0f}",
            f"{rates[name] / base_rate:.2f}x",
        )
    console.print(table)
    local = rates["sync, concurrency 5"] / rates["sync, concurrency 1"]
    remote = rates[f"sync, concurrency 5, {ms}"] / rates[f"sync, concurrency 1, {ms}"]
    console.print(
        f"concurrency 5 vs 1: {local:.2f}x on localhost, {remote:.2f}x with {ms}; "
        f"every case saw {expected:,} guests: {all(r == expected for r in rows.values())}"
    )


if __name__ == "__main__":
    main()
