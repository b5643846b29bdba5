"""Prometheus figures of one app: request counters, latency, and the rendered exposition."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


@dataclass
class Telemetry:
    """One registry per app (tests build many apps in one process)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    rendered_at: float = 0.0
    rendered: bytes = b""

    def __post_init__(self) -> None:
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )

    async def exposition(self) -> bytes:
        """One rendering per second, however often scraped."""
        now = time.monotonic()
        if now - self.rendered_at > 1.0:
            self.rendered = await asyncio.to_thread(generate_latest, self.registry)
            self.rendered_at = now
        return self.rendered
