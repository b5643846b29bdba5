"""Learning from organizers' answers: each review improves the next resolution.

Accepted and rejected suggestions, merges and unmerges are labelled record pairs. They
sit where the model is unsure, so they are a biased sample: re-estimating m and u from
them would wreck the weights of everyone else. Instead the EM weights stay the base and
the answers are counted per kind of pair (`review_key`: the comparison pattern, how rare
an agreeing name is, the guard that holds it back); every pair of an answered kind, here
or in any later run, moves towards what the answers said (a Beta posterior in which the
model's own probability counts as a few answers), inside the band where the model is
unsure. Answers about a guarded kind, once decisive, decide instead of the guard.
Thresholds move only as far as the labelled pairs support at the target precision.
The review queue offers suggestions and pairs just below them, by expected gain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from domain.identity.pipeline import Clusters, Scored, Thresholds, with_ids
from domain.identity.scoring import (
    REVIEW_STRENGTH,
    MatchModel,
    apply_guards,
    compare,
    email_name_conflict,
    name_only_weak,
    review_key,
    score,
)

MIN_SUPPORT = 50  # labelled pairs a threshold move must rest on
# Answers teach pairs from this probability up to the merge threshold: suggestions, and
# those a guard sends to review although the score alone would not (e.g. a shared inbox).
REVIEW_FLOOR = 0.1
PRECISION_TARGET = 0.99
MISSED_MATCH_TARGET = 0.02  # share of matches allowed among pairs no longer suggested
THRESHOLD_GRID: tuple[float, ...] = (
    0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99,
)  # fmt: skip

SCORE_COLUMNS = ("match_weight", "match_probability", "decision", "guard", "review_answers")
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
    base = pairs.drop(SCORE_COLUMNS, strict=False)
    known = ij.join(base, on=["i", "j"])
    missing = ij.join(base.select("i", "j"), on=["i", "j"], how="anti")
    if missing.height:
        extra = missing.join(compare(features, missing.select("i", "j")), on=["i", "j"])
        known = pl.concat([known, extra.select(known.columns)], how="vertical_relaxed")
    return known


def fit_answers(
    model: MatchModel, labelled: pl.DataFrame, band: tuple[float, float] = (0.5, 0.995)
) -> MatchModel:
    """The model plus the answers per kind of pair (answers, said "same person").

    Only answers about pairs a guard held back or whose score lies in `band` (the
    probabilities the review queue draws from) teach: a merge also labels sure pairs.
    """
    lo, hi = band
    bits = (math.log2(lo / (1 - lo)), math.log2(hi / (1 - hi)))
    if labelled.height == 0:
        return replace(model, review_answers={}, review_labels=0, review_band=bits)
    base = replace(model, review_answers={})
    taught = (
        score(labelled, base)
        .filter(
            name_only_weak()
            | email_name_conflict()
            | pl.col("match_weight").is_between(*bits, closed="left")
        )
        .with_columns(review_key().alias("key"))
    )
    per = taught.group_by("key").agg(
        pl.len().alias("n"), pl.col("same").cast(pl.Int64).sum().alias("k")
    )
    answers = {key: (int(n), int(k)) for key, n, k in per.iter_rows()}
    return replace(model, review_answers=answers, review_labels=taught.height, review_band=bits)


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
    model: MatchModel, labelled: pl.DataFrame, base: ReviewThresholds
) -> tuple[MatchModel, ReviewThresholds]:
    """Answers per kind of pair and thresholds from labelled comparison rows
    (`labelled_comparisons`), for a model fitted on this run's records."""
    if labelled.height == 0:
        return replace(model, review_answers={}, review_labels=0), base
    top = max(base.merge_at, base.merge_without_identifier_at)
    learned = fit_answers(model, labelled, band=(min(REVIEW_FLOOR, base.suggest_at), top))
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
    return apply_guards(
        score(pairs.drop(SCORE_COLUMNS, strict=False), model),
        th.merge_at,
        th.suggest_at,
        th.merge_without_identifier_at,
    )


def review_priority(probability: pl.Expr, records_joined: pl.Expr) -> pl.Expr:
    """Expected gain of an answer: the records it joins or keeps apart × the uncertainty
    (4·p·(1−p): 1 at p = 0.5, 0 when the model is sure)."""
    return records_joined.cast(pl.Float64) * 4.0 * probability * (1.0 - probability)


