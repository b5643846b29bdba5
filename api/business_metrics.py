"""Business figures for /metrics, read when scraped (at most once a second): members,
open merge suggestions, and the age of each job's last success and each source's last
sync. Counts and timestamps only: nothing personal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from infra import graph_schema as gs
from infra.run_status import RunStatusStore


class BusinessCollector(Collector):
    def __init__(self, state: Callable[[], Any]) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self.state()
        if state is None:
            return
        up = GaugeMetricFamily(
            "community_business_metrics_up", "1 when the store could be read", labels=["store"]
        )
        yield from self._graph_figures(state, up)
        yield from self._run_figures(state, up)
        yield up

    @staticmethod
    def _graph_figures(state: Any, up: GaugeMetricFamily) -> Iterator[GaugeMetricFamily]:
        try:
            members = state.graph.run(f"MATCH (m:{gs.MEMBER}) RETURN count(m) AS n")[0]["n"]
            open_suggestions = state.graph.run(gs.COUNT_SUGGESTIONS, member=None)[0]["n"]
        except Exception:  # a scrape must not fail because Neo4j is away
            up.add_metric(["neo4j"], 0)
            return
        up.add_metric(["neo4j"], 1)
        yield GaugeMetricFamily("community_members", "Members in the graph", value=members)
        yield GaugeMetricFamily(
            "community_open_merge_suggestions",
            "Merge suggestions waiting for review",
            value=open_suggestions,
        )

    @staticmethod
    def _run_figures(state: Any, up: GaugeMetricFamily) -> Iterator[GaugeMetricFamily]:
        """Pipeline runs and source syncs, as the code location's sensors recorded them."""
        store = RunStatusStore(state.figures.r, state.figures.keys)
        try:
            successes, failures, syncs = store.successes(), store.failures(), store.source_syncs()
        except Exception:
            up.add_metric(["redis"], 0)
            return
        up.add_metric(["redis"], 1)
        now = datetime.now(UTC)
        last = GaugeMetricFamily(
            "community_job_last_success_timestamp_seconds", "Last successful run", labels=["job"]
        )
        age = GaugeMetricFamily(
            "community_job_last_success_age_seconds", "Since the last success", labels=["job"]
        )
        for job, outcome in sorted(successes.items()):
            last.add_metric([job], outcome.at.timestamp())
            age.add_metric([job], (now - outcome.at).total_seconds())
        failing = GaugeMetricFamily(
            "community_job_failing",
            "1 when the job's last run failed after its last success",
            labels=["job"],
        )
        for job, failure in sorted(failures.items()):
            failing.add_metric([job], int(job not in successes or successes[job].at < failure.at))
        src_last = GaugeMetricFamily(
            "community_source_last_sync_timestamp_seconds",
            "Last successful import or sync of a source",
            labels=["source"],
        )
        src_age = GaugeMetricFamily(
            "community_source_last_sync_age_seconds",
            "Since the source's last successful import or sync",
            labels=["source"],
        )
        for source, outcome in sorted(syncs.items()):
            src_last.add_metric([source], outcome.at.timestamp())
            src_age.add_metric([source], (now - outcome.at).total_seconds())
        yield from (last, age, failing, src_last, src_age)
