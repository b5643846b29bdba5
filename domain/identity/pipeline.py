"""The identity-resolution pipeline as three pure steps: score, cluster, build members.

The Dagster assets run the steps one per asset; an organizer's action reruns all three
on the records of the affected members only, with the stored model and statistics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from domain.identity.blocking import all_pairs, candidate_pairs
from domain.identity.clustering import cluster, violations
from domain.identity.features import event_groups, prepare_features, related_events
from domain.identity.golden import DEFAULT_TRUST, golden_records
from domain.identity.scoring import (
    COMPARISONS,
    LEVELS,
    MatchModel,
    apply_guards,
    compare,
    encode,
    estimate_u,
    fit_em,
    name_people_reference,
    random_pairs,
    score,
    weight_columns,
)
from domain.identity.stable_ids import assign_ids

DECISIONS_SCHEMA: dict[str, pl.DataType] = {
    "decision_id": pl.String(),
    "kind": pl.String(),  # must_link | cannot_link
    "a": pl.String(),  # observation ids
    "b": pl.String(),
    "created_at": pl.Datetime("us", "UTC"),
}
ASSIGNMENT_SCHEMA: dict[str, pl.DataType] = {
    "observation_id": pl.String(),
    "member_id": pl.String(),
}


@dataclass(frozen=True)
class Thresholds:
    """Calibrated on the FEBRL benchmark's calibration half (`bench.identity_febrl`):
    the highest F1 with pairwise precision ≥ 0.99 and ≤ 5 open suggestions per 100 people."""

    merge_at: float = 0.95
    suggest_at: float = 0.9
    merge_without_identifier_at: float = 0.95  # no shared address/phone/handle/account
    common_name_min: int = 5
    exhaustive_below: int = 400  # score every pair when there are this few records
    u_sample_pairs: int = 300_000


@dataclass
class Scored:
    features: pl.DataFrame
    pairs: pl.DataFrame  # i, j, l_*, w_*, match_weight, match_probability, decision, guard
    model: MatchModel
    pairs_per_rule: dict[str, int] = field(default_factory=dict)


@dataclass
class Clusters:
    assignment: pl.DataFrame  # observation_id, cluster
    merges: pl.DataFrame  # i, j, reason
    suggestions: pl.DataFrame  # i, j
    cannot_links: list[tuple[int, int]]
    skipped_must_links: int
    blocked_merges: int


@dataclass
class Members:
    assignment: pl.DataFrame  # observation_id, member_id
    members: pl.DataFrame
    provenance: pl.DataFrame
    explanations: pl.DataFrame  # one row per merge edge
    suggestions: pl.DataFrame
    redirects: dict[str, str]
    redirect_reason: dict[str, str]
    split_from: dict[str, list[str]]
    created: list[str]
    revived: list[str] = field(default_factory=list)


def score_candidates(
    observations: pl.DataFrame,
    thresholds: Thresholds = Thresholds(),
    model: MatchModel | None = None,
    stats: pl.DataFrame | None = None,
    related: pl.DataFrame | None = None,
) -> Scored:
    """Features, blocking, comparison levels and probabilities; trains the model when none is given."""
    obs = observations.unique("observation_id", keep="last").sort("observation_id")
    features = prepare_features(obs, stats=stats, common_name_min=thresholds.common_name_min)
    rel = related if related is not None else related_events(features)
    if features.height <= thresholds.exhaustive_below:
        pairs, per_rule = all_pairs(features.height), {"all_pairs": 0}
        per_rule["all_pairs"] = pairs.height
    else:
        pairs, per_rule = candidate_pairs(features, event_group=event_groups(features, rel))
    enc = encode(features, rel)
    compared = compare(features, pairs, rel, encoded=enc)
    if model is None:
        sample = random_pairs(features.height, thresholds.u_sample_pairs)
        u = estimate_u(compare(features, sample, rel, encoded=enc))
        model = fit_em(compared, u)
        model.name_people_reference = name_people_reference(features)
    scored = apply_guards(
        score(compared, model),
        thresholds.merge_at,
        thresholds.suggest_at,
        thresholds.merge_without_identifier_at,
    )
    return Scored(features, scored, model, per_rule)


def decision_pairs(
    features: pl.DataFrame, decisions: pl.DataFrame
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Must-links (in the order they were made) and cannot-links as row positions."""
    if decisions.height == 0:
        return [], []
    pos = features.select("observation_id").with_row_index("pos")
    d = (
        decisions.sort("created_at", "decision_id")
        .join(pos.rename({"observation_id": "a", "pos": "pa"}), on="a")
        .join(pos.rename({"observation_id": "b", "pos": "pb"}), on="b")
    )
    must = d.filter(pl.col("kind") == "must_link")
    cannot = d.filter(pl.col("kind") == "cannot_link")
    return (
        list(zip(must["pa"].to_list(), must["pb"].to_list(), strict=True)),
        list(zip(cannot["pa"].to_list(), cannot["pb"].to_list(), strict=True)),
    )


