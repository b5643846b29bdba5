"""Matching quality on FEBRL 3 (people nobody here generated), through the import path.

About 2,000 FEBRL 3 records of the benchmark's test half are spread over Luma,
Eventbrite and Partiful exports on disk, read by the export loader and resolved with the
default (calibrated) thresholds. A change that degrades matching fails here.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from domain.identity.pipeline import cluster_scored, score_candidates
from domain.model import Source
from domain.normalize.batch import NormalizedBatch
from fakes.febrl_exports import SpreadConfig, sample_of_test_half, spread_people, write_exports
from ingest.exports import load_exports


def _pairwise(assignment: pl.DataFrame, truth: dict[str, str]) -> tuple[float, float]:
    df = assignment.join(
        pl.DataFrame({"observation_id": list(truth), "person": list(truth.values())}),
        on="observation_id",
    )

    def pairs(frame: pl.DataFrame) -> int:
        return int(frame.select((pl.col("len") * (pl.col("len") - 1) // 2).sum()).item())

    together = pairs(df.group_by("cluster", "person").len())
    predicted = pairs(df.group_by("cluster").len())
    actual = pairs(df.group_by("person").len())
    return together / predicted, together / actual


def test_febrl3_sample_through_import_and_resolve(tmp_path: Path) -> None:
    records = sample_of_test_half("febrl3", 2_000)
    assert 1_800 <= records.height <= 2_000
    config = SpreadConfig(communities=2, events_per_community=6)
    events, attendances = spread_people(records, config, seed=21, prefix="q-")
    exports = write_exports(tmp_path, events, attendances, seed=21)
    assert {p.name for p in tmp_path.iterdir()} == {"luma", "eventbrite", "partiful"}

    batch = NormalizedBatch.concat(
        [load_exports(tmp_path, s.value) for s in (Source.LUMA, Source.EVENTBRITE, Source.PARTIFUL)]
    )
    assert batch.reconciles
    assert batch.input_records == len(exports.truth)
    obs = batch.observations
    truth = {o: exports.truth[o] for o in obs["observation_id"].to_list()}
    assert len(truth) >= 0.99 * len(exports.truth)  # only unparseable fields quarantined

    scored = score_candidates(obs)
    clusters = cluster_scored(scored)
    precision, recall = _pairwise(clusters.assignment, truth)
    f1 = 2 * precision * recall / (precision + recall)
    assert precision >= 0.99, f"precision {precision:.4f}, recall {recall:.4f}"
    assert f1 >= 0.90, f"F1 {f1:.4f} (precision {precision:.4f}, recall {recall:.4f})"
