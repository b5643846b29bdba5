"""`refresh_all` on a real Dagster instance with its own executor: the steps run in
processes forked from a forkserver that loaded the code location once, not in fresh
interpreters; a run that asks for it runs them all in its own process. Run in a fresh interpreter of its own, because a process has one forkserver
and an earlier test may have started it with other modules."""

from __future__ import annotations

import json
from pathlib import Path

from tests.dagster_helpers import run_script

SCRIPT = """
import json, multiprocessing.forkserver as fs, os
import dagster as dg

from orchestration.executors import RUN_IN_PROCESS, STEP_PRELOAD

recon = dg.build_reconstructable_job(
    "orchestration.definitions", "job_for_run", reconstructable_args=("refresh_all",)
)
names = ["luma_exports", "eventbrite_exports", "partiful_exports", "normalized_imports"]


def run(run_config):
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(
            recon,
            instance=instance,
            asset_selection=[dg.AssetKey(n) for n in names],
            run_config=run_config,
        )
        events = instance.all_logs(result.run_id)
    kinds = lambda kind: [
        e for e in events if e.dagster_event is not None and e.dagster_event.event_type_value == kind
    ]
    return {
        "success": result.success,
        "step_pids": {e.step_key: e.dagster_event.pid for e in kinds("STEP_START")},
        "engine": [e.message for e in events if "Executing steps" in (e.message or "")],
        "materialized": sorted(
            e.dagster_event.asset_key.to_user_string() for e in kinds("ASSET_MATERIALIZATION")
        ),
    }


processes = run({})
preload = list(fs._forkserver._preload_modules or [])
in_process = run(RUN_IN_PROCESS)
print(json.dumps({
    "run_pid": os.getpid(),
    "processes": processes,
    "in_process": in_process,
    "preload": preload,
    "expected_preload": STEP_PRELOAD,
}))
"""


def test_refresh_all_steps_fork_from_the_preloaded_server_or_run_in_process(tmp_path: Path) -> None:
    out = run_script(SCRIPT, tmp_path)
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    expected = ["eventbrite_exports", "luma_exports", "normalized_imports", "partiful_exports"]
    processes, in_process = report["processes"], report["in_process"]
    assert processes["success"] and in_process["success"]
    assert processes["materialized"] == in_process["materialized"] == expected
    # By default every step in a process of its own, none of them the run's process ...
    pids = processes["step_pids"]
    assert set(pids) == set(expected)
    assert report["run_pid"] not in pids.values() and len(set(pids.values())) == 4
    assert any("multiprocess executor" in m for m in processes["engine"])
    # ... forked from a forkserver that had loaded the code location and the clients.
    assert set(report["expected_preload"]) <= set(report["preload"])
    # A small run may choose its own process for every step.
    assert set(in_process["step_pids"].values()) == {report["run_pid"]}
    assert any("in process" in m for m in in_process["engine"])
    # The normalized store went where the settings said, through the resources.
    assert (tmp_path / "data" / "normalized").is_dir()
