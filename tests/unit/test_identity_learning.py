"""Learning from organizers' answers: pure functions, no servers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from domain.identity.learning import (
    ReviewThresholds,
    fit_answers,
    learn_thresholds,
    review_priority,
    review_queue,
)
from domain.identity.pipeline import Clusters, Scored
from domain.identity.scoring import (
    COMPARISONS,
    GUARD_LIFT_ANSWERS,
    MatchModel,
    apply_guards,
    level,
    score,
)

FLAGS = ("name_weak", "name_single", "identifier_agrees", "cannot_link")


def rows(
    levels: dict[str, int], same: list[bool], name_people: int = 1, weak: bool = False
) -> pl.DataFrame:
    base: dict[str, object] = {f"l_{c}": -1 for c in COMPARISONS}
    base.update({f"l_{c}": v for c, v in levels.items()})
    flags = {"name_weak": weak, "name_single": weak, "identifier_agrees": False}
    return pl.DataFrame(
        [
            {**base, **flags, "cannot_link": False, "name_people": name_people, "same": s}
            for s in same
        ],
        schema={
            **{f"l_{c}": pl.Int8 for c in COMPARISONS},
            **dict.fromkeys(FLAGS, pl.Boolean),
            "name_people": pl.Int64,
            "same": pl.Boolean,
        },
    )


NAME_AND_EVENTS = {"name": 7, "event": 2}  # exact name, related events, nothing else
EMAIL_EXACT = {"email": 5}
WIDE = (0.001, 0.9999)


def weight(model: MatchModel, frame: pl.DataFrame) -> float:
    """As match weight (bits): differences stay visible near 0 and 1."""
    return float(score(frame.head(1), model)["match_weight"][0])


def test_rejections_lower_that_kind_of_pair_and_leave_others_alone() -> None:
    model = MatchModel(prior=1e-4)  # puts the name-and-events pattern near p = 0.9
    rejected = rows(NAME_AND_EVENTS, [False] * 20)
    other = rows(EMAIL_EXACT, [True])
    learned = fit_answers(model, rejected, band=WIDE)
    assert list(learned.review_answers.values()) == [(20, 0)]
    assert weight(learned, rejected) < weight(model, rejected) - 3.0
    assert weight(learned, other) == pytest.approx(weight(model, other))
    # The model's own view counts as a few answers: one answer moves less than twenty.
    one = fit_answers(model, rejected.head(1), band=WIDE)
    assert weight(learned, rejected) < weight(one, rejected) < weight(model, rejected)
    # Stored and loaded with the model (partial recomputes use it).
    again = MatchModel.from_json(learned.to_json())
    assert again.review_answers == learned.review_answers
    assert weight(again, rejected) == pytest.approx(weight(learned, rejected))


def test_accepted_answers_lift_the_same_kind_of_pair_elsewhere() -> None:
    model = MatchModel(prior=1e-4)
    answered = rows(NAME_AND_EVENTS, [True] * 12, name_people=1)
    learned = fit_answers(model, answered, band=WIDE)
    # Another pair of that kind, never answered (another run, another community): merged.
    elsewhere = rows(NAME_AND_EVENTS, [False], name_people=1)
    before = float(score(elsewhere, model)["match_probability"][0])
    after = float(score(elsewhere, learned)["match_probability"][0])
    assert before < 0.95 <= after
    # A name two people carry is another kind of question: the answers do not reach it.
    common = rows(NAME_AND_EVENTS, [False], name_people=2)
    assert weight(learned, common) == pytest.approx(weight(model, common))


def test_answers_outside_the_band_teach_nothing() -> None:
    model = MatchModel()
    sure = rows(EMAIL_EXACT, [False] * 20)
    p = weight(model, sure)
    learned = fit_answers(model, sure, band=(0.5, 0.99))
    assert p > 7.0 and learned.review_answers == {}
    assert weight(learned, sure) == pytest.approx(p)


def test_decisive_answers_replace_a_guard() -> None:
    """A single-word name at related events is held back whatever its score; answers
    about that kind start from even odds and replace the guard once decisive."""
    model = MatchModel(prior=0.5)
    levels = {"name": level("name", "same_weak"), "event": 2}
    weak = rows(levels, [True], weak=True)

    def decision(answers: list[bool]) -> str:
        learned = fit_answers(model, rows(levels, answers, weak=True), band=(0.5, 0.95))
        return str(apply_guards(score(weak, learned), 0.95, 0.9, 0.95)["decision"][0])

    assert float(score(weak, model)["match_probability"][0]) > 0.9
    assert decision([]) == "distinct"
    # Too few, or not yet decisive (the score does not count: 9/10 is not a merge).
    assert decision([True] * (GUARD_LIFT_ANSWERS - 1)) == "distinct"
    assert decision([True] * 9 + [False]) == "distinct"
    assert decision([True] * 10) == "merge"
    # A shared address under another name: a suggestion until answers say two people.
    shared = {"email": level("email", "exact_shared_address"), "name": 0, "event": 2}
    pair = rows(shared, [False])
    said_no = fit_answers(model, rows(shared, [False] * GUARD_LIFT_ANSWERS), band=(0.5, 0.95))
    assert apply_guards(score(pair, model), 0.95, 0.9, 0.95)["decision"][0] == "suggest"
    assert apply_guards(score(pair, said_no), 0.95, 0.9, 0.95)["decision"][0] == "distinct"


def test_thresholds_move_only_as_far_as_enough_answers_support() -> None:
    base = ReviewThresholds(merge_at=0.95, suggest_at=0.9, merge_without_identifier_at=0.95)
    p = np.array([0.94] * 60 + [0.91] * 60)
    same = np.array([True] * 60 + [False] * 60)
    ident = np.ones(120, dtype=bool)
    th = learn_thresholds(p, same, ident, base)
    assert th == ReviewThresholds(0.93, 0.9, 0.95)  # no identifier answers: strict stays
    assert learn_thresholds(p, same, ~ident, base).merge_without_identifier_at == 0.93
    # Sixty answers below 0.93 all said "two people": suggestions start higher.
    low = ReviewThresholds(merge_at=0.95, suggest_at=0.8, merge_without_identifier_at=0.95)
    q = np.array([0.84] * 60 + [0.96] * 10)
    said = np.array([False] * 60 + [True] * 10)
    assert learn_thresholds(q, said, np.ones(70, dtype=bool), low).suggest_at == 0.93
    few = learn_thresholds(p[50:70], same[50:70], ident[50:70], base)
    assert few == base
    wrong = same.copy()
    wrong[:5] = False  # 5 of 60 above were two people: precision 0.92, no move
    assert learn_thresholds(p, wrong, ident, base).merge_at == 0.95


def queue_fixture() -> tuple[Scored, Clusters]:
    """Eleven records; r2, r3, r4 already one member. Pairs of one kind (exact name,
    related events) with the probabilities below, plus one of another kind."""
    ids = [f"r{k}" for k in range(11)]
    features = pl.DataFrame({"observation_id": ids})
    edges = [(0, 1, 0.93), (2, 5, 0.93), (6, 7, 0.5), (8, 9, 0.05), (9, 10, 0.93), (1, 6, 0.93)]
    kind = rows(NAME_AND_EVENTS, [False] * len(edges)).drop("same")
    pairs = kind.with_columns(
        pl.Series("i", [e[0] for e in edges], dtype=pl.UInt32),
        pl.Series("j", [e[1] for e in edges], dtype=pl.UInt32),
        pl.Series("match_probability", [e[2] for e in edges]),
        pl.lit("distinct").alias("decision"),
    ).with_columns(  # (0, 1) is another kind: an email at another provider also agrees
        pl.when(pl.col("i") == 0)
        .then(3)
        .otherwise(pl.col("l_email"))
        .cast(pl.Int8)
        .alias("l_email")
    )
    labels = [0, 1, 2, 2, 2, 5, 6, 7, 8, 9, 10]
    assignment = pl.DataFrame({"observation_id": ids, "cluster": labels})
    empty = pl.DataFrame(schema={"i": pl.UInt32, "j": pl.UInt32})
    clusters = Clusters(assignment, empty, empty, [(1, 6)], 0, 0)
    return Scored(features, pairs, MatchModel()), clusters


def test_review_queue_orders_by_expected_gain() -> None:
    scored, clusters = queue_fixture()
    th = ReviewThresholds(merge_at=0.95, suggest_at=0.9, merge_without_identifier_at=0.95)
    q = review_queue(scored, clusters, th)
    order = list(zip(q["a"].to_list(), q["b"].to_list(), strict=True))
    # Below the floor and kept apart by an answer (r1 and r6): not asked.
    assert ("r8", "r9") not in order and ("r1", "r6") not in order
    # Near the merge threshold and joining four records first. The second question of that
    # kind counts the first as answered, yet still teaches two other open pairs: it comes
    # before a lone pair of another kind at the same probability. A pair at p = 0.5 is far
    # from the decision and comes last.
    assert order == [("r2", "r5"), ("r9", "r10"), ("r0", "r1"), ("r6", "r7")]
    gains = dict(zip(order, q["gain"].to_list(), strict=True))
    assert gains[("r2", "r5")] > gains[("r9", "r10")] > gains[("r0", "r1")] > gains[("r6", "r7")]
    # Once that kind was answered, it teaches less: the lone pair comes first.
    answered = replace(
        scored,
        pairs=scored.pairs.with_columns(
            pl.when(pl.col("i") == 0).then(0).otherwise(20).cast(pl.UInt32).alias("review_answers")
        ),
    )
    again = review_queue(answered, clusters, th)
    assert (again["a"][0], again["b"][0]) == ("r0", "r1")


def test_review_priority_prefers_big_and_uncertain() -> None:
    frame = pl.DataFrame({"p": [0.5, 0.99, 0.5, 0.9], "n": [2, 10, 6, 6]})
    gain = frame.select(review_priority(pl.col("p"), pl.col("n")).alias("g"))["g"].to_list()
    assert gain[2] > gain[0] and gain[2] > gain[3] > gain[1]
