"""Operations in the code location: the verified backup job and its schedule, and the run
sensors that record outcomes where /health can show them and call the alert hook.

The backup and run-status modules (Neo4j driver, Redis and HTTP clients) are imported by
the functions that use them, so loading the code location does not import them.
"""

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import dagster as dg
from dagster import OpExecutionContext, Output

from infra.settings import Settings, get_settings
from orchestration.executors import IN_PROCESS

if TYPE_CHECKING:
    from infra.run_status import RunStatusStore

# Runs carrying this tag are limited together by the queued run coordinator (dagster.yaml),
# so the pipeline's graph writes and a backup's consistent read never interleave.
NEO4J_WRITER_TAG = {"neo4j_writer": "graph"}


def job_tags(name: str, max_retries: int) -> dict[str, str]:
    """Tags the production instance's run queue and retries act on."""
    return {**NEO4J_WRITER_TAG, "community/job": name, "dagster/max_retries": str(max_retries)}


@dg.op(description="Back up graph, normalized store and Redis documents; verify; prune.")
def backup_and_verify(context: OpExecutionContext) -> Output[str]:
    from infra.backup import BackupError, run_backup

    settings = get_settings()
    try:
        result = run_backup(settings, log=context.log.info)
    except BackupError as exc:
        raise dg.Failure(description=str(exc)) from exc
    manifest = result["manifest"]
    return dg.Output(
        result["folder"],
        metadata={
            "nodes": manifest["graph"]["nodes"],
            "relationships": manifest["graph"]["relationships"],
            "redis_keys": manifest["redis"]["keys"],
            "normalized_files": len(manifest["normalized_store"]),
            "content_hash": manifest["graph"]["content_hash"],
            "verified": bool(manifest["verified"]),
            "encrypted": manifest["encryption_key_id"] is not None,
            "pruned": len(result["pruned"]),
        },
    )


@dg.job(
    name="backup",
    description="A verified logical backup (see infra/backup.py).",
    tags=job_tags("backup", 1),
    executor_def=IN_PROCESS,  # one op: a process of its own would isolate nothing
)
def backup_job() -> None:
    backup_and_verify()


def _status_store(settings: Settings) -> "RunStatusStore":
    from infra.redis_keys import RedisKeys
    from infra.redis_store import open_redis
    from infra.run_status import RunStatusStore

    return RunStatusStore(open_redis(settings), RedisKeys(settings.redis.key_prefix))


def record_failure(
    settings: Settings, job: str, run_id: str, step: str | None, error: str | None
) -> None:
    from infra.run_status import RunOutcome, send_alert

    outcome = RunOutcome(job, run_id, datetime.now(UTC), step, error)
    store = _status_store(settings)
    try:
        store.record_failure(outcome)
    finally:
        store.r.close()
    hook = settings.operations.alert_webhook_url
    if hook:
        send_alert(
            hook,
            {
                "event": "run_failed",
                "job": job,
                "run_id": run_id,
                "step": step,
                "error": error,
                "at": outcome.at.isoformat(),
            },
        )


@dg.run_failure_sensor(
    name="record_run_failure",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def record_run_failure(context: dg.RunFailureSensorContext) -> None:
    """Records the failed run in Redis (read by /health and /metrics) and posts the alert."""
    run = context.dagster_run
    event = context.failure_event
    error = None
    data = event.event_specific_data
    err = getattr(data, "error", None)
    if err is not None:
        error = getattr(err, "cls_name", None)
    record_failure(get_settings(), run.job_name, run.run_id, event.step_key, error)


@dg.run_status_sensor(
    name="record_run_success",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def record_run_success(context: dg.RunStatusSensorContext) -> None:
    run = context.dagster_run
    records = context.instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=10_000
    ).records
    materialized = {
        r.event_log_entry.dagster_event.asset_key.to_user_string()
        for r in records
        if r.event_log_entry.dagster_event and r.event_log_entry.dagster_event.asset_key
    }
    record_success(get_settings(), run.job_name, run.run_id, materialized)


def record_success(settings: Settings, job: str, run_id: str, assets: set[str]) -> None:
    """The job's last success, and each source imported or synced by the run."""
    from infra.run_status import SOURCE_ASSETS, RunOutcome

    outcome = RunOutcome(job, run_id, datetime.now(UTC))
    store = _status_store(settings)
    try:
        store.record_success(outcome)
        for source in sorted({SOURCE_ASSETS[a] for a in assets if a in SOURCE_ASSETS}):
            store.record_source_sync(source, outcome)
    finally:
        store.r.close()


def backup_schedule(settings: Settings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="nightly_backup",
        job=backup_job,
        cron_schedule=settings.schedules.backup_cron,
        execution_timezone=settings.schedules.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
