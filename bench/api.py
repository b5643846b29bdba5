"""Throughput and latency of cached API reads beside a bare FastAPI endpoint, and reads
while Redis goes away.

The API runs under uvicorn (one worker, dev auth on loopback) against the test profile's
Neo4j — only a database carrying the test marker is seeded — and a private Redis this
benchmark starts and stops. In the same run it measures, alternating, each for
`--seconds` and `--runs` times:

    bare:     a FastAPI app with one endpoint returning a dict of the same JSON size as
              the cached /v1/members page (no auth, no limits, no cache), under uvicorn
    members:  GET /v1/members?limit=50 as viewers: token verification, GCRA rate limit,
              cached and masked page from Redis
    summary:  GET /v1/analytics/summary as viewers, cached

Requests come from `--concurrency` keep-alive connections, each with its own user's
token picked from `--users` (so the per-user limit of 120/min is not what is measured).
Prints the median throughput, p50 and p99 of each, and ratios to the bare endpoint.
Then, during a load of `members` + `summary`, Redis is stopped: the count of 5xx answers
is printed (the goal is 0).

    .venv/bin/python -m bench.api [--quick] [--seconds S] [--runs K] [--concurrency C]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from infra.neo4j_store import GraphStore
from infra.settings import PROJECT_ROOT, TEST_PROFILE_ENV, Settings, get_settings

console = Console()
PREFIX = "bench-api"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_app() -> Any:
    """The baseline: FastAPI with one JSON endpoint of a fixed payload (BENCH_BARE_BYTES)."""
    import json

    from fastapi import FastAPI

    size = int(os.environ.get("BENCH_BARE_BYTES", "10000"))
    item = {"member_id": "mbr_0000000000", "display_name": "Someone Somebody", "n": 1}
    items: list[dict[str, Any]] = []
    while len(json.dumps({"items": items, "total": 1})) < size:
        items.append(dict(item, n=len(items)))
    payload = {"items": items, "total": len(items)}
    app = FastAPI()

    @app.get("/bare")
    def bare() -> dict[str, Any]:
        return payload

    return app


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is needed (installed by ./run)")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return proc


def seed(settings: Settings, members: int) -> None:
    """Synthetic members in the test database and a community summary in the private Redis."""
    import redis

    from infra.redis_keys import RedisKeys

    graph = GraphStore.from_settings(settings)
    try:
        if not graph.has_test_marker():
            raise SystemExit(
                "bench.api seeds members: point NEO4J_URI at the test profile's database "
                "(it must carry the test marker)"
            )
        graph.run("MATCH (m:Member) WHERE m.member_id STARTS WITH 'mbr_bench' DETACH DELETE m")
        rows = [
            {
                "member_id": f"mbr_bench{i:06d}",
                "display_name": f"Member {i:06d} Example",
                "email": f"member{i}@example.com",
                "emails": [f"member{i}@example.com"],
                "phone": f"+1415555{i % 10000:04d}",
                "company": "Example Co",
                "observation_count": 2,
                "sources": ["luma", "eventbrite"],
            }
            for i in range(members)
        ]
        graph.write_batches(
            "UNWIND $rows AS row MERGE (m:Member {member_id: row.member_id}) SET m += row", rows
        )
    finally:
        graph.close()
    r = redis.Redis.from_url(settings.redis_url)
    keys = RedisKeys(settings.redis_key_prefix)
    from infra.documents import CommunitySummary, SummaryDocument

    example = CommunitySummary.model_json_schema()["examples"][0]
    activity = [
        {"month": f"2026-{m:02d}", "active": 100 + m, "new": m, "returning": 100, "lapsed": 0}
        for m in range(1, 13)
    ]
    summary = SummaryDocument.model_validate(
        {
            **example,
            "members": members,
            "edges": members * 4,
            "communities": 12,
            "activity": activity,
        }
    )
    r.set(keys.community_summary(), summary.model_dump_json())
    r.close()


async def load(
    base: str, path: str, tokens: list[str], seconds: float, concurrency: int
) -> tuple[float, list[float], dict[int, int]]:
    """(requests per second, latencies in s, status counts) over `seconds`."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(n: int, client: httpx.AsyncClient) -> None:
        i = n
        while time.perf_counter() < stop:
            headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"} if tokens else {}
            i += concurrency
            t0 = time.perf_counter()
            try:
                resp = await client.get(path, headers=headers)
                code = resp.status_code
            except httpx.HTTPError:
                code = 599
            latencies.append(time.perf_counter() - t0)
            statuses[code] = statuses.get(code, 0) + 1

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(n, client) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies, statuses


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--members", type=int, default=2000)
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 8.0)
    runs = args.runs or (1 if args.quick else 3)

    for k, v in TEST_PROFILE_ENV.items():
        os.environ.setdefault(k, v)
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    redis_port, api_port, bare_port = free_port(), free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": PREFIX,
        "AUTH_MODE": "dev",
        "API_HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "REDIS_RETRY_SECONDS": "2",
    }
    settings = get_settings(redis_url=redis_url, redis_key_prefix=PREFIX, auth_mode="dev")
    procs: list[subprocess.Popen[bytes]] = []
    redis_proc = start_redis(redis_port, tmp)
    procs.append(redis_proc)
    uvicorn = str(Path(sys.executable).with_name("uvicorn"))
    common = ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]
    try:
        seed(settings, args.members)
        procs.append(
            subprocess.Popen(
                [uvicorn, "api.app:create_app", "--factory", "--port", str(api_port), *common],
                cwd=PROJECT_ROOT,
                env=env,
            )
        )
        api = f"http://127.0.0.1:{api_port}"
        wait_http(f"{api}/health")
        from api.auth import mint_dev_token

        tokens = [
            mint_dev_token(settings, f"user_bench_{i}", "viewer", 3600) for i in range(args.users)
        ]
        first = httpx.get(
            f"{api}/v1/members?limit=50", headers={"Authorization": f"Bearer {tokens[0]}"}
        )
        assert first.status_code == 200, first.text
        env["BENCH_BARE_BYTES"] = str(len(first.content))
        procs.append(
            subprocess.Popen(
                [uvicorn, "bench.api:bare_app", "--factory", "--port", str(bare_port), *common],
                cwd=PROJECT_ROOT,
                env=env,
            )
        )
        bare = f"http://127.0.0.1:{bare_port}"
        wait_http(f"{bare}/bare")
        bare_size = len(httpx.get(f"{bare}/bare").content)
        cases = {
            "bare FastAPI": (bare, "/bare", []),
            "/v1/members (cached)": (api, "/v1/members?limit=50", tokens),
            "/v1/analytics/summary (cached)": (api, "/v1/analytics/summary", tokens),
        }
        for base, path, toks in cases.values():  # warm up: caches filled, connections open
            asyncio.run(load(base, path, toks, 1.0, args.concurrency))
        results: dict[str, list[tuple[float, list[float], dict[int, int]]]] = {k: [] for k in cases}
        for _ in range(runs):
            for name, (base, path, toks) in cases.items():
                results[name].append(asyncio.run(load(base, path, toks, seconds, args.concurrency)))
        table = Table(
            title=f"API reads, {args.concurrency} connections, median of {runs} x {seconds:.0f}s"
        )
        for col in ("case", "req/s", "p50 ms", "p99 ms", "vs bare", "statuses"):
            table.add_column(col)
        base_rps = statistics.median(r[0] for r in results["bare FastAPI"])
        for name, rs in results.items():
            rps = statistics.median(r[0] for r in rs)
            lat = [x for r in rs for x in r[1]]
            codes: dict[int, int] = {}
            for r in rs:
                for code, count in r[2].items():
                    codes[code] = codes.get(code, 0) + count
            table.add_row(
                name, f"{rps:,.0f}", f"{pct(lat, 0.5):.2f}", f"{pct(lat, 0.99):.2f}",
                f"{rps / base_rps:.2f}", str(dict(sorted(codes.items()))),
            )  # fmt: skip
        console.print(table)
        console.print(f"payloads: /v1/members {len(first.content):,} B, bare {bare_size:,} B")

        async def outage() -> tuple[dict[int, int], dict[int, int]]:
            async def stop_redis() -> None:
                await asyncio.sleep(seconds / 3)
                redis_proc.send_signal(signal.SIGTERM)

            stopper = asyncio.create_task(stop_redis())
            a, b = await asyncio.gather(
                load(api, "/v1/members?limit=50", tokens, seconds, args.concurrency // 2),
                load(api, "/v1/analytics/summary", tokens, seconds, args.concurrency // 2),
            )
            await stopper
            return a[2], b[2]

        members_codes, summary_codes = asyncio.run(outage())
        errors = sum(v for k, v in {**members_codes}.items() if k >= 500) + sum(
            v for k, v in summary_codes.items() if k >= 500
        )
        console.print(
            f"Redis stopped a third into a {seconds:.0f}s load: members {members_codes}, "
            f"summary {summary_codes}; 5xx: {errors}"
        )
        health = httpx.get(f"{api}/health").json()
        console.print(f"/health during the outage: {health['status']}, process {health['process']}")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        cleanup = GraphStore.from_settings(settings)
        try:
            cleanup.run(
                "MATCH (m:Member) WHERE m.member_id STARTS WITH 'mbr_bench' DETACH DELETE m"
            )
        finally:
            cleanup.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
