"""Incremental sync state in Redis, one JSON value per source and scope.

Eventbrite: scope = organization id, value maps event id -> when its attendees were last
fetched (the next fetch asks `changed_since` that time). Luma has no change feed: scope =
calendar id, value maps event id -> when its guest list was last fetched, and a list
fetched after the event ended plus `luma_settle_days` is final and not fetched again.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the client loads with the connection it is given
    import redis

from infra.redis_keys import RedisKeys


class CursorStore:
    def __init__(self, client: redis.Redis, keys: RedisKeys) -> None:
        self.r = client
        self.keys = keys

    def get(self, source: str, scope: str) -> dict[str, Any]:
        raw = self.r.get(self.keys.sync_cursor(source, scope))
        if raw is None:
            return {}
        try:
            value = json.loads(str(raw))
        except ValueError:
            return {}  # unreadable state means a full fetch, never a crash
        return value if isinstance(value, dict) else {}

    def update(self, source: str, scope: str, changes: dict[str, Any]) -> None:
        """Merges `changes` into the stored state (other events' cursors are kept)."""
        import redis

        key = self.keys.sync_cursor(source, scope)
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    try:
                        state = json.loads(str(raw)) if raw is not None else {}
                    except ValueError:
                        state = {}
                    state.update(changes)
                    pipe.multi()
                    pipe.set(key, json.dumps(state, sort_keys=True))
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def clear(self, source: str) -> int:
        """Forgets every cursor of a source (the next sync is a full one)."""
        pattern = self.keys.sync_cursor(source, "*")
        keys = list(self.r.scan_iter(match=pattern))
        return int(self.r.delete(*keys)) if keys else 0
