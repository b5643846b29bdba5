"""Identity resolution assets: candidate pairs -> clusters -> members -> member graph.

The first asset reads identities and attendance back from Neo4j (after the import load),
so it does not depend on how the import assets are shaped. Organizer decisions are read
from Neo4j on every run and applied again.
"""

import time
from datetime import UTC, datetime
from typing import Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    asset_check,
)

from assets.metadata import md_table
from domain.identity.pipeline import (
    Clusters,
    Members,
    Scored,
    cluster_violations,
    probability_histogram,
)
from infra.identity_store import IdentityStore
from resources.stores import Neo4jResource
from services.identity import (
    CorrectedDuringRunError,
    IdentityConfig,
    build_all,
    cluster_all,
    publish_all,
    score_all,
)


def _histogram_md(hist: list[dict[str, Any]]) -> MetadataValue:
    lines = ["| probability | pairs |", "|---|---|"]
    lines += [f"| {bucket['from']:.1f}–{bucket['to']:.1f} | {bucket['pairs']} |" for bucket in hist]
    return MetadataValue.md("\n".join(lines))


@asset(
    group_name="identity",
    compute_kind="polars",
    deps=[AssetKey("imported_graph")],
)
def identity_candidate_pairs(
    context: AssetExecutionContext, neo4j: Neo4jResource
) -> Output[Scored]:
    """Blocked candidate pairs with comparison levels and Fellegi–Sunter match probabilities."""
    with neo4j.store() as store:
        observations, scored = score_all(store, IdentityConfig.from_settings(neo4j.settings()))
    context.log.info(
        "identity: %s observations, %s candidate pairs", observations.height, scored.pairs.height
    )
    return Output(scored, metadata=_scored_metadata(observations.height, scored))


def _scored_metadata(observations: int, scored: Scored) -> dict[str, Any]:
    pairs = scored.pairs
    total = max(pairs.height, 1)
    decisions = pairs["decision"].value_counts() if pairs.height else pl.DataFrame()
    counts = {row["decision"]: int(row["count"]) for row in decisions.to_dicts()}
    hist = probability_histogram(pairs)
    return {
        "observations": observations,
        "candidate_pairs": pairs.height,
        "pairs_per_blocking_rule": MetadataValue.json(scored.pairs_per_rule),
        "pairs_auto_merge": counts.get("merge", 0),
        "pairs_suggested": counts.get("suggest", 0),
        "pairs_cannot_link": counts.get("cannot_link", 0),
        "share_auto_merge": round(counts.get("merge", 0) / total, 4),
        "share_suggested": round(counts.get("suggest", 0) / total, 4),
        "probability_histogram": _histogram_md(hist),
        "probability_histogram_json": MetadataValue.json(hist),
        "model_prior": round(scored.model.prior, 6),
        "review_labels_used": scored.model.review_labels,
        "review_kinds_answered": len(scored.model.review_answers),
        "review_thresholds": MetadataValue.json(scored.model.review_thresholds),
        "model_weights": MetadataValue.json(
            {
                key: [round(weight, 3) for weight in value]
                for key, value in scored.model.weights().items()
            }
        ),
    }


@asset(group_name="identity", compute_kind="python")
def identity_clusters(
    context: AssetExecutionContext, identity_candidate_pairs: Scored, neo4j: Neo4jResource
) -> Output[Clusters]:
    """Records grouped into people; must-link and cannot-link decisions applied again."""
    with neo4j.store() as store:
        clusters, decisions = cluster_all(store, identity_candidate_pairs)
    n_clusters = clusters.assignment["cluster"].n_unique()
    n_obs = clusters.assignment.height
    reasons = clusters.merges["reason"].value_counts().to_dicts() if clusters.merges.height else []
    context.log.info(
        "identity clusters: %s observations in %s clusters (%s merged), %s suggestions for review",
        n_obs,
        n_clusters,
        n_obs - n_clusters,
        clusters.suggestions.height,
    )
    return Output(
        clusters,
        metadata={
            "observations": n_obs,
            "clusters": n_clusters,
            "merged_records": n_obs - n_clusters,
            "merges": MetadataValue.json({row["reason"]: int(row["count"]) for row in reasons}),
            "suggestions": clusters.suggestions.height,
            "decisions_applied": decisions,
            "must_links_skipped": clusters.skipped_must_links,
            "merges_blocked_by_constraints": clusters.blocked_merges,
            "share_records_auto_merged": round((n_obs - n_clusters) / max(n_obs, 1), 4),
        },
    )