def cluster_scored(scored: Scored, decisions: pl.DataFrame | None = None) -> Clusters:
    decisions = decisions if decisions is not None else pl.DataFrame(schema=DECISIONS_SCHEMA)
    must, cannot = decision_pairs(scored.features, decisions)
    result = cluster(scored.features, scored.pairs, must, cannot)
    assignment = pl.DataFrame(
        {"observation_id": scored.features["observation_id"], "cluster": result.labels},
        schema={"observation_id": pl.String, "cluster": pl.Int64},
    )
    merges = pl.DataFrame(
        [(i, j, r) for i, j, r in result.merges],
        schema={"i": pl.UInt32, "j": pl.UInt32, "reason": pl.String},
        orient="row",
    )
    sugg = pl.DataFrame(result.suggestions, schema={"i": pl.UInt32, "j": pl.UInt32}, orient="row")
    return Clusters(
        assignment,
        merges,
        sugg,
        cannot,
        len(result.skipped_must_links),
        result.blocked_merges,
    )


def cluster_violations(scored: Scored, clusters: Clusters) -> list[str]:
    labels = clusters.assignment["cluster"].to_list()
    forced = set(clusters.merges.filter(pl.col("reason") == "must_link")["i"].to_list())
    found = violations(scored.features, labels, clusters.cannot_links)
    if not forced:
        return found
    # Organizer must-links may override the automatic constraints, never explicit ones.
    forced_labels = {labels[i] for i in forced}
    return [
        v
        for v in found
        if v.startswith("cannot-link") or int(v.split()[1].rstrip(":")) not in forced_labels
    ]


