"""The code location's surface — asset keys, checks, jobs, schedules, sensors, partitions —
against a committed snapshot, so nothing disappears or is renamed by accident (schedules,
backfills, run history and the README refer to these names).

After an intended change, rewrite the snapshot and commit it with the change:

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/unit/test_code_location.py
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import dagster as dg

from infra.settings import Settings
from orchestration.definitions import build_definitions

SNAPSHOT = Path(__file__).parent / "snapshots" / "code_location.json"


def partitions_name(partitions: dg.PartitionsDefinition | None) -> str | None:
    """The kind of partitions (dates depend on settings, so they stay out)."""
    if partitions is None:
        return None
    name = getattr(partitions, "name", None)  # dynamic partitions are named
    return f"{type(partitions).__name__}:{name}" if name else type(partitions).__name__


def code_location(settings: Settings) -> dict[str, Any]:
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": partitions_name(node.partitions_def),
        }
    return {
        "assets": dict(sorted(assets.items())),
        "asset_checks": sorted(k.to_user_string() for k in graph.asset_check_keys),
        "jobs": sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")),
        "schedules": {
            s.name: s.job_name for s in sorted(defs.schedules or [], key=lambda s: s.name)
        },
        "sensors": sorted(s.name for s in defs.sensors or []),
    }


def test_code_location_matches_the_snapshot(settings: Settings) -> None:
    current = code_location(settings)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    changes = []
    for section in expected.keys() | current.keys():
        old, new = expected.get(section), current.get(section)
        if old == new:
            continue
        gone = sorted(set(old or []) - set(new or []))
        added = sorted(set(new or []) - set(old or []))
        if gone or added:
            changes.append(f"{section}: gone {gone}, new {added}")
        else:
            changes.append(f"{section}: same names, now {new}")
    assert not changes, (
        "the code location differs from tests/unit/snapshots/code_location.json:\n  "
        + "\n  ".join(sorted(changes))
        + "\nIf intended: UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/unit/test_code_location.py"
    )


def test_building_the_code_location_warns_about_nothing(settings: Settings) -> None:
    """Every process that loads the code location builds it (each run, each step, the
    UI), so a warning there is repeated dozens of times in a terminal; a new deprecation
    in dagster should be dealt with, not scrolled past."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_definitions(settings)
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
