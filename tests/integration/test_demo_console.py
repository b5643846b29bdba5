"""What `community demo` prints while it materializes: one line per run and each step's
own summary, not Dagster's step events (those stay in the run's event log) or warnings
repeated by every process that loads the code location. Run in a fresh interpreter, as
the demo is, so warnings filtered or already shown by earlier tests cannot hide any."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from infra.settings import PROJECT_ROOT, Settings

SCRIPT = """
import dagster as dg
from cli.main import _run_job

with dg.DagsterInstance.get() as instance:
    _run_job(instance, "analytics_snapshots", {"dagster/partition": "2026-11-01"})
"""


def test_a_demo_run_prints_its_summary_and_no_step_events(
    services: Settings, tmp_path: Path
) -> None:
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
        timeout=600,
    )
    printed = out.stdout + out.stderr
    assert out.returncode == 0, printed[-4000:]
    assert "analytics_snapshots: run " in out.stdout and " succeeded in " in out.stdout
    assert "analytics snapshot 2026-11" in printed  # the step's own INFO summary
    for noise in ("STEP_START", "RESOURCE_INIT", " - DEBUG - ", "Warning"):
        assert noise not in printed, f"{noise!r} printed:\n{printed[-4000:]}"