def with_ids(features: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """Adds the observation ids `a` and `b` of row positions `i` and `j`."""
    ids = features.select(pl.col("observation_id")).with_row_index("i")
    return pairs.join(
        ids.select(pl.col("i").cast(pl.UInt32), pl.col("observation_id").alias("a")), on="i"
    ).join(
        ids.select(pl.col("i").cast(pl.UInt32).alias("j"), pl.col("observation_id").alias("b")),
        on="j",
    )


def _pair_rows(scored: Scored, pairs: pl.DataFrame) -> pl.DataFrame:
    """Scored rows (with ids) for the given (i, j) pairs; pairs never compared are compared now."""
    known = pairs.join(scored.pairs, on=["i", "j"], how="inner")
    missing = pairs.join(scored.pairs.select("i", "j"), on=["i", "j"], how="anti")
    if missing.height:
        extra = score(compare(scored.features, missing.select("i", "j")), scored.model)
        extra = extra.with_columns(
            pl.lit("must_link").alias("decision"), pl.lit(None, dtype=pl.String).alias("guard")
        )
        extra = missing.join(extra, on=["i", "j"])
        known = pl.concat([known, extra.select(known.columns)])
    return with_ids(scored.features, known.with_columns(weight_columns(scored.model)))


def _evidence_expr() -> pl.Expr:
    parts = []
    for c in COMPARISONS:
        names = LEVELS[c]
        level_name = pl.lit(None, dtype=pl.String)
        for lv in range(len(names) - 1, -1, -1):
            level_name = (
                pl.when(pl.col(f"l_{c}") == lv).then(pl.lit(names[lv])).otherwise(level_name)
            )
        parts.append(
            pl.when(pl.col(f"l_{c}") >= 0).then(
                pl.format("{} {} ({})", pl.lit(c), level_name, pl.col(f"w_{c}").round(2))
            )
        )
    return pl.concat_str(
        [
            pl.concat_str(parts, separator="; ", ignore_nulls=True),
            pl.format(" -> p={}", pl.col("match_probability").round(6)),
        ]
    )


def build_members(
    observations: pl.DataFrame,
    scored: Scored,
    clusters: Clusters,
    previous: pl.DataFrame | None = None,
    known_ids: set[str] | None = None,
    trust_order: tuple[str, ...] = DEFAULT_TRUST,
    retired: Mapping[str, Sequence[str]] | None = None,
) -> Members:
    """`retired`: retired member id -> records it held (such ids are revived, see stable_ids)."""
    previous = previous if previous is not None else pl.DataFrame(schema=ASSIGNMENT_SCHEMA)
    ids = assign_ids(clusters.assignment, previous, known_ids or set(), retired)
    mapping = pl.DataFrame(
        {"cluster": list(ids.member_of_cluster), "member_id": list(ids.member_of_cluster.values())},
        schema={"cluster": pl.Int64, "member_id": pl.String},
    )
    assignment = clusters.assignment.join(mapping, on="cluster").select(
        "observation_id", "member_id"
    )
    obs = observations.unique("observation_id", keep="last")
    members, provenance = golden_records(obs, assignment, trust_order)
    pos_member = (
        scored.features.select("observation_id")
        .with_row_index("i")
        .join(assignment, on="observation_id")
    )
    explained = _pair_rows(scored, clusters.merges.select("i", "j"))
    explained = (
        clusters.merges.join(explained, on=["i", "j"])
        .join(pos_member.select(pl.col("i").cast(pl.UInt32), "member_id"), on="i")
        .with_columns(_evidence_expr().alias("evidence"))
    )
    sugg = _pair_rows(scored, clusters.suggestions.select("i", "j"))
    sugg = (
        sugg.join(
            pos_member.select(pl.col("i").cast(pl.UInt32), pl.col("member_id").alias("member_a")),
            on="i",
        )
        .join(
            pos_member.select(
                pl.col("i").cast(pl.UInt32).alias("j"), pl.col("member_id").alias("member_b")
            ),
            on="j",
        )
        .with_columns(_evidence_expr().alias("evidence"))
    )
    sugg = sugg.with_columns(
        pl.concat_str(["a", "b"], separator="|")
        .map_elements(
            lambda s: "sug_" + hashlib.sha1(s.encode()).hexdigest()[:16], return_dtype=pl.String
        )
        .alias("suggestion_id")
    )
    return Members(
        assignment=assignment,
        members=members,
        provenance=provenance,
        explanations=explained,
        suggestions=sugg,
        redirects=ids.redirects,
        redirect_reason=ids.redirect_reason,
        split_from=ids.split_from,
        created=ids.created,
        revived=ids.revived,
    )


def resolve(
    observations: pl.DataFrame,
    decisions: pl.DataFrame | None = None,
    previous: pl.DataFrame | None = None,
    known_ids: set[str] | None = None,
    thresholds: Thresholds = Thresholds(),
    model: MatchModel | None = None,
    stats: pl.DataFrame | None = None,
    related: pl.DataFrame | None = None,
    trust_order: tuple[str, ...] = DEFAULT_TRUST,
    retired: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Scored, Clusters, Members]:
    scored = score_candidates(observations, thresholds, model, stats, related)
    clusters = cluster_scored(scored, decisions)
    members = build_members(
        observations, scored, clusters, previous, known_ids, trust_order, retired
    )
    return scored, clusters, members


def probability_histogram(pairs: pl.DataFrame, bins: int = 10) -> list[dict[str, Any]]:
    edges = [k / bins for k in range(bins + 1)]
    counts = [0] * bins
    if pairs.height:
        b = (pairs["match_probability"] * bins).floor().clip(0, bins - 1).cast(pl.Int64)
        for k, n in b.value_counts().iter_rows():
            counts[int(k)] = int(n)
    return [
        {"from": round(edges[k], 2), "to": round(edges[k + 1], 2), "pairs": counts[k]}
        for k in range(bins)
    ]
