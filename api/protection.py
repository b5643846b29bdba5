"""Redis-backed protection of the API: rate limits, address blocks and the response cache.

Everything here is async (redis.asyncio) so no request waits on a socket inside the
event loop. Redis is optional for reads: a `RedisGate` stops calling a server that
failed for `REDIS_RETRY_SECONDS`, the cache passes through, rate limits fail open or
closed by setting, and `/health` says `degraded`.

Rate limiting is GCRA (generic cell rate algorithm) in one Lua script, so a check is a
single atomic round trip with no window boundary to exploit; the same script refuses
blocked addresses and counts the failures that lead to a block.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
import structlog

from infra.redis_keys import RedisKeys
from infra.settings import Settings
from infra.tls import redis_options

log = structlog.get_logger(__name__)

# KEYS: tat, block, abuse. ARGV: limit per period, period s, store (0 = peek), abuse
# threshold, abuse window s, block s. Returns {allowed, remaining, retry_after_ms,
# reset_ms, blocked_ms}.
GCRA = """
local blocked = redis.call('PTTL', KEYS[2])
if blocked > 0 then return {0, 0, blocked, blocked, blocked} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2]) * 1000
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if allow_at > now then
  if ARGV[3] == '1' then
    local n = redis.call('INCR', KEYS[3])
    if n == 1 then redis.call('EXPIRE', KEYS[3], tonumber(ARGV[5])) end
    if n >= tonumber(ARGV[4]) then
      redis.call('SET', KEYS[2], '1', 'EX', tonumber(ARGV[6]))
      redis.call('DEL', KEYS[3])
    end
  end
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now), 0}
end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
end
local remaining = math.floor((now + period - new_tat) / interval)
return {1, remaining, 0, math.ceil(new_tat - now), 0}
"""

# KEYS: block, abuse. ARGV: threshold, window s, block s. Counts one failure of an address.
RECORD_ABUSE = """
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2])) end
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'EX', tonumber(ARGV[3]))
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""


class RedisDownError(Exception):
    """Redis is unavailable (or was, within the retry interval)."""


class RedisGate:
    """An async Redis client that stops trying for a while after a failure."""

    def __init__(self, settings: Settings) -> None:
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            settings.redis_url,
            decode_responses=False,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            max_connections=64,
            **redis_options(settings),
        )
        self.keys = RedisKeys(settings.redis_key_prefix)
        self.retry_seconds = settings.redis_retry_seconds
        self.down_until = 0.0
        self.generation_dirty = False  # a data change happened while Redis was down
        self._gcra = self.client.register_script(GCRA)
        self._abuse = self.client.register_script(RECORD_ABUSE)

    @property
    def available(self) -> bool:
        return time.monotonic() >= self.down_until

    def failed(self, exc: BaseException) -> RedisDownError:
        if self.available:
            log.warning("redis unavailable; degrading", error=type(exc).__name__)
        self.down_until = time.monotonic() + self.retry_seconds
        return RedisDownError()

    async def call(self, coro_fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.available:
            raise RedisDownError()
        try:
            result = await coro_fn(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            raise self.failed(exc) from exc
        if self.generation_dirty:
            self.generation_dirty = False
            await self.client.incr(self.keys.cache_generation())
        return result

    async def close(self) -> None:
        await self.client.aclose()


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds
    reset: int  # seconds until the budget is whole again
    blocked: bool = False
    degraded: bool = False

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, self.retry_after))
        return out


