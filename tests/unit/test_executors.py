"""Each job's executor is the one `orchestration/executors.py` chose for it, and the queue
and retry tags the production instance acts on are unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
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


@pytest.mark.parametrize("executor", ["in_process", "step_processes"])
def test_the_soak_benchmarks_run_config_is_valid_for_refresh_all(
    executor: str, tmp_path: Path
) -> None:
    """The soak benchmark drives `refresh_all` through `dagster job execute -c`, outside
    the test suite's runs: its config must keep up with the job's executor."""
    from bench.soak import _pipeline_cmd

    settings = get_settings().model_copy(update={"state_dir": tmp_path})
    cmd = _pipeline_cmd(settings, executor)
    config = json.loads(Path(cmd[cmd.index("-c") + 1]).read_text())
    job = build_definitions(settings).resolve_job_def("refresh_all")
    dg.validate_run_config(job, config)  # raises on a config the job does not accept
