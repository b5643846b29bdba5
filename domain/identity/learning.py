"""Learning from organizers' answers: each review improves the next resolution.

Accepted and rejected suggestions, merges and unmerges are labelled record pairs. They
sit where the model is unsure, so they are a biased sample: re-estimating m and u from
them would wreck the weights of everyone else. Instead the EM weights stay the base and each
comparison pattern that was answered (the same kind of question) gets the bits that move
its probability towards the answers, inside the band where the model is unsure; the
model's own probability counts as a few answers, so the change grows as answers agree.
Thresholds then move only as far as the labelled pairs support at the target precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from domain.identity.pipeline import Scored, Thresholds
from domain.identity.scoring import (
    MatchModel,
    apply_guards,
    compare,
    pattern_key,
    score,
)

MAX_ADJUST_BITS = 6.0
MIN_SUPPORT = 50  # labelled pairs a threshold move must rest on
# Answers teach pairs from this probability up to the merge threshold: suggestions, and
# those a guard sends to review although the score alone would not (e.g. a shared inbox).
REVIEW_FLOOR = 0.3
PRECISION_TARGET = 0.99
MISSED_MATCH_TARGET = 0.02  # share of matches allowed among pairs no longer suggested
THRESHOLD_GRID: tuple[float, ...] = (
    0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99,
)  # fmt: skip

LABELS_SCHEMA: dict[str, pl.DataType] = {"a": pl.String(), "b": pl.String(), "same": pl.Boolean()}


@dataclass(frozen=True)
class ReviewThresholds:
    merge_at: float
    suggest_at: float
    merge_without_identifier_at: float


def labelled_comparisons(
    features: pl.DataFrame, pairs: pl.DataFrame, labels: pl.DataFrame
) -> pl.DataFrame:
    """Comparison rows (as scored pairs carry them) for labelled pairs, plus `same`.

    Pairs never compared (an organizer may join records blocking never paired) are
    compared now; labels about records not in `features` are ignored.
    """
    pos = features.select("observation_id").with_row_index("p")
    ij = (
        labels.join(pos.rename({"observation_id": "a", "p": "pa"}), on="a")
        .join(pos.rename({"observation_id": "b", "p": "pb"}), on="b")
        .select(
            pl.min_horizontal("pa", "pb").cast(pl.UInt32).alias("i"),
            pl.max_horizontal("pa", "pb").cast(pl.UInt32).alias("j"),
            "same",
        )
        .unique(["i", "j"], keep="last", maintain_order=True)
    )
    drop = [c for c in ("match_weight", "match_probability", "decision", "guard") if c in pairs]
    base = pairs.drop(drop)
    known = ij.join(base, on=["i", "j"])
    missing = ij.join(base.select("i", "j"), on=["i", "j"], how="anti")
    if missing.height:
        extra = missing.join(compare(features, missing.select("i", "j")), on=["i", "j"])
        known = pl.concat([known, extra.select(known.columns)], how="vertical_relaxed")
    return known


def fit_adjustment(
    model: MatchModel,
    labelled: pl.DataFrame,
    band: tuple[float, float] = (0.5, 0.995),
    strength: float = 4.0,
) -> MatchModel:
    """The model plus, per comparison pattern answered, the bits that move its pairs'
    probability to what the answers say (a Beta posterior: the model's own probability
    counts as `strength` answers, so one answer moves little and many agree)."""
    if labelled.height == 0:
        return model
    base = replace(model, pattern_adjust={})
    lo, hi = band
    bits = (math.log2(lo / (1 - lo)), math.log2(hi / (1 - hi)))
    # Only answers about pairs inside the band teach it (a merge also labels sure pairs).
    scored = (
        score(labelled, base)
        .filter(pl.col("match_weight").is_between(*bits, closed="left"))
        .with_columns(pattern_key().alias("pattern"))
    )
    per = scored.group_by("pattern").agg(
        pl.len().alias("n"),
        pl.col("same").cast(pl.Float64).sum().alias("k"),
        pl.col("match_weight").mean().alias("w"),
    )
    adjust: dict[str, float] = {}
    for pattern, n, k, w in per.iter_rows():
        p0 = 1.0 / (1.0 + 2.0 ** (-max(min(w, 50.0), -50.0)))
        post = (k + strength * p0) / (n + strength)
        post = min(max(post, 1e-4), 1 - 1e-4)
        delta = math.log2(post / (1 - post)) - w
        adjust[pattern] = max(-MAX_ADJUST_BITS, min(MAX_ADJUST_BITS, delta))
    return replace(model, pattern_adjust=adjust, review_labels=scored.height, review_band=bits)


def learn_thresholds(
    probability: np.ndarray, same: np.ndarray, identifier: np.ndarray, base: ReviewThresholds
) -> ReviewThresholds:
    """Thresholds the answered pairs support: merge lower where the answers above a
    threshold are (nearly) all the same person, suggest higher where those below it are
    (nearly) all different people. Each move rests on at least MIN_SUPPORT answers."""

    def precise_from(mask: np.ndarray, start: float) -> float:
        best = start
        # Never down to where suggestions start: that would hide the pairs answers come from.
        lower = (g for g in THRESHOLD_GRID if base.suggest_at < g < start)
        for t in sorted(lower, reverse=True):
            above = mask & (probability >= t)
            if above.sum() < MIN_SUPPORT or same[above].mean() < PRECISION_TARGET:
                break
            best = t
        return best

    merge_at = precise_from(np.ones_like(same, dtype=bool), base.merge_at)
    strict = max(merge_at, precise_from(~identifier, base.merge_without_identifier_at))
    suggest_at = base.suggest_at
    for t in sorted(g for g in THRESHOLD_GRID if base.suggest_at < g < merge_at):
        below = probability < t
        if below.sum() < MIN_SUPPORT or same[below].mean() > MISSED_MATCH_TARGET:
            break
        suggest_at = t
    return ReviewThresholds(merge_at, suggest_at, strict)


def learn_from_reviews(
    model: MatchModel,
    features: pl.DataFrame,
    pairs: pl.DataFrame,
    labels: pl.DataFrame,
    base: ReviewThresholds,
) -> tuple[MatchModel, ReviewThresholds]:
    """Adjusted weights and thresholds from the organizers' answers (`labels`: a, b, same)."""
    labelled = labelled_comparisons(features, pairs, labels)
    if labelled.height == 0:
        return model, base
    learned = fit_adjustment(
        model, labelled, band=(min(REVIEW_FLOOR, base.suggest_at), base.merge_at)
    )
    rescored = score(labelled, learned)
    th = learn_thresholds(
        rescored["match_probability"].to_numpy(),
        labelled["same"].to_numpy(),
        labelled["identifier_agrees"].to_numpy(),
        base,
    )
    learned = replace(
        learned,
        review_thresholds={
            "merge_at": th.merge_at,
            "suggest_at": th.suggest_at,
            "merge_without_identifier_at": th.merge_without_identifier_at,
        },
    )
    return learned, th


def rescore(pairs: pl.DataFrame, model: MatchModel, th: ReviewThresholds) -> pl.DataFrame:
    """Candidate pairs scored again with a learned model and thresholds."""
    drop = [c for c in ("match_weight", "match_probability", "decision", "guard") if c in pairs]
    return apply_guards(
        score(pairs.drop(drop), model), th.merge_at, th.suggest_at, th.merge_without_identifier_at
    )


def review_priority(probability: pl.Expr, records_joined: pl.Expr) -> pl.Expr:
    """Expected gain of an answer: the records it joins or keeps apart × the uncertainty
    (4·p·(1−p): 1 at p = 0.5, 0 when the model is sure)."""
    return records_joined.cast(pl.Float64) * 4.0 * probability * (1.0 - probability)


def apply_reviews(scored: Scored, labels: pl.DataFrame, base: Thresholds) -> Scored:
    """The scored pairs again, with the weights and thresholds reviews taught."""
    if labels.height == 0:
        return scored
    model, th = learn_from_reviews(
        scored.model,
        scored.features,
        scored.pairs,
        labels,
        ReviewThresholds(base.merge_at, base.suggest_at, base.merge_without_identifier_at),
    )
    return replace(scored, pairs=rescore(scored.pairs, model, th), model=model)
