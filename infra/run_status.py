"""Outcomes of pipeline runs, recorded in Redis by the code location's sensors and read by
the API's /health and /metrics (which never import Dagster)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from infra.redis_keys import RedisKeys

PIPELINE_JOBS = ("refresh_all",)  # the runs /health reports as "the pipeline"
# Assets whose success means a source was imported or synced.
SOURCE_ASSETS = {
    "luma_api": "luma",
    "luma_exports": "luma",
    "eventbrite_api": "eventbrite",
    "eventbrite_exports": "eventbrite",
    "partiful_exports": "partiful",
}


@dataclass(frozen=True)
class RunOutcome:
    job: str
    run_id: str
    at: datetime
    step: str | None = None
    error: str | None = None  # the error's class name only: messages can hold personal data

    def as_json(self) -> str:
        return json.dumps(
            {
                "run_id": self.run_id,
                "at": self.at.isoformat(),
                "step": self.step,
                "error": self.error,
            }
        )

    @classmethod
    def from_json(cls, job: str, text: str) -> RunOutcome:
        raw = json.loads(text)
        return cls(
            job, raw["run_id"], datetime.fromisoformat(raw["at"]), raw.get("step"), raw.get("error")
        )


class RunStatusStore:
    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    def record_success(self, outcome: RunOutcome) -> None:
        self.r.hset(self.keys.run_successes(), outcome.job, outcome.as_json())

    def record_failure(self, outcome: RunOutcome) -> None:
        self.r.hset(self.keys.run_failures(), outcome.job, outcome.as_json())

    def record_source_sync(self, source: str, outcome: RunOutcome) -> None:
        self.r.hset(self.keys.source_syncs(), source, outcome.as_json())

    def source_syncs(self) -> dict[str, RunOutcome]:
        return self._all(self.keys.source_syncs())

    def _all(self, key: str) -> dict[str, RunOutcome]:
        raw: dict[str, str] = self.r.hgetall(key)  # type: ignore[assignment]
        return {job: RunOutcome.from_json(job, text) for job, text in raw.items()}

    def successes(self) -> dict[str, RunOutcome]:
        return self._all(self.keys.run_successes())

    def failures(self) -> dict[str, RunOutcome]:
        return self._all(self.keys.run_failures())

    def last_pipeline_success(self) -> RunOutcome | None:
        found = [o for job, o in self.successes().items() if job in PIPELINE_JOBS]
        return max(found, key=lambda o: o.at) if found else None


def send_alert(url: str, payload: dict[str, Any], timeout: float = 5.0) -> bool:
    """Posts a failed run to the alert webhook; never raises (alerting must not mask the
    failure it reports). True when the hook answered 2xx."""
    import httpx  # only when a run fails: not a cost every code-location load pays

    try:
        response = httpx.post(url, json=payload, timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.is_success
