"""Each job's executor is the one `orchestration/executors.py` chose for it, and the queue
and retry tags the production instance acts on are unchanged."""

from __future__ import annotations

import pytest

from infra.settings import get_settings
from orchestration.definitions import build_definitions


@pytest.mark.parametrize(
    ("job", "executor", "retries"),
    [
        ("refresh_all", "forkserver_multiprocess", "2"),
        ("analytics_snapshots", "in_process", "2"),
        ("analytics_refresh", "in_process", "2"),
        ("backup", "in_process", "1"),
    ],
)
def test_job_executor_and_tags(job: str, executor: str, retries: str) -> None:
    definition = build_definitions(get_settings()).resolve_job_def(job)
    assert definition.executor_def.name == executor
    assert definition.tags["neo4j_writer"] == "graph"
    assert definition.tags["dagster/max_retries"] == retries
