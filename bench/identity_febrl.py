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

    .venv/bin/python -m bench.identity_febrl [--quick] [--datasets febrl1 febrl3]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

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
from fakes.febrl_exports import Exports, SpreadConfig, load_febrl, split_people, spread_people
from fakes.febrl_exports import write_exports as write_febrl_exports
from ingest.exports import load_exports

console = Console(width=150)
PRECISION_TARGET = 0.99
REVIEW_LOAD_TARGET = 5.0  # open suggestions per 100 true people


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
        [
            load_exports(exports.root, s.value)
            for s in (Source.LUMA, Source.EVENTBRITE, Source.PARTIFUL)
        ]
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
        "b3_precision": bp,
        "b3_recall": br,
        "b3_f1": 2 * bp * br / (bp + br) if bp + br else 0.0,
        "true_pairs": float(ap),
        "clusters": float(df["cluster"].n_unique()),
    }


def recall_ceiling(observations: pl.DataFrame, truth: dict[str, str], near: float = 0.9) -> float:
    """Share of true pairs connected, within each person, by a shared address, phone or a
    near-identical name (Jaro-Winkler ≥ `near` on the folded full name), transitively."""
    feats = prepare_features(observations)
    df = feats.select("observation_id", "email_key", "phone", "name_key", "full_f").with_columns(
        pl.col("observation_id").replace_strict(truth, default=None).alias("person")
    )
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
    """Highest F1 among settings with precision ≥ the target and a review load within
    its target; then without the load condition; else the most precise."""
    results = [(th, evaluate(th)) for th in candidates]
    precise = [r for r in results if r[1]["precision"] >= PRECISION_TARGET]
    light = [r for r in precise if r[1].get("review_load", 0.0) <= REVIEW_LOAD_TARGET]
    if light or precise:
        return max(light or precise, key=lambda r: r[1]["f1"])
    return max(results, key=lambda r: r[1]["precision"])


def evaluate_ours(clusters: Clusters, truth: dict[str, str]) -> dict[str, float]:
    q = quality(clusters.assignment, truth)
    q["review_load"] = 100.0 * clusters.suggestions.height / len(set(truth.values()))
    return q


def threshold_grid(base: Thresholds) -> list[Thresholds]:
    grid = []
    for merge_at in (0.6, 0.7, 0.8, 0.9, 0.95, 0.99):
        for strict in (0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995):
            for suggest_at in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
                if strict >= merge_at > suggest_at:
                    grid.append(
                        replace(
                            base,
                            merge_at=merge_at,
                            merge_without_identifier_at=strict,
                            suggest_at=suggest_at,
                        )
                    )
    return grid


# --- Splink, configured as its documentation recommends -----------------------------------


@dataclass
class SplinkRun:
    predictions: pl.DataFrame  # unique_id_l, unique_id_r, match_probability
    ids: list[str]
    seconds: float


