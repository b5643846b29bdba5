"""`refresh_all` on a real Dagster instance with its own executor: the steps run in
processes forked from a forkserver that loaded the code location once, not in fresh
interpreters. Run in a fresh interpreter of its own, because a process has one forkserver
and an earlier test may have started it with other modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra.settings import PROJECT_ROOT

SCRIPT = """
import json, multiprocessing.forkserver as fs, os
import dagster as dg

from orchestration.executors import STEP_PRELOAD

recon = dg.build_reconstructable_job(
    "orchestration.definitions", "job_for_run", reconstructable_args=("refresh_all",)
)
names = ["luma_exports", "eventbrite_exports", "partiful_exports", "normalized_imports"]
with dg.DagsterInstance.get() as instance:
    result = dg.execute_job(
        recon, instance=instance, asset_selection=[dg.AssetKey(n) for n in names]
    )
    events = instance.all_logs(result.run_id)
messages = [e.message or "" for e in events]
step_pids = {
    e.step_key: e.dagster_event.pid for e in events
    if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_START"
}
print(json.dumps({
    "success": result.success,
    "run_pid": os.getpid(),
    "step_pids": step_pids,
    "engine": [m for m in messages if "multiprocess executor" in m],
    "preload": list(fs._forkserver._preload_modules or []),
    "expected_preload": STEP_PRELOAD,
    "materialized": sorted(
        e.dagster_event.asset_key.to_user_string() for e in events
        if e.dagster_event is not None and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
    ),
}))
"""


def test_refresh_all_steps_fork_from_the_preloaded_server(tmp_path: Path) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["success"]
    assert report["materialized"] == [
        "eventbrite_exports",
        "luma_exports",
        "normalized_imports",
        "partiful_exports",
    ]
    # Every step in a process of its own, none of them the run's process.
    pids = report["step_pids"]
    assert set(pids) == set(report["materialized"])
    assert report["run_pid"] not in pids.values() and len(set(pids.values())) == 4
    assert report["engine"], "the run did not use the multiprocess executor"
    # The forkserver those processes came from had loaded the code location and clients.
    assert set(report["expected_preload"]) <= set(report["preload"])
    # The normalized store went where the settings said, through the resources.
    assert (tmp_path / "data" / "normalized").is_dir()
