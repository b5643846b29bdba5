"""The identity-resolution pipeline as three pure steps: score, cluster, build members.

`resolve` is the one implementation of "resolve these observations". The Dagster assets
run its steps one per asset (through `services.identity`); an organizer's correction
calls `resolve` on the records of the affected members only, with the stored model and
statistics (`services.identity.re_resolve`).
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
        u_probs = estimate_u(compare(features, sample, rel, encoded=enc))
        model = fit_em(compared, u_probs)
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
    placed = (
        decisions.sort("created_at", "decision_id")
        .join(pos.rename({"observation_id": "a", "pos": "pa"}), on="a")
        .join(pos.rename({"observation_id": "b", "pos": "pb"}), on="b")
    )
    must = placed.filter(pl.col("kind") == "must_link")
    cannot = placed.filter(pl.col("kind") == "cannot_link")
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
        [(index, jjj, row) for index, jjj, row in result.merges],
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
    forced_labels = {labels[index] for index in forced}
    return [
        value
        for value in found
        if value.startswith("cannot-link") or int(value.split()[1].rstrip(":")) not in forced_labels
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
    for name in COMPARISONS:
        names = LEVELS[name]
        level_name = pl.lit(None, dtype=pl.String)
        for lv in range(len(names) - 1, -1, -1):
            level_name = (
                pl.when(pl.col(f"l_{name}") == lv).then(pl.lit(names[lv])).otherwise(level_name)
            )
        parts.append(
            pl.when(pl.col(f"l_{name}") >= 0).then(
                pl.format("{} {} ({})", pl.lit(name), level_name, pl.col(f"w_{name}").round(2))
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
        .select(pl.col("i").cast(pl.UInt32), "member_id")
    )
    return Members(
        assignment=assignment,
        members=members,
        provenance=provenance,
        explanations=_explanations(scored, clusters, pos_member),
        suggestions=_suggestions(scored, clusters, pos_member),
        redirects=ids.redirects,
        redirect_reason=ids.redirect_reason,
        split_from=ids.split_from,
        created=ids.created,
        revived=ids.revived,
    )


def _explanations(scored: Scored, clusters: Clusters, pos_member: pl.DataFrame) -> pl.DataFrame:
    """One row per merge edge: the pair's levels, weights and evidence, and its member."""
    explained = _pair_rows(scored, clusters.merges.select("i", "j"))
    return (
        clusters.merges.join(explained, on=["i", "j"])
        .join(pos_member, on="i")
        .with_columns(_evidence_expr().alias("evidence"))
    )


def _suggestions(scored: Scored, clusters: Clusters, pos_member: pl.DataFrame) -> pl.DataFrame:
    """Suggested pairs with the members holding each side and a stable suggestion id."""
    sugg = _pair_rows(scored, clusters.suggestions.select("i", "j"))
    sugg = (
        sugg.join(pos_member.rename({"member_id": "member_a"}), on="i")
        .join(pos_member.rename({"i": "j", "member_id": "member_b"}), on="j")
        .with_columns(_evidence_expr().alias("evidence"))
    )
    return sugg.with_columns(
        pl.concat_str(["a", "b"], separator="|")
        .map_elements(
            lambda text: "sug_" + hashlib.sha1(text.encode()).hexdigest()[:16],
            return_dtype=pl.String,
        )
        .alias("suggestion_id")
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
    edges = [index / bins for index in range(bins + 1)]
    counts = [0] * bins
    if pairs.height:
        binned = (pairs["match_probability"] * bins).floor().clip(0, bins - 1).cast(pl.Int64)
        for index, count in binned.value_counts().iter_rows():
            counts[int(index)] = int(count)
    return [
        {"from": round(edges[index], 2), "to": round(edges[index + 1], 2), "pairs": counts[index]}
        for index in range(bins)
    ]