@asset_check(
    asset=identity_clusters,
    blocking=True,
    additional_ins={"identity_candidate_pairs": AssetIn("identity_candidate_pairs")},
)
def clusters_respect_cannot_links(
    identity_candidate_pairs: Scored, identity_clusters: Clusters
) -> AssetCheckResult:
    """No cluster holds two records that must stay apart (decisions, accounts, guest lists)."""
    found = cluster_violations(identity_candidate_pairs, identity_clusters)
    return AssetCheckResult(
        passed=not found,
        metadata={"violations": len(found), "examples": MetadataValue.json(found[:20])},
    )


@asset_check(
    asset=identity_clusters,
    blocking=True,
    additional_ins={"identity_candidate_pairs": AssetIn("identity_candidate_pairs")},
)
def every_observation_in_one_cluster(
    identity_candidate_pairs: Scored, identity_clusters: Clusters
) -> AssetCheckResult:
    expected = set(identity_candidate_pairs.features["observation_id"].to_list())
    assigned = identity_clusters.assignment["observation_id"]
    dupes = assigned.len() - assigned.n_unique()
    missing = len(expected - set(assigned.to_list()))
    return AssetCheckResult(
        passed=dupes == 0 and missing == 0,
        metadata={"observations": len(expected), "duplicated": dupes, "missing": missing},
    )


@asset(group_name="identity", compute_kind="polars")
def identity_members(
    context: AssetExecutionContext,
    identity_candidate_pairs: Scored,
    identity_clusters: Clusters,
    neo4j: Neo4jResource,
) -> Output[Members]:
    """Stable member ids, golden records with provenance, merge explanations, suggestions."""
    config = IdentityConfig.from_settings(neo4j.settings())
    with neo4j.store() as store:
        members = build_all(store, identity_candidate_pairs, identity_clusters, config)
    context.log.info(
        "identity members: %s members (%s new ids, %s retired, %s split)",
        members.members.height,
        len(members.created),
        len(members.redirects),
        len(members.split_from),
    )
    return Output(
        members,
        metadata={
            "members": members.members.height,
            "new_member_ids": len(members.created),
            "retired_member_ids": len(members.redirects),
            "revived_member_ids": len(members.revived),
            "splits": len(members.split_from),
            "explanations": members.explanations.height,
            "suggestions": members.suggestions.height,
            "preview": md_table(
                members.members.select("member_id", "display_name", "email", "observation_count")
            ),
        },
    )


@asset(group_name="identity", compute_kind="neo4j")
def member_graph(
    context: AssetExecutionContext,
    identity_candidate_pairs: Scored,
    identity_clusters: Clusters,
    identity_members: Members,
    neo4j: Neo4jResource,
) -> MaterializeResult:
    """Members, HAS_IDENTITY, handles, explanations and suggestions written to Neo4j.

    Written holding every member's lock; a result that missed corrections made while it
    was computed fails the run instead of undoing them.
    """
    record = context.instance.get_run_record_by_id(context.run.run_id)
    started = datetime.fromtimestamp(
        record.start_time if record and record.start_time else time.time(), UTC
    )
    with neo4j.store() as store:
        try:
            report = publish_all(
                store,
                identity_candidate_pairs,
                identity_clusters,
                identity_members,
                context.run.run_id,
                started,
            )
        except CorrectedDuringRunError as exc:
            raise Failure(str(exc)) from exc
        counts = store.counts()
    context.log.info(
        "member graph: %s members written, %s identities linked, %s retired",
        report.members_written,
        report.identities_linked,
        report.retired,
    )
    return MaterializeResult(
        metadata={
            **report.as_dict(),
            "write_seconds": MetadataValue.json(
                {key: round(value, 3) for key, value in report.seconds.items()}
            ),
            **{f"graph_{key}": value for key, value in counts.items()},
        }
    )


@asset_check(asset=member_graph, blocking=True)
def member_graph_has_no_dangling_members(neo4j: Neo4jResource) -> AssetCheckResult:
    """Every identity belongs to exactly one member; no member without identities."""
    with neo4j.store() as store:
        issues = IdentityStore(store).membership_issues()
        empty = store.run(
            "MATCH (m:Member) WHERE NOT (m)-[:HAS_IDENTITY]->() RETURN count(m) AS n"
        )[0]["n"]
        dangling_alias = store.run(
            "MATCH (a:MemberAlias) WHERE NOT (a)-[:REDIRECTS_TO]->(:Member) RETURN count(a) AS n"
        )[0]["n"]
    return AssetCheckResult(
        passed=not issues and empty == 0 and dangling_alias == 0,
        metadata={
            "identities_not_in_exactly_one_member": len(issues),
            "members_without_identities": empty,
            "aliases_without_target": dangling_alias,
            "examples": MetadataValue.json(issues[:10]),
        },
    )
