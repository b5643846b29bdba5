"""Running code in a fresh interpreter against a Dagster instance of its own, as the demo
and the daemon do: no warning filter, forkserver or module an earlier test loaded leaks in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from infra.settings import PROJECT_ROOT


def run_script(script: str, tmp_path: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    """`script` in a new Python process, with DAGSTER_HOME and DATA_DIR under `tmp_path`."""
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
