"""Does each review make the next resolution better? A learning curve on FEBRL.

The FEBRL people of `bench.identity_febrl` are split in a calibration half and a test
half, each spread over its own event exports. A simulated organizer works through the
calibration half's review queue (ordered by expected gain: records joined × uncertainty)
and answers each suggestion from the truth labels; after every batch the answers are
decisions for that half and labelled pairs for learning (`domain.identity.learning`:
level weights and thresholds). Figures are from the test half, which nobody reviewed:
its own EM model plus what the calibration answers taught, thresholds included.

Reported after 0, 50, 100, 200 answers: pairwise precision, recall and F1 and open
suggestions on the test half; the calibration queue left over.

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
    learn_from_reviews,
    rescore,
    review_priority,
)
from domain.identity.pipeline import (
    DECISIONS_SCHEMA,
    Clusters,
    Scored,
    Thresholds,
    cluster_scored,
    score_candidates,
    with_ids,
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


def queue(scored: Scored, clusters: Clusters) -> pl.DataFrame:
    """Open suggestions (a, b, probability) by expected gain, best first."""
    sizes = clusters.assignment.group_by("cluster").len().rename({"len": "size"})
    member = clusters.assignment.join(sizes, on="cluster").select("observation_id", "size")
    pairs = with_ids(
        scored.features,
        clusters.suggestions.join(
            scored.pairs.select("i", "j", "match_probability"), on=["i", "j"], how="left"
        ),
    )
    return (
        pairs.join(member.rename({"observation_id": "a", "size": "size_a"}), on="a")
        .join(member.rename({"observation_id": "b", "size": "size_b"}), on="b")
        .with_columns(
            review_priority(
                pl.col("match_probability").fill_null(0.5), pl.col("size_a") + pl.col("size_b")
            ).alias("gain")
        )
        .sort(["gain", "a", "b"], descending=[True, False, False])
        .select("a", "b", "match_probability", "gain")
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
    out: list[dict[str, float]] = []
    for target in sorted(checkpoints):
        left = -1
        while True:
            model, th = learn_from_reviews(
                cal_scored.model, cal_scored.features, cal_scored.pairs, labels, base
            )
            now = replace(cal_scored, pairs=rescore(cal_scored.pairs, model, th), model=model)
            open_ = queue(now, cluster_scored(now, decisions_from(labels)))
            left = open_.height
            need = target - labels.height
            if need <= 0 or left == 0:
                break
            batch = open_.head(min(BATCH, need)).with_columns(
                pl.struct("a", "b")
                .map_elements(
                    lambda r: cal.truth.get(r["a"]) == cal.truth.get(r["b"]),
                    return_dtype=pl.Boolean,
                )
                .alias("same")
            )
            labels = pl.concat([labels, batch.select("a", "b", "same")])
        taught = replace(
            test_scored.model,
            pattern_adjust=model.pattern_adjust,
            review_band=model.review_band,
        )
        test_now = replace(test_scored, pairs=rescore(test_scored.pairs, taught, th), model=taught)
        q = evaluate_ours(cluster_scored(test_now), test.truth)
        out.append(
            {
                "answers": float(labels.height),
                "same_person": float(labels["same"].sum()),
                "precision": q["precision"],
                "recall": q["recall"],
                "f1": q["f1"],
                "open_test": q["review_load"] * people / 100.0,
                "open_per_100": q["review_load"],
                "open_calibration": float(left),
                "merge_at": th.merge_at,
                "suggest_at": th.suggest_at,
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
        "open suggestions (test)",
        "per 100 people",
        "calibration queue left",
        "merge_at / suggest_at",
    ):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(
            f"{r['answers']:.0f}",
            f"{r['same_person']:.0f}",
            f"{r['precision']:.4f}",
            f"{r['recall']:.4f}",
            f"{r['f1']:.4f}",
            f"{r['open_test']:.0f}",
            f"{r['open_per_100']:.2f}",
            f"{r['open_calibration']:.0f}",
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
