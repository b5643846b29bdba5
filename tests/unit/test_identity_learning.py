"""Learning from organizers' answers: pure functions, no servers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from domain.identity.learning import (
    ReviewThresholds,
    fit_adjustment,
    learn_thresholds,
    review_priority,
)
from domain.identity.scoring import COMPARISONS, MatchModel, score


def rows(levels: dict[str, int], same: list[bool]) -> pl.DataFrame:
    base = {f"l_{c}": -1 for c in COMPARISONS}
    base.update({f"l_{c}": v for c, v in levels.items()})
    return pl.DataFrame(
        [{**base, "name_people": 1, "same": s} for s in same],
        schema={
            **{f"l_{c}": pl.Int8 for c in COMPARISONS},
            "name_people": pl.Int64,
            "same": pl.Boolean,
        },
    )


NAME_AND_EVENTS = {"name": 7, "event": 2}  # exact name, related events, nothing else
EMAIL_EXACT = {"email": 5}
WIDE = (0.001, 0.9999)


def probability(model: MatchModel, frame: pl.DataFrame) -> float:
    """As match weight (bits): differences stay visible near 0 and 1."""
    return float(score(frame.head(1), model)["match_weight"][0])


def test_rejections_lower_that_kind_of_pair_and_leave_others_alone() -> None:
    model = MatchModel(prior=1e-4)  # puts the name-and-events pattern near p = 0.9
    rejected = rows(NAME_AND_EVENTS, [False] * 20)
    other = rows(EMAIL_EXACT, [True])
    learned = fit_adjustment(model, rejected, band=WIDE)
    assert probability(learned, rejected) < probability(model, rejected) - 3.0
    assert probability(learned, other) == pytest.approx(probability(model, other))
    # The model's own view counts as a few answers: one answer moves less than twenty.
    one = fit_adjustment(model, rejected.head(1), band=WIDE)
    assert (
        probability(learned, rejected) < probability(one, rejected) < probability(model, rejected)
    )
    # Stored and loaded with the model (partial recomputes use it).
    again = MatchModel.from_json(learned.to_json())
    assert again.pattern_adjust == learned.pattern_adjust
    assert probability(again, rejected) == pytest.approx(probability(learned, rejected))


def test_answers_outside_the_band_teach_nothing() -> None:
    model = MatchModel()
    sure = rows(EMAIL_EXACT, [False] * 20)
    p = probability(model, sure)
    learned = fit_adjustment(model, sure, band=(0.5, min(p, 0.99) - 1e-6))
    assert learned.pattern_adjust == {}
    assert probability(learned, sure) == pytest.approx(p)


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


def test_review_priority_prefers_big_and_uncertain() -> None:
    frame = pl.DataFrame({"p": [0.5, 0.99, 0.5, 0.9], "n": [2, 10, 6, 6]})
    gain = frame.select(review_priority(pl.col("p"), pl.col("n")).alias("g"))["g"].to_list()
    assert gain[2] > gain[0] and gain[2] > gain[3] > gain[1]