def uncertainty(answers: pl.Expr, suggest_at: float, merge_at: float) -> pl.Expr:
    """How much an answer can still teach about a pair: the variance of its probability
    (a Beta posterior over the answers about its kind), 4·q·(1−q) for a kind nobody
    answered, where q is the probability measured from the merge threshold (odds divided
    by the threshold's odds: ½ at the threshold), so pairs near the decision come first.
    Where a guard decides, the score is not the evidence: q = ½, the answers count."""
    p = pl.col("match_probability").clip(1e-9, 1 - 1e-9)
    odds = p / (1.0 - p) / (merge_at / (1.0 - merge_at))
    q = odds / (1.0 + odds)
    # A guard that decides: a weak name the score alone would have suggested or merged, a
    # shared address (always a suggestion, whatever the score); the answers decide later.
    guarded = (name_only_weak() & (p >= suggest_at)) | email_name_conflict()
    spread = pl.when(guarded).then(0.25).otherwise(q * (1.0 - q))
    s = REVIEW_STRENGTH
    return 4.0 * spread * (s + 1.0) / (answers.cast(pl.Float64) + s + 1.0)


def _open_pairs(scored: Scored, clusters: Clusters, floor: float) -> pl.DataFrame:
    """Candidate pairs between two members, not kept apart by an answer or evidence, that
    are suggested or score at least `floor`: the most uncertain edge per pair of members
    after `_u` is set by the caller's expression. Adds _ra, _rb (members), _n (records)."""
    roots = clusters.assignment["cluster"].to_numpy()
    size = np.bincount(roots, minlength=len(roots))
    apart = {
        (int(min(roots[i], roots[j])), int(max(roots[i], roots[j])))
        for i, j in clusters.cannot_links
    }
    pairs = scored.pairs
    ri, rj = roots[pairs["i"].to_numpy()], roots[pairs["j"].to_numpy()]
    cand = pairs.with_columns(
        pl.Series("_ra", np.minimum(ri, rj)), pl.Series("_rb", np.maximum(ri, rj))
    ).filter(
        (pl.col("_ra") != pl.col("_rb"))
        & (pl.col("decision") != "cannot_link")
        & ((pl.col("match_probability") >= floor) | (pl.col("decision") == "suggest"))
    )
    if apart:
        keep = [
            (a, b) not in apart
            for a, b in zip(cand["_ra"].to_list(), cand["_rb"].to_list(), strict=True)
        ]
        cand = cand.filter(pl.Series(keep, dtype=pl.Boolean))
    joined = size[cand["_ra"].to_numpy()] + size[cand["_rb"].to_numpy()]
    return cand.with_columns(pl.Series("_n", joined))


def review_queue(
    scored: Scored, clusters: Clusters, th: ReviewThresholds, floor: float = REVIEW_FLOOR
) -> pl.DataFrame:
    """Questions for an organizer, best first: open suggestions and pairs just below them
    (probability ≥ `floor`, guarded ones too), one per pair of members, by expected gain:
    records decided × uncertainty. An answer decides its own pair's records and, through
    its kind, a 1/(answers + strength + 1) share of those of the kind's other open pairs.
    Questions are answered in order, so the k-th question about one kind counts the
    k − 1 before it as answered: one batch of answers covers many kinds.
    Columns: a, b (record ids), match_probability, gain.
    """
    cand = _open_pairs(scored, clusters, floor)
    answers = (
        pl.col("review_answers").cast(pl.Int64)
        if "review_answers" in cand.columns
        else pl.lit(0, dtype=pl.Int64)
    )
    s1 = REVIEW_STRENGTH + 1.0
    ranked = (
        cand.with_columns(
            uncertainty(answers, th.suggest_at, th.merge_at).alias("_u"),
            answers.alias("_answers"),
            review_key().alias("_key"),
        )
        .sort(["_u", "i", "j"], descending=[True, False, False])
        .unique(["_ra", "_rb"], keep="first", maintain_order=True)
        .with_columns((pl.col("_n").cast(pl.Float64) * pl.col("_u")).alias("_g"))
        .sort(["_g", "i", "j"], descending=[True, False, False])
        .with_columns(
            pl.int_range(pl.len()).over("_key").alias("_before"),
            pl.col("_n").sum().over("_key").alias("_kind_records"),
        )
        .with_columns((pl.col("_answers") + pl.col("_before") + s1).alias("_d"))
        .with_columns(
            (
                pl.col("_u")
                * (pl.col("_answers") + s1)
                / pl.col("_d")
                * (pl.col("_n") + (pl.col("_kind_records") - pl.col("_n")) / pl.col("_d"))
            ).alias("gain")
        )
    )
    return (
        with_ids(scored.features, ranked)
        .sort(["gain", "a", "b"], descending=[True, False, False])
        .select("a", "b", "match_probability", "gain")
    )


def apply_reviews(scored: Scored, labels: pl.DataFrame, base: Thresholds) -> Scored:
    """The scored pairs again, with the answers per kind of pair and the thresholds
    reviews taught."""
    if labels.height == 0:
        return scored
    labelled = labelled_comparisons(scored.features, scored.pairs, labels)
    model, th = learn_from_reviews(
        scored.model,
        labelled,
        ReviewThresholds(base.merge_at, base.suggest_at, base.merge_without_identifier_at),
    )
    return replace(scored, pairs=rescore(scored.pairs, model, th), model=model)
