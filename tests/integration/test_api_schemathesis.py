"""Schemathesis over the whole OpenAPI document against the API served by uvicorn, with
organizer and viewer tokens: no server errors, no undocumented status codes, no response
that breaks its schema."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import PROJECT_ROOT, Settings
from tests.auth_helpers import auth_headers, dev_settings
from tests.integration.test_identity_graph import load, run_identity

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def served(graph: GraphStore, figures: FigureStore, services: Settings) -> Iterator[str]:
    load(graph)
    run_identity(services)
    port = _free_port()
    env = {
        **os.environ,
        "NEO4J_URI": services.neo4j_uri,
        "REDIS_URL": services.redis_url,
        "STATE_DIR": str(services.state_dir),
        "AUTH_MODE": "dev",
        "API_HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        # Schemathesis sends thousands of requests with one token from one address.
        "RATE_LIMIT_PER_MINUTE": "1000000",
        "RATE_LIMIT_ANONYMOUS_PER_MINUTE": "1000000",
        "IP_BLOCK_THRESHOLD": "1000000",
    }
    bindir = Path(sys.executable).parent
    proc = subprocess.Popen(
        [str(bindir / "uvicorn"), "api.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=PROJECT_ROOT,
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("role", ["organizer", "viewer"])
def test_schemathesis_finds_nothing(served: str, services: Settings, role: str) -> None:
    token = auth_headers(dev_settings(services), role=role)["Authorization"]
    bindir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bindir / "schemathesis"), "run", f"{served}/openapi.json",
         "-H", f"Authorization: {token}", "-c", CHECKS, "-n", "20", "--seed", "7",
         "--no-color"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )  # fmt: skip
    tail = result.stdout[-3000:]
    assert result.returncode == 0, tail
    (cases,) = [line for line in tail.splitlines() if " generated, " in line]
    generated, passed = cases.split(" generated, ")
    assert passed.strip() == f"{generated.strip()} passed", cases  # nothing failed or errored
