"""How each job runs its steps: in the run's own process, or one process per step.

Dagster's default (a fresh `spawn`ed process per step that imports the whole code
location before it starts) cost 5 s a step on an idle machine and 14–16 s under load:
an identity run spent most of its time starting processes. The choice per job:

- `IN_PROCESS` for jobs of one step (`analytics_snapshots`, `analytics_refresh`,
  `backup`): a separate step process isolates nothing the run process does not already
  isolate, and the TDA computation has its own bounded child process anyway.
- `STEP_PROCESSES` for `refresh_all`: the API syncs and the three export imports are
  independent and mostly wait on the network or the disk, so they run side by side;
  later steps (identity, graph, analytics) stay isolated from each other, and a step that
  dies takes only itself down. Step processes are forked from a `forkserver` that has
  imported the code location and the Neo4j and Redis clients once per run, so no step
  imports them again. A small run can choose to run in process instead (`RUN_IN_PROCESS`):
  the demo does.

Run retries (`dagster/max_retries`) and the queue tags (`neo4j_writer`) are run-level and
work the same under either executor; step retry policies too.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

# Imported once per run in the forkserver, inherited by every step process it forks. Besides
# the code location, what each step process imports before its step starts: the instance's
# storage (SQLAlchemy and Alembic, SQLite locally, PostgreSQL in production) and the module
# that rebuilds the job. A name that does not import is skipped by the forkserver.
STEP_PRELOAD = [
    "orchestration.definitions",
    "infra.neo4j_store",  # the Neo4j driver (and pandas, which it imports): most steps
    "infra.redis_store",
    "dagster._utils.test.definitions",  # rebuilds the job; imports the storage layer
    "dagster._core.storage.sqlite_storage",
    "dagster._core.instance.factory",
    "dagster_postgres",
    "upath.core",  # the compute log manager's paths
    "upath.implementations.local",
]

IN_PROCESS = dg.in_process_executor


def _steps(config: dict[str, Any]) -> dict[str, Any]:
    if config["in_process"]:
        return {"in_process": {}}
    return {"multiprocess": {"start_method": {"forkserver": {"preload_modules": STEP_PRELOAD}}}}


# A run may still choose to run in process (`execution: {config: {in_process: true}}`):
# a small run on a busy machine spends more starting step processes than working (the
# demo's `refresh_all` on the bundled samples), and gains little from running its few
# independent steps side by side.
STEP_PROCESSES = dg.multi_or_in_process_executor.configured(
    _steps,
    name="forkserver_multiprocess",
    config_schema={"in_process": dg.Field(bool, default_value=False)},
)

RUN_IN_PROCESS: dict[str, Any] = {"execution": {"config": {"in_process": True}}}