class Limiter:
    """GCRA limits per subject, with automatic blocking of abusive addresses."""

    def __init__(self, gate: RedisGate, settings: Settings) -> None:
        self.gate = gate
        self.fail_open = settings.rate_limit_fail_open
        self.threshold = settings.ip_block_threshold
        self.window = settings.ip_block_window_seconds
        self.block_seconds = settings.ip_block_seconds

    async def check(self, subject: str, ip: str, limit: int, store: bool = True) -> Verdict:
        keys = self.gate.keys
        try:
            allowed, remaining, retry_ms, reset_ms, blocked_ms = await self.gate.call(
                self.gate._gcra,
                keys=[keys.rate_limit(subject), keys.ip_block(ip), keys.ip_abuse(ip)],
                args=[
                    limit,
                    60,
                    "1" if store else "0",
                    self.threshold,
                    self.window,
                    self.block_seconds,
                ],
            )
        except RedisDownError:
            return Verdict(self.fail_open, limit, limit, 5, 0, degraded=True)
        return Verdict(
            bool(allowed),
            limit,
            int(remaining),
            math.ceil(int(retry_ms) / 1000),
            math.ceil(int(reset_ms) / 1000),
            blocked=int(blocked_ms) > 0,
        )

    async def record_failure(self, ip: str) -> None:
        keys = self.gate.keys
        try:
            await self.gate.call(
                self.gate._abuse,
                keys=[keys.ip_block(ip), keys.ip_abuse(ip)],
                args=[self.threshold, self.window, self.block_seconds],
            )
        except RedisDownError:
            return

    async def blocks(self) -> list[dict[str, Any]]:
        out = []
        pattern = self.gate.keys.ip_block("*")
        head = len(self.gate.keys.ip_block(""))
        async for key in self.gate.client.scan_iter(match=pattern, count=500):
            ttl = await self.gate.client.ttl(key)
            if ttl > 0:
                out.append({"ip": key.decode()[head:], "expires_in_seconds": int(ttl)})
        return sorted(out, key=lambda b: str(b["ip"]))

    async def lift(self, ip: str) -> bool:
        keys = self.gate.keys
        removed = await self.gate.client.delete(keys.ip_block(ip), keys.ip_abuse(ip))
        return bool(removed)


class ClientAddress:
    """The caller's address: X-Forwarded-For is believed only from configured proxies."""

    def __init__(self, trusted: list[str]) -> None:
        self.networks = [ipaddress.ip_network(network, strict=False) for network in trusted]

    def _trusted(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in network for network in self.networks)

    def resolve(self, peer: str, forwarded_for: str | None) -> str:
        if not forwarded_for or not self._trusted(peer):
            return peer
        # Right to left: the first hop that is not one of our proxies is the client.
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer


class ResponseCache:
    """JSON bodies stored as bytes under the data generation; served without re-encoding.

    A stored value is `<generation>\\n<body>`; one MGET reads the current generation and
    the value, so a hit costs a single round trip. While Redis is away the last bodies
    served stay available in process memory, so reads keep working.
    """

    def __init__(self, gate: RedisGate, ttl: int, fallback_size: int = 256) -> None:
        self.gate = gate
        self.ttl = ttl
        self.fallback: OrderedDict[str, bytes] = OrderedDict()
        self.fallback_size = fallback_size

    def key(self, route: str, params: dict[str, Any]) -> str:
        text = json.dumps(params, sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        return self.gate.keys.response_cache(route, digest)

    def _remember(self, key: str, body: bytes) -> None:
        self.fallback[key] = body
        self.fallback.move_to_end(key)
        while len(self.fallback) > self.fallback_size:
            self.fallback.popitem(last=False)

    async def get(self, key: str) -> tuple[bytes | None, bytes | None, bool]:
        """(body or None, generation, degraded)."""
        if self.ttl <= 0:
            return None, None, False
        try:
            gen, value = await self.gate.call(
                self.gate.client.mget, self.gate.keys.cache_generation(), key
            )
        except RedisDownError:
            return self.fallback.get(key), None, True
        gen = gen or b"0"
        if value is not None:
            stored_gen, _, body = bytes(value).partition(b"\n")
            if stored_gen == gen:
                return body, gen, False
        return None, gen, False

    async def put(self, key: str, generation: bytes | None, body: bytes) -> None:
        self._remember(key, body)
        if self.ttl <= 0 or generation is None:
            return
        try:
            await self.gate.call(self.gate.client.set, key, generation + b"\n" + body, ex=self.ttl)
        except RedisDownError:
            return

    async def bump(self) -> None:
        """Invalidates every cached response; remembered for later when Redis is away."""
        self.fallback.clear()
        try:
            await self.gate.call(self.gate.client.incr, self.gate.keys.cache_generation())
        except RedisDownError:
            self.gate.generation_dirty = True
