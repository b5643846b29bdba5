"""What `community demo` prints while it materializes: one line per run and each step's
own summary, not Dagster's step events (those stay in the run's event log) or warnings
repeated by every process that loads the code location. Run in a fresh interpreter, as
the demo is, so warnings filtered or already shown by earlier tests cannot hide any."""

from __future__ import annotations

from pathlib import Path

from infra.settings import Settings
from tests.dagster_helpers import run_script

SCRIPT = """
import dagster as dg
from cli.main import _run_job

with dg.DagsterInstance.get() as instance:
    _run_job(instance, "analytics_snapshots", {"dagster/partition": "2026-11-01"})
"""


def test_a_demo_run_prints_its_summary_and_no_step_events(
    services: Settings, tmp_path: Path
) -> None:
    out = run_script(SCRIPT, tmp_path, timeout=600)
    printed = out.stdout + out.stderr
    assert out.returncode == 0, printed[-4000:]
    assert "analytics_snapshots: run " in out.stdout and " succeeded in " in out.stdout
    assert "analytics snapshot 2026-11" in printed  # the step's own INFO summary
    for noise in ("STEP_START", "RESOURCE_INIT", " - DEBUG - ", "Warning"):
        assert noise not in printed, f"{noise!r} printed:\n{printed[-4000:]}"
