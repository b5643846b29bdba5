"""Identity resolution as the pipeline and the corrections run it.

Both resolve records with the one pure implementation in `domain.identity.pipeline`;
this module only gathers what it needs from the graph (`IdentityStore` reads) and
writes the result back (`IdentityStore.write`). The pipeline runs the three steps one
per asset, over every record; a correction re-resolves the records of the members it
touches, with the stored model and statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import polars as pl

from domain.identity.golden import DEFAULT_TRUST
from domain.identity.learning import apply_reviews
from domain.identity.pipeline import (
    Clusters,
    Members,
    Scored,
    Thresholds,
    build_members,
    cluster_scored,
    resolve,
    score_candidates,
)
from domain.identity.scoring import MatchModel
from infra.identity_store import IdentityStore, WriteReport
from infra.locks import MemberLocks, unseen_changes
from infra.neo4j_store import GraphStore
from infra.settings import Settings


@dataclass(frozen=True)
class IdentityConfig:
    """The settings identity resolution reads, taken once from `Settings`."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    trust_order: tuple[str, ...] = DEFAULT_TRUST

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityConfig:
        return cls(settings.identity.to_config(), tuple(settings.identity_source_trust))


def thresholds_for(settings: Settings, model: MatchModel | None) -> Thresholds:
    """The configured thresholds, moved where organizers' answers supported it."""
    return learned_thresholds(settings.identity.to_config(), model)


def learned_thresholds(base: Thresholds, model: MatchModel | None) -> Thresholds:
    learned = model.review_thresholds if model is not None else {}
    return replace(
        base,
        merge_at=learned.get("merge_at", base.merge_at),
        suggest_at=learned.get("suggest_at", base.suggest_at),
        merge_without_identifier_at=learned.get(
            "merge_without_identifier_at", base.merge_without_identifier_at
        ),
    )


# --- the pipeline: every record, one step per asset ----------------------------------


def score_all(graph: GraphStore, config: IdentityConfig) -> tuple[pl.DataFrame, Scored]:
    """EM on every record, then what organizers' answers taught (weights and thresholds)."""
    store = IdentityStore(graph)
    observations = store.load_observations()
    labels = store.labelled_pairs()
    scored = score_candidates(observations, config.thresholds)
    return observations, apply_reviews(scored, labels, config.thresholds)


def cluster_all(graph: GraphStore, scored: Scored) -> tuple[Clusters, int]:
    """Clusters with every organizer decision applied again; also how many there were."""
    decisions = IdentityStore(graph).load_decisions()
    return cluster_scored(scored, decisions), decisions.height


def build_all(
    graph: GraphStore, scored: Scored, clusters: Clusters, config: IdentityConfig
) -> Members:
    """Stable member ids (kept from the graph's assignment), golden records, explanations."""
    store = IdentityStore(graph)
    return build_members(
        store.load_observations(),
        scored,
        clusters,
        previous=store.load_assignment(),
        known_ids=store.known_member_ids(),
        trust_order=config.trust_order,
        retired=store.load_retired(),
    )


class CorrectedDuringRunError(RuntimeError):
    """Members were corrected while a pipeline run computed; its result would undo that."""


def publish_all(
    graph: GraphStore,
    scored: Scored,
    clusters: Clusters,
    members: Members,
    run_id: str,
    started: datetime,
) -> WriteReport:
    """Writes a full run's result, holding every member lock (no correction meanwhile).

    A result that missed corrections made since `started` is refused, not written over them.
    """
    graph.ensure_schema()
    with MemberLocks(graph).everything():
        unseen = unseen_changes(graph, members, started)
        if unseen:
            raise CorrectedDuringRunError(
                "members were corrected while this run computed; rerun to include "
                f"the corrections ({'; '.join(unseen[:3])})"
            )
        return IdentityStore(graph).write(
            scored, clusters, members, run={"run_id": run_id, "kind": "pipeline"}
        )


# --- corrections: only the records of the touched members -----------------------------


@dataclass
class ScopedInputs:
    """What resolving some members' records needs: their records, decisions, previous
    assignment, and the stored model and statistics of the last full run."""

    observations: pl.DataFrame
    decisions: pl.DataFrame
    previous: pl.DataFrame
    known_ids: set[str]
    thresholds: Thresholds
    model: MatchModel
    stats: pl.DataFrame
    related: pl.DataFrame
    trust_order: tuple[str, ...]
    retired: dict[str, list[str]]

    def resolve(self) -> tuple[Scored, Clusters, Members]:
        return resolve(
            self.observations,
            decisions=self.decisions,
            previous=self.previous,
            known_ids=self.known_ids,
            thresholds=self.thresholds,
            model=self.model,
            stats=self.stats,
            related=self.related,
            trust_order=self.trust_order,
            retired=self.retired,
        )


def scoped_inputs(
    store: IdentityStore, member_ids: Sequence[str], config: IdentityConfig
) -> ScopedInputs:
    """What resolving these members' records needs, read from the graph."""
    assignment = store.load_assignment(list(member_ids))
    obs_ids = assignment["observation_id"].to_list()
    observations = store.load_observations(obs_ids)
    model = store.load_model() or MatchModel()
    return ScopedInputs(
        observations=observations,
        decisions=store.load_decisions(obs_ids),
        previous=assignment,
        known_ids=store.known_member_ids(),
        thresholds=learned_thresholds(config.thresholds, model),
        model=model,
        stats=store.load_stats(obs_ids),
        related=store.related_context(observations["event_id"].drop_nulls().unique().to_list()),
        trust_order=config.trust_order,
        retired=store.load_retired(obs_ids),
    )


def re_resolve(
    graph: GraphStore,
    member_ids: Sequence[str],
    config: IdentityConfig,
    run: dict[str, Any] | None = None,
) -> tuple[Members, WriteReport]:
    """Re-resolves the records of these members and writes only what they touch."""
    store = IdentityStore(graph)
    scored, clusters, members = scoped_inputs(store, member_ids, config).resolve()
    report = store.write(scored, clusters, members, scope_member_ids=list(member_ids), run=run)
    return members, report
