"""Loading the code location imports no heavy library a step imports when it needs it.

Structural, not timed (timing is `bench/import_time.py`): a fresh interpreter imports the
code location, builds its definitions, and lists which heavy top-level packages it loaded.
Every step process and the UI pay for whatever is on this list before any work starts.
"""

from __future__ import annotations

import json
import subprocess
import sys

from infra.settings import PROJECT_ROOT

# Imported by the functions that use them, never by loading the code location.
HEAVY = {
    "networkx",
    "scipy",
    "ripser",
    "persim",
    "sklearn",
    "gph",  # giotto-ph
    "gudhi",
    "igraph",
    "matplotlib",
    "pandas",
    "pyarrow",
    "splink",
    "neo4j",  # the driver imports pandas and pyarrow when they are installed
    "redis",
    "psycopg2",
    "httpx",  # also loads its own CLI (rich, click, pygments) when those are installed
}

PROBE = """
import json, sys
{statement}
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))
"""


def loaded_after(statement: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(statement=statement)],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_code_location_loads_no_heavy_library() -> None:
    loaded = loaded_after("import orchestration.definitions")
    assert "orchestration" in loaded and "dagster" in loaded
    assert loaded & HEAVY == set()


def test_building_the_definitions_loads_no_heavy_library() -> None:
    # What the UI, the daemon and each step process do: import, then build for the settings.
    statement = (
        "import orchestration.definitions as d\n"
        "defs = d.defs()\n"
        "assert defs.resolve_job_def('refresh_all') is not None"
    )
    assert loaded_after(statement) & HEAVY == set()


def test_the_heavy_libraries_still_load_where_they_are_used() -> None:
    # The probe can see them: an analytics call imports networkx and scipy on demand.
    statement = (
        "import orchestration.definitions\n"
        "from domain.network.coattendance import build_graph\n"
        "build_graph([]).to_networkx()"
    )
    loaded = loaded_after(statement)
    assert {"networkx", "scipy"} <= loaded
