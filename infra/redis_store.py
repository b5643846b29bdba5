"""Redis access shared by the pipeline and the API."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the client loads when a store is opened
    import redis

from infra.redis_keys import RedisKeys
from infra.settings import Settings


def open_redis(settings: Settings) -> redis.Redis:
    import redis

    from infra.tls import redis_options

    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        **redis_options(settings),
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
            pipe.hset(key, mapping={event: str(count) for event, count in counts.items()})
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
        return {event: int(count) for event, count in raw.items()}

    def put_json(self, key: str, value: Any, ttl: int | None = None) -> None:
        self.r.set(key, json.dumps(value, default=str), ex=ttl)

    def get_json(self, key: str) -> Any:
        raw = self.r.get(key)
        return None if raw is None else json.loads(str(raw))

    def has_test_marker(self) -> bool:
        return bool(self.r.exists(self.keys.test_marker()))

    def mark_test_instance(self, owned: bool = False) -> bool:
        """Marks a database as the tests' own: when empty, or `owned` (the test profile
        started it). False, and no mark, otherwise."""
        if self.has_test_marker():
            return True
        if not owned and self.r.dbsize() > 0:
            return False
        self.r.set(self.keys.test_marker(), "community-platform-tests")
        return True

    def flush_test_db(self) -> None:
        """Empties a test database, keeping its marker; refuses one without the marker."""
        if not self.has_test_marker():
            raise RuntimeError(
                "refusing to flush this Redis database: it does not carry the test marker"
            )
        pipe = self.r.pipeline(transaction=True)
        pipe.flushdb()
        pipe.set(self.keys.test_marker(), "community-platform-tests")
        pipe.execute()

    def ping(self) -> float:
        start = time.perf_counter()
        self.r.ping()
        return (time.perf_counter() - start) * 1000.0

    def reachable(self) -> bool:
        """For callers that can do without Redis (a sync without cursors fetches in full)."""
        from redis.exceptions import RedisError

        try:
            self.r.ping()
        except RedisError:
            return False
        return True