def run_splink(observations: pl.DataFrame, max_u_pairs: float = 1e6) -> SplinkRun:
    """Splink 5 on DuckDB: term-frequency adjusted given name and surname, email, phone,
    company; several prediction blocking rules; the match prior from deterministic rules,
    u by random sampling, m by EM over several blocking rules."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    t0 = time.perf_counter()
    full = pl.coalesce(
        pl.col("full_name"),
        pl.concat_str(["first_name", "last_name"], separator=" ", ignore_nulls=True),
    ).str.to_lowercase()
    df = observations.select(
        pl.col("observation_id").alias("unique_id"),
        pl.coalesce(pl.col("first_name"), full.str.split(" ").list.first())
        .str.to_lowercase()
        .alias("first_name"),
        pl.coalesce(
            pl.col("last_name"),
            pl.when(full.str.split(" ").list.len() > 1).then(full.str.split(" ").list.last()),
        )
        .str.to_lowercase()
        .alias("surname"),
        "email",
        "phone",
        pl.col("company").str.to_lowercase().alias("company"),
    )
    db = DuckDBAPI()
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("company", [0.92]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("email"),
            block_on("phone"),
            block_on("first_name", "surname"),
            block_on("surname", "substr(first_name, 1, 1)"),
            block_on("first_name", "substr(surname, 1, 2)"),
            block_on("substr(first_name, 1, 3)", "substr(surname, 1, 3)"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(db.register(df.to_arrow()), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("email"), block_on("phone"), block_on("first_name", "surname")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=max_u_pairs, seed=1)
    for rule in (block_on("email"), block_on("surname"), block_on("first_name")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    pred = linker.inference.predict(threshold_match_probability=0.01)
    out = pl.from_arrow(
        pred.as_duckdbpyrelation().select("unique_id_l, unique_id_r, match_probability").arrow()
    )
    assert isinstance(out, pl.DataFrame)
    return SplinkRun(out, df["unique_id"].to_list(), time.perf_counter() - t0)


def splink_clusters(run: SplinkRun, threshold: float) -> pl.DataFrame:
    """Connected components of the pairs at or above `threshold` (Splink's own clustering)."""
    edges = run.predictions.filter(pl.col("match_probability") >= threshold)
    index = {uid: k for k, uid in enumerate(run.ids)}
    parent = list(range(len(run.ids)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges.select("unique_id_l", "unique_id_r").iter_rows():
        ra, rb = find(index[a]), find(index[b])
        if ra != rb:
            parent[ra] = rb
    return pl.DataFrame(
        {"observation_id": run.ids, "cluster": [find(k) for k in range(len(run.ids))]}
    )


SPLINK_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999)


# --- report ---------------------------------------------------------------------------------


def fmt(x: float) -> str:
    return f"{x:.4f}"


def _peak(fn: Callable[[], object]) -> tuple[object, float]:
    from bench.identity import PeakMemory

    with PeakMemory() as mem:
        out = fn()
    return out, mem.mb


def generator_quality(size: int) -> dict[str, float]:
    """The project's own generator with the same default thresholds: a smoke figure."""
    from bench.identity import Generator

    obs, _, _, truth = Generator(seed=11).generate(size)
    run = run_ours(obs, Thresholds())
    return quality(run.clusters.assignment, {k: str(v) for k, v in truth.items()})


def report(
    datasets: tuple[str, ...] = ("febrl1", "febrl2", "febrl3"), generator_size: int = 20_000
) -> None:
    if importlib.util.find_spec("splink") is None:
        raise SystemExit(
            "Splink is not installed: run `./run bench` (it installs the bench group) or "
            "`UV_GROUPS=--all-groups scripts/bootstrap.sh` first"
        )
    logging.getLogger("splink").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        cal, test = build_halves(Path(tmp), datasets)
    for name, half in (("calibration", cal), ("test", test)):
        b = half.batch
        console.print(
            f"{name} half: {b.input_records:,} records in, {b.observations.height:,} normalized, "
            f"{b.quarantine.height:,} quarantined (unparseable email or no name), "
            f"{len(set(half.truth.values())):,} people, reconciles {b.reconciles}"
        )
    # Calibration half: thresholds for both systems.
    cal_run = run_ours(cal.observations, Thresholds())
    ours_th, ours_cal = tune(
        threshold_grid(Thresholds()), lambda th: evaluate_ours(recluster(cal_run, th), cal.truth)
    )
    sp_cal = run_splink(cal.observations)
    sp_results = [(th, quality(splink_clusters(sp_cal, th), cal.truth)) for th in SPLINK_GRID]
    sp_th, sp_cal_q = max(sp_results, key=lambda r: r[1]["f1"])
    sp_precise = [r for r in sp_results if r[1]["precision"] >= PRECISION_TARGET]
    sp_th_p = max(sp_precise, key=lambda r: r[1]["f1"])[0] if sp_precise else None
    console.print(
        f"calibration: ours merge ≥ {ours_th.merge_at}, without identifier ≥ "
        f"{ours_th.merge_without_identifier_at}, suggest ≥ {ours_th.suggest_at} "
        f"(F1 {ours_cal['f1']:.4f}); Splink best-F1 threshold {sp_th} (F1 {sp_cal_q['f1']:.4f}), "
        f"at precision ≥ {PRECISION_TARGET}: {sp_th_p}"
    )
    # Test half: every figure below.
    ours_run, ours_mb = _peak(lambda: run_ours(test.observations, ours_th))
    assert isinstance(ours_run, OurRun)
    q = evaluate_ours(ours_run.clusters, test.truth)
    sp_run, sp_mb = _peak(lambda: run_splink(test.observations))
    assert isinstance(sp_run, SplinkRun)
    sq = quality(splink_clusters(sp_run, sp_th), test.truth)
    sq_p = quality(splink_clusters(sp_run, sp_th_p), test.truth) if sp_th_p else None
    ceiling = recall_ceiling(test.observations, test.truth)
    gen = generator_quality(generator_size)
    people = len(set(test.truth.values()))
    t = Table(
        title=f"FEBRL 1–3 as event exports, test half ({test.observations.height:,} records, "
        f"{people:,} people), same run"
    )
    for col in (
        "metric",
        "ours",
        "Splink, best F1",
        f"Splink, P ≥ {PRECISION_TARGET}",
        "ours − Splink",
        "goal",
    ):
        t.add_column(col, justify="right")

    def sp_p(k: str) -> str:
        return fmt(sq_p[k]) if sq_p else "n/a"

    goals = {"precision": "≥ 0.99", "f1": "≥ Splink + 0.03"}
    for k in ("precision", "recall", "f1", "b3_f1"):
        t.add_row(k, fmt(q[k]), fmt(sq[k]), sp_p(k), f"{q[k] - sq[k]:+.4f}", goals.get(k, ""))
    t.add_row("recall ceiling (shared address, phone or near name)", fmt(ceiling), "", "", "", "")
    t.add_row(
        "recall / ceiling",
        fmt(q["recall"] / ceiling),
        fmt(sq["recall"] / ceiling),
        "",
        "",
        "≥ 0.95",
    )
    t.add_row("open suggestions per 100 people", f"{q['review_load']:.1f}", "—", "", "", "≤ 5")
    t.add_row(
        "resolve time (s)",
        f"{ours_run.seconds:.2f}",
        f"{sp_run.seconds:.2f}",
        "",
        f"{sp_run.seconds / ours_run.seconds:.1f}x faster",
        "",
    )
    t.add_row(
        "records/s",
        f"{test.observations.height / ours_run.seconds:,.0f}",
        f"{test.observations.height / sp_run.seconds:,.0f}",
        "",
        "",
        "≥ Splink",
    )
    t.add_row("peak RSS above start (MB)", f"{ours_mb:,.0f}", f"{sp_mb:,.0f}", "", "", "")
    t.add_row(
        f"own generator ({generator_size:,} obs): precision",
        fmt(gen["precision"]),
        "",
        "",
        "",
        "≥ 0.995",
    )
    t.add_row(
        f"own generator ({generator_size:,} obs): recall", fmt(gen["recall"]), "", "", "", "≥ 0.97"
    )
    console.print(t)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--datasets", nargs="*", default=["febrl1", "febrl2", "febrl3"])
    ap.add_argument("--generator-size", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="a smaller generator run")
    args = ap.parse_args()
    size = args.generator_size or (5_000 if args.quick else 20_000)
    report(tuple(args.datasets), size)


if __name__ == "__main__":
    main()
