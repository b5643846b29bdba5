"""The benchmark report writer: figures beside their baselines, machine and date; and a
real (tiny) benchmark run recording into it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from infra.settings import PROJECT_ROOT


def test_render_lists_figures_with_baseline_and_ratio() -> None:
    figures = [
        report.Figure(
            "normalize",
            "luma: normalize (wall s)",
            0.5,
            "s",
            "pl.read_csv",
            0.25,
            "ratio <= 3",
            True,
        ),
        report.Figure(
            "normalize",
            "partiful: normalize (wall s)",
            1.0,
            "s",
            "pl.read_csv",
            0.25,
            "ratio <= 3",
            False,
        ),
    ]
    text = report.render(
        figures,
        ran=["normalize", "api"],
        failed=["api"],
        quick=True,
        when=datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
        host={"cpu": "test cpu", "cores": "2"},
    )
    assert "2026-12-03 12:00 UTC" in text and "cpu test cpu; cores 2" in text
    assert "quick mode" in text
    assert (
        "| luma: normalize (wall s) | 0.5 s | pl.read_csv | 0.25 s | 2.00x | ratio <= 3 | yes |"
        in text
    )
    assert "| 4.00x | ratio <= 3 | **no** |" in text
    assert "## api" in text and "failed in this run" in text


def test_a_benchmark_records_its_figures(tmp_path: Path) -> None:
    figures = tmp_path / "figures.jsonl"
    env = {**os.environ, report.ENV: str(figures)}
    cmd = [
        sys.executable,
        "-m",
        "bench.normalize",
        "--rows",
        "300",
        "--runs",
        "1",
        "--only",
        "luma",
    ]
    subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    got = report.load(figures)
    baselines = {f.name: f.baseline for f in got}
    assert baselines == {
        "luma, 300 rows: normalize (wall s)": "pl.read_csv(file)",
        "luma, 300 rows: read+normalize from bytes (wall s)": "pl.read_csv(bytes)",
        "luma, 300 rows: read+normalize from file (wall s)": "pl.read_csv(file)",
    }
    assert all(f.baseline_value > 0 and f.ratio for f in got)
    out = report.write(tmp_path / "RESULTS.md", got, ["normalize"], [], quick=True)
    assert "luma, 300 rows: read+normalize from bytes" in out.read_text()
