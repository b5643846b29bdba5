"""/health: the dependencies, the process and the pipeline's last runs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class DependencyHealth(BaseModel):
    status: Literal["up", "down"]
    latency_ms: float | None = None
    error: Literal["timeout", "unreachable"] | None = None  # a category, never a driver's text


class ProcessHealth(BaseModel):
    memory_rss_mb: float
    cpu_percent: float
    threads: int
    response_ms_p50: float | None
    response_ms_p95: float | None
    response_ms_p99: float | None
    responses_sampled: int


class RunHealth(BaseModel):
    job: str
    run_id: str
    at: str
    age_seconds: float
    step: str | None = None
    error: str | None = None


class PipelineHealth(BaseModel):
    """The pipeline's last successful run (as the code location's sensors recorded it)."""

    last_success: RunHealth | None
    stale: bool  # no success, or the last one older than PIPELINE_STALE_HOURS
    last_failures: list[RunHealth]  # last failed run of each job that failed after its success
    known: bool  # false when Redis could not be read


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "dependencies": {
                        "neo4j": {"status": "up", "latency_ms": 1.8, "error": None},
                        "redis": {"status": "up", "latency_ms": 0.3, "error": None},
                    },
                    "process": {
                        "memory_rss_mb": 182.4,
                        "cpu_percent": 3.5,
                        "threads": 9,
                        "response_ms_p50": 2.1,
                        "response_ms_p95": 9.8,
                        "response_ms_p99": 21.0,
                        "responses_sampled": 2000,
                    },
                    "pipeline": {
                        "last_success": {
                            "job": "refresh_all",
                            "run_id": "8d0c3f2e",
                            "at": "2026-11-30T02:10:00+00:00",
                            "age_seconds": 3600.0,
                            "step": None,
                            "error": None,
                        },
                        "stale": False,
                        "last_failures": [],
                        "known": True,
                    },
                }
            ]
        }
    )

    status: Literal["ok", "degraded", "down"]  # degraded: Redis away; down: Neo4j away
    dependencies: dict[str, DependencyHealth]
    process: ProcessHealth
    pipeline: PipelineHealth | None = None


UNKNOWN_PIPELINE = PipelineHealth(last_success=None, stale=True, last_failures=[], known=False)
