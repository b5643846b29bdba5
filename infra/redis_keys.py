"""The one definition of the Redis key layout, shared by pipeline and API.

Every key starts with the configured prefix so several deployments can share a server.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    prefix: str = "cp"

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # Figures computed by the pipeline, read by the API.
    def event_guest_counts(self) -> str:
        """Hash: event_id -> number of guests on the event's lists."""
        return self._k("figures", "event_guest_counts")

    def figures_meta(self) -> str:
        """Hash: when figures were last computed and by which run."""
        return self._k("figures", "meta")

    def community_summary(self) -> str:
        """JSON string: community-wide network and TDA summary."""
        return self._k("analytics", "community_summary")

    def snapshot(self, month: str) -> str:
        """JSON string: the analytics snapshot for one month (YYYY-MM)."""
        return self._k("analytics", "snapshot", month)

    def snapshots_index(self) -> str:
        """Sorted set of snapshot months, scored by yyyymm."""
        return self._k("analytics", "snapshots")

    def graph_layout(self) -> str:
        return self._k("analytics", "layout")

    def communities(self) -> str:
        """JSON string: communities of the current member graph (size, members, top members)."""
        return self._k("analytics", "communities")

    def analytics_meta(self) -> str:
        """Hash: when analytics were last computed, by which run, and with what bounds."""
        return self._k("analytics", "meta")

    def sync_cursor(self, source: str, scope: str) -> str:
        """String: the incremental cursor of one source (per organization or calendar)."""
        return self._k("sync", "cursor", source, scope)

    # Operations: written by the code location's run sensors, read by /health and /metrics.
    def run_successes(self) -> str:
        """Hash: job name -> JSON {run_id, at} of its last successful run."""
        return self._k("ops", "run_success")

    def run_failures(self) -> str:
        """Hash: job name -> JSON {run_id, at, step, error} of its last failed run."""
        return self._k("ops", "run_failure")

    def source_syncs(self) -> str:
        """Hash: source (luma, eventbrite, partiful) -> JSON {run_id, at} of its last
        successful import or sync."""
        return self._k("ops", "source_sync")

    def schema_version(self) -> str:
        """Integer: the version of the Redis document layout (see infra/migrations.py)."""
        return self._k("ops", "schema_version")

    def test_marker(self) -> str:
        """String: present only in a database the test profile owns (tests may wipe it)."""
        return self._k("test-instance-marker")

    # API concerns.
    def cache_generation(self) -> str:
        """Integer bumped by every write that changes served data; part of each cache key."""
        return self._k("api", "cache_generation")

    def response_cache(self, route: str, fingerprint: str) -> str:
        return self._k("api", "cache", route, fingerprint)

    def rate_limit(self, subject: str) -> str:
        """String: the GCRA theoretical arrival time (ms) of one caller."""
        return self._k("api", "ratelimit", subject)

    def ip_block(self, ip: str) -> str:
        """String with a TTL: the address is blocked until the key expires."""
        return self._k("api", "block", ip)

    def ip_abuse(self, ip: str) -> str:
        """Integer with a TTL: failed authentications and limit hits of an address."""
        return self._k("api", "abuse", ip)
