"""Does each review make the next resolution better? A learning curve on FEBRL.

The FEBRL people of `bench.identity_febrl` are split in a calibration half and a test
half, each spread over its own event exports. A simulated organizer works through the
calibration half's review queue (`domain.identity.learning.review_queue`: suggestions and
pairs just below them, by expected gain) and answers from the truth labels, 25 answers
between two learning steps; the answers are decisions for that half and labelled pairs.
Figures are from the test half, which nobody reviewed: its own EM model plus what the
calibration answers teach it (answers per kind of pair, guards, thresholds); the test
labels are only used to score the result.

Reported after 0, 50, 100, 200 answers (the 0-answer row is the baseline): pairwise
precision, recall and F1, open suggestions and the review queue on the test half; the
calibration queue left over.

    .venv/bin/python -m bench.identity_reviews [--quick] [--answers 0 50 100 200]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from bench.identity_febrl import build_halves, evaluate_ours
from domain.identity.learning import (
    LABELS_SCHEMA,
    ReviewThresholds,
    labelled_comparisons,
    learn_from_reviews,
    rescore,
    review_queue,
)
from domain.identity.pipeline import (
    DECISIONS_SCHEMA,
    Scored,
    Thresholds,
    cluster_scored,
    score_candidates,
)

console = Console(width=150)
BATCH = 25  # answers between two learning steps


def decisions_from(labels: pl.DataFrame) -> pl.DataFrame:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "decision_id": f"dec_{k}",
            "kind": "must_link" if same else "cannot_link",
            "a": a,
            "b": b,
            "created_at": start + timedelta(seconds=k),
        }
        for k, (a, b, same) in enumerate(labels.iter_rows())
    ]
    return pl.DataFrame(rows, schema=DECISIONS_SCHEMA)


def taught(scored: Scored, labelled: pl.DataFrame, base: ReviewThresholds) -> Scored:
    """A half's pairs again, with what the labelled comparisons teach its own model."""
    model, th = learn_from_reviews(scored.model, labelled, base)
    return replace(scored, pairs=rescore(scored.pairs, model, th), model=model)


def thresholds_of(scored: Scored, base: ReviewThresholds) -> ReviewThresholds:
    """The thresholds the answers moved (the base ones without answers)."""
    learned = scored.model.review_thresholds
    return ReviewThresholds(
        learned.get("merge_at", base.merge_at),
        learned.get("suggest_at", base.suggest_at),
        learned.get("merge_without_identifier_at", base.merge_without_identifier_at),
    )


def answer(queue: pl.DataFrame, truth: dict[str, str], n: int) -> pl.DataFrame:
    """The simulated organizer: the first `n` questions answered from the truth labels."""
    return (
        queue.head(n)
        .with_columns(
            pl.struct("a", "b")
            .map_elements(lambda r: truth.get(r["a"]) == truth.get(r["b"]), return_dtype=pl.Boolean)
            .alias("same")
        )
        .select("a", "b", "same")
    )


def learning_curve(
    datasets: tuple[str, ...], checkpoints: tuple[int, ...]
) -> list[dict[str, float]]:
    th0 = Thresholds()
    base = ReviewThresholds(th0.merge_at, th0.suggest_at, th0.merge_without_identifier_at)
    with tempfile.TemporaryDirectory() as tmp:
        cal, test = build_halves(Path(tmp), datasets)
    cal_scored = score_candidates(cal.observations, th0)
    test_scored = score_candidates(test.observations, th0)
    people = len(set(test.truth.values()))
    labels = pl.DataFrame(schema=LABELS_SCHEMA)
    labelled = labelled_comparisons(cal_scored.features, cal_scored.pairs, labels)
    out: list[dict[str, float]] = []
    for target in sorted(checkpoints):
        while True:
            now = taught(cal_scored, labelled, base)
            clusters = cluster_scored(now, decisions_from(labels))
            questions = review_queue(now, clusters, thresholds_of(now, base))
            need = target - labels.height
            if need <= 0 or questions.height == 0:
                break
            labels = pl.concat([labels, answer(questions, cal.truth, min(BATCH, need))])
            labelled = labelled_comparisons(cal_scored.features, cal_scored.pairs, labels)
        # The test half: its own EM model, plus what the calibration answers teach it.
        test_now = taught(test_scored, labelled, base)
        test_clusters = cluster_scored(test_now)
        q = evaluate_ours(test_clusters, test.truth)
        th = test_now.model.review_thresholds
        out.append(
            {
                "answers": float(labels.height),
                "same_person": float(labels["same"].sum()),
                "precision": q["precision"],
                "recall": q["recall"],
                "f1": q["f1"],
                "open_test": q["review_load"] * people / 100.0,
                "open_per_100": q["review_load"],
                "queue_test": float(
                    review_queue(test_now, test_clusters, thresholds_of(test_now, base)).height
                ),
                "queue_calibration": float(questions.height),
                "merge_at": th.get("merge_at", base.merge_at),
                "suggest_at": th.get("suggest_at", base.suggest_at),
            }
        )
    return out


def report(datasets: tuple[str, ...], checkpoints: tuple[int, ...]) -> None:
    rows = learning_curve(datasets, checkpoints)
    t = Table(title=f"Learning from reviews: {'+'.join(datasets)}, figures on the test half")
    for col in (
        "answers",
        "said same person",
        "precision",
        "recall",
        "F1",
        "F1 vs 0 answers",
        "open suggestions (test)",
        "per 100 people",
        "review queue (test)",
        "calibration queue left",
        "merge_at / suggest_at",
    ):
        t.add_column(col, justify="right")
    f1_0 = rows[0]["f1"]
    for r in rows:
        t.add_row(
            f"{r['answers']:.0f}",
            f"{r['same_person']:.0f}",
            f"{r['precision']:.4f}",
            f"{r['recall']:.4f}",
            f"{r['f1']:.4f}",
            f"{r['f1'] - f1_0:+.4f}",
            f"{r['open_test']:.0f}",
            f"{r['open_per_100']:.2f}",
            f"{r['queue_test']:.0f}",
            f"{r['queue_calibration']:.0f}",
            f"{r['merge_at']:.2f} / {r['suggest_at']:.2f}",
        )
    console.print(t)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--datasets", nargs="*", default=None)
    ap.add_argument("--answers", nargs="*", type=int, default=[0, 50, 100, 200])
    ap.add_argument("--quick", action="store_true", help="FEBRL 1 and 2 only")
    args = ap.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    datasets = args.datasets or (
        ["febrl1", "febrl2"] if args.quick else ["febrl1", "febrl2", "febrl3"]
    )
    report(tuple(datasets), tuple(args.answers))


if __name__ == "__main__":
    main()
