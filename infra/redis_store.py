"""Redis access shared by the pipeline and the API."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import redis

from infra.redis_keys import RedisKeys
from infra.settings import Settings


def open_redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5
    )


class FigureStore:
    """Figures the pipeline computes and the API serves."""

    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    @classmethod
    def from_settings(cls, settings: Settings) -> FigureStore:
        return cls(open_redis(settings), RedisKeys(settings.redis_key_prefix))

    def put_event_guest_counts(self, counts: dict[str, int], run_id: str | None = None) -> None:
        key = self.keys.event_guest_counts()
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(key)
        if counts:
            pipe.hset(key, mapping={k: str(v) for k, v in counts.items()})
        pipe.incr(self.keys.cache_generation())
        pipe.hset(
            self.keys.figures_meta(),
            mapping={"computed_at": datetime.now(UTC).isoformat(), "run_id": run_id or ""},
        )
        pipe.execute()

    def bump_generation(self) -> int:
        """Invalidates every cached API response at once (their keys embed the generation)."""
        return int(self.r.incr(self.keys.cache_generation()))

    def generation(self) -> int:
        raw = self.r.get(self.keys.cache_generation())
        return int(str(raw)) if raw is not None else 0

    def event_guest_counts(self) -> dict[str, int]:
        raw: dict[str, str] = self.r.hgetall(self.keys.event_guest_counts())  # type: ignore[assignment]
        return {k: int(v) for k, v in raw.items()}

    def put_json(self, key: str, value: Any, ttl: int | None = None) -> None:
        self.r.set(key, json.dumps(value, default=str), ex=ttl)

    def get_json(self, key: str) -> Any:
        raw = self.r.get(key)
        return None if raw is None else json.loads(str(raw))

    def ping(self) -> float:
        start = time.perf_counter()
        self.r.ping()
        return (time.perf_counter() - start) * 1000.0
