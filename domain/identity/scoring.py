"""Pairwise comparison levels and a Fellegi–Sunter model whose m/u come from the data.

u (how often a level occurs between two records of different people) starts from
randomly sampled pairs; m (how often it occurs between two records of one person), u
among the candidates and the match prior are then estimated by EM over the candidate
pairs, with the defaults below and the sampled u as Dirichlet priors so small inputs
stay sensible. Comparisons are discrete levels, so EM runs over the distinct comparison
patterns, not over the pairs: its cost does not grow with the data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from rapidfuzz.distance import OSA, JaroWinkler
from rapidfuzz.process import cpdist

from domain.identity.features import IDENTIFYING_PLATFORMS

# Levels per comparison, from least to most similar; a null comparison is level -1.
LEVELS: dict[str, tuple[str, ...]] = {
    "email": (
        "different_same_domain",
        "different",
        "same_local_part_other_domain",
        "similar_local_part",
        "exact_shared_address",
        "exact",
    ),
    "phone": ("different", "exact"),
    "handle": ("conflicting", "same"),
    "person": ("different_account", "same_account"),
    "name": (
        "different",
        "same_initial",
        "similar",
        "sounds_alike",
        "one_typo",
        "same_weak",
        "nickname_or_swapped",
        "exact",
    ),
    "company": ("different", "same"),
    "event": ("same_event", "unrelated_events", "related_events"),
}
COMPARISONS: tuple[str, ...] = tuple(LEVELS)


def level(comparison: str, name: str) -> int:
    """The code of a named level, so rules read as words rather than numbers."""
    return LEVELS[comparison].index(name)


# Name levels whose weight is adjusted by how many people carry the name: a typo or a
# spelling that sounds the same of a name one person carries is still that rare name.
TF_NAME_LEVELS: tuple[int, ...] = tuple(
    level("name", count) for count in ("sounds_alike", "one_typo", "nickname_or_swapped", "exact")
)

# Prior m and u per level (probabilities, same order as LEVELS).
DEFAULT_M: dict[str, tuple[float, ...]] = {
    "email": (0.03, 0.2, 0.03, 0.04, 0.05, 0.65),
    "phone": (0.1, 0.9),
    "handle": (0.05, 0.95),
    "person": (0.02, 0.98),
    "name": (0.04, 0.03, 0.05, 0.04, 0.08, 0.08, 0.18, 0.5),
    "company": (0.3, 0.7),
    "event": (0.02, 0.48, 0.5),
}
DEFAULT_U: dict[str, tuple[float, ...]] = {
    "email": (0.05, 0.9484, 0.0005, 0.001, 0.00005, 0.00005),
    "phone": (0.9999, 0.0001),
    "handle": (0.9999, 0.0001),
    "person": (0.9999, 0.0001),
    "name": (0.984, 0.01, 0.004, 0.0005, 0.0005, 0.0009, 0.00005, 0.00005),
    "company": (0.99, 0.01),
    "event": (0.05, 0.85, 0.1),
}

JW_NAME = 0.9
JW_COMPANY = 0.92
NAME_LEN_TWO_EDITS = 12  # folded full names this long may carry two typos
EMAIL_IDENTIFIER_LEVELS = [level("email", "exact_shared_address"), level("email", "exact")]


@dataclass
class MatchModel:
    """Fellegi–Sunter parameters: prior match rate among candidates and m/u per level."""

    prior: float = 0.05
    # P(level | match) and P(level | non-match) per comparison ("m" and "u" in the JSON).
    m_probs: dict[str, list[float]] = field(
        default_factory=lambda: {key: list(value) for key, value in DEFAULT_M.items()}
    )
    u_probs: dict[str, list[float]] = field(
        default_factory=lambda: {key: list(value) for key, value in DEFAULT_U.items()}
    )
    em_iterations: int = 0
    trained_pairs: int = 0
    # People per name among names two different people share (expected, weighted by
    # pairs): an agreeing name carried by fewer people than this counts for more.
    name_people_reference: float = 2.0
    # Learned from organizers' answers (domain/identity/learning.py): per kind of pair
    # (`review_key`) the answers and how many said "same person", and the thresholds the
    # answers support.
    review_answers: dict[str, tuple[int, int]] = field(default_factory=dict)
    review_band: tuple[float, float] = (0.0, 0.0)  # match weights (bits) answers apply to
    review_thresholds: dict[str, float] = field(default_factory=dict)
    review_labels: int = 0

    def weights(self) -> dict[str, list[float]]:
        """log2(m/u) per level (plus what reviews taught): the evidence each level carries."""
        return {
            name: [
                math.log2(m_prob / u_prob)
                for m_prob, u_prob in zip(self.m_probs[name], self.u_probs[name], strict=True)
            ]
            for name in COMPARISONS
        }

    def prior_weight(self) -> float:
        return math.log2(self.prior / (1.0 - self.prior))

    def to_json(self) -> str:
        return json.dumps(
            {
                "prior": self.prior,
                "m": self.m_probs,
                "u": self.u_probs,
                "em_iterations": self.em_iterations,
                "trained_pairs": self.trained_pairs,
                "name_people_reference": self.name_people_reference,
                "review_answers": {k: list(v) for k, v in self.review_answers.items()},
                "review_band": list(self.review_band),
                "review_thresholds": self.review_thresholds,
                "review_labels": self.review_labels,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> MatchModel:
        if not text:
            return cls()
        data = json.loads(text)
        model = cls(
            prior=float(data["prior"]),
            m_probs={key: [float(item) for item in value] for key, value in data["m"].items()},
            u_probs={key: [float(item) for item in value] for key, value in data["u"].items()},
            em_iterations=int(data.get("em_iterations", 0)),
            trained_pairs=int(data.get("trained_pairs", 0)),
            name_people_reference=float(data.get("name_people_reference", 2.0)),
            review_answers={
                key: (int(counts[0]), int(counts[1]))
                for key, counts in data.get("review_answers", {}).items()
            },
            review_band=tuple(float(item) for item in data.get("review_band", (0.0, 0.0)))[:2],  # type: ignore[arg-type]
            review_thresholds={
                key: float(value) for key, value in data.get("review_thresholds", {}).items()
            },
            review_labels=int(data.get("review_labels", 0)),
        )
        if set(model.m_probs) != set(COMPARISONS) or any(
            len(model.m_probs[name]) != len(LEVELS[name]) for name in COMPARISONS
        ):
            return cls()  # parameters of an older comparison layout
        return model


def _jw(left: pl.Series, right: pl.Series) -> pl.Series:
    """Jaro-Winkler similarity per row; null where a side is missing."""
    return _pairwise(left, right, JaroWinkler.normalized_similarity, same=1.0)


def _edits(left: pl.Series, right: pl.Series) -> pl.Series:
    """Damerau-Levenshtein (OSA) distance per row; null where a side is missing."""
    return _pairwise(left, right, OSA.distance, same=0.0).cast(pl.Int64)


def _pairwise(
    left: pl.Series, right: pl.Series, scorer: Callable[..., float], *, same: float
) -> pl.Series:
    """`scorer` of each row's two texts (rapidfuzz, all cores), worked out only where
    both are given and differ: equal texts score `same`, a missing side is null."""
    both = (left.is_not_null() & right.is_not_null()).to_numpy()
    differ = both & (left != right).fill_null(False).to_numpy()
    scores = np.full(left.len(), same, dtype=np.float64)
    idx = np.flatnonzero(differ)
    if idx.size:
        scores[idx] = cpdist(
            left.gather(idx).to_list(), right.gather(idx).to_list(), scorer=scorer, workers=-1
        )
    return pl.Series(np.where(both, scores, np.nan)).fill_nan(None)


COMPARE_CHUNK = 250_000


def compare(
    features: pl.DataFrame,
    pairs: pl.DataFrame,
    related: pl.DataFrame | None = None,
    chunk: int = COMPARE_CHUNK,
    encoded: tuple[pl.DataFrame, pl.DataFrame | None] | None = None,
) -> pl.DataFrame:
    """Comparison levels (l_<name>, Int8, -1 = no evidence) and constraint flags per pair.

    Equality tests run on dense integer codes gathered by row position (no string joins);
    pairs are compared in chunks so memory stays bounded by the chunk, not the input.
    """
    enc, rel = encoded if encoded is not None else encode(features, related)
    ij = pairs.select(pl.col("i").cast(pl.UInt32), pl.col("j").cast(pl.UInt32))
    if ij.height <= chunk:
        return _compare(features, enc, ij, rel)
    return pl.concat(
        [
            _compare(features, enc, ij.slice(start, chunk), rel)
            for start in range(0, ij.height, chunk)
        ]
    )


EQUALITY_COLUMNS: tuple[str, ...] = (
    "source",
    "event_id",
    "person_key",
    "full_f",
    "name_key",
    "name_sorted",
    "name_phonetic",
    "last_f",
    "initial",
    "email_key",
    "email_domain",
    "email_digits",
    "phone",
    *(f"h_{part}" for part in IDENTIFYING_PLATFORMS),
    "company_f",
)
QUALITY_CODES: dict[str, int] = {"ok": 0, "common": 1, "single": 2, "placeholder": 3}


def encode(
    features: pl.DataFrame, related: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Dense integer codes per column (null stays null) and related events as code pairs.

    Computed once per run and passed to every `compare` call on the same features.
    """
    enc = features.select(
        *[pl.col(name).rank("dense").cast(pl.UInt32).alias(name) for name in EQUALITY_COLUMNS],
        pl.col("name_quality").replace_strict(QUALITY_CODES, return_dtype=pl.Int8),
        pl.col("email_shared").fill_null(False),
        pl.col("email_local").str.len_chars().alias("email_local_len"),
        pl.col("name_freq").fill_null(1).cast(pl.Int32),
    )
    if related is None or related.height == 0:
        return enc, None
    codes = (
        pl.DataFrame({"event_id": features["event_id"], "code": enc["event_id"]})
        .drop_nulls()
        .unique()
    )
    rel = (
        related.join(codes.rename({"event_id": "event_a", "code": "ca"}), on="event_a")
        .join(codes.rename({"event_id": "event_b", "code": "cb"}), on="event_b")
        .select(
            pl.min_horizontal("ca", "cb").alias("_ea"),
            pl.max_horizontal("ca", "cb").alias("_eb"),
            pl.lit(True).alias("_related"),
        )
        .unique()
    )
    return enc, rel


def _both(column: str) -> pl.Expr:
    return pl.col(f"{column}_a").is_not_null() & pl.col(f"{column}_b").is_not_null()


def _eq(column: str) -> pl.Expr:
    return pl.col(f"{column}_a") == pl.col(f"{column}_b")


def _side_by_side(enc: pl.DataFrame, pairs: pl.DataFrame, rel: pl.DataFrame | None) -> pl.DataFrame:
    """Each pair's two encoded records in one row (`<col>_a`, `<col>_b`), and `_related`."""
    frame = pl.concat(
        [
            pairs,
            enc.select(pl.all().gather(pairs["i"]).name.suffix("_a")),
            enc.select(pl.all().gather(pairs["j"]).name.suffix("_b")),
        ],
        how="horizontal",
    )
    if rel is None:
        return frame.with_columns(pl.lit(None, dtype=pl.Boolean).alias("_related"))
    return (
        frame.with_columns(
            pl.min_horizontal("event_id_a", "event_id_b").alias("_ea"),
            pl.max_horizontal("event_id_a", "event_id_b").alias("_eb"),
        )
        .join(rel, on=["_ea", "_eb"], how="left", maintain_order="left")
        .drop("_ea", "_eb")
    )


def _string_similarities(features: pl.DataFrame, pairs: pl.DataFrame) -> list[pl.Series | pl.Expr]:
    """Name and company similarity, name and address-local-part edits, per pair."""

    def strings(column: str) -> tuple[pl.Series, pl.Series]:
        return features[column].gather(pairs["i"]), features[column].gather(pairs["j"])

    full_a, full_b = strings("full_f")  # gathered once for the edit distance and lengths
    return [
        _jw(*strings("name_key")).alias("_name_sim"),
        _edits(full_a, full_b).alias("_name_edits"),
        pl.min_horizontal(full_a.str.len_chars(), full_b.str.len_chars()).alias("_name_len"),
        _edits(*strings("email_local")).alias("_local_edits"),
        _jw(*strings("company_f")).alias("_co_sim"),
    ]


def _weak_name() -> pl.Expr:
    return pl.col("name_quality_a").is_in([1, 2]) | pl.col("name_quality_b").is_in([1, 2])


def _email_level() -> pl.Expr:
    same_domain = _eq("email_domain")
    # A typo is one edit with the same digits; `jane.doe` vs `jane.doe84` is what a second
    # Jane Doe gets when the first took the name, so differing digits never count as similar.
    typo = (pl.col("_local_edits") <= 1) & _eq("email_digits")
    return (
        pl.when(~_both("email_key"))
        .then(-1)
        .when(_eq("email_key") & (pl.col("email_shared_a") | pl.col("email_shared_b")))
        .then(level("email", "exact_shared_address"))
        .when(_eq("email_key"))
        .then(level("email", "exact"))
        .when(typo & same_domain & (pl.col("email_local_len_a") >= 4))
        .then(level("email", "similar_local_part"))
        # `jane.doe@gmail` and `jane.doe@outlook`: one person's two accounts, or two
        # namesakes who each took their name; the data decides what it is worth.
        .when(typo & (pl.col("email_local_len_a") >= 4))
        .then(level("email", "same_local_part_other_domain"))
        # A different account at the same provider or employer: people seldom hold two.
        .when(same_domain)
        .then(level("email", "different_same_domain"))
        .otherwise(level("email", "different"))
    )


def _handle_level() -> pl.Expr:
    handles = [f"h_{platform}" for platform in IDENTIFYING_PLATFORMS]
    conflict = pl.any_horizontal([_both(bucket) & ~_eq(bucket) for bucket in handles])
    same = pl.any_horizontal([_both(bucket) & _eq(bucket) for bucket in handles])
    return pl.when(conflict).then(0).when(same).then(1).otherwise(-1)


def _person_level() -> pl.Expr:
    same_source = pl.col("source_a") == pl.col("source_b")
    return (
        pl.when(~_both("person_key") | ~same_source)
        .then(-1)
        .when(_eq("person_key"))
        .then(1)
        .otherwise(0)
    )


def _name_level() -> pl.Expr:
    weak_name = _weak_name()
    # One typo: a single edit (insert, delete, substitute, swap); two in a long name.
    edits = pl.col("_name_edits")
    one_typo = (edits <= 1) | ((edits <= 2) & (pl.col("_name_len") >= NAME_LEN_TWO_EDITS))
    return (
        pl.when(~_both("name_key"))
        .then(-1)
        .when((_eq("full_f") | _eq("name_key")) & weak_name)
        .then(level("name", "same_weak"))
        .when(_eq("full_f"))
        .then(level("name", "exact"))
        .when(_eq("name_key") | _eq("name_sorted"))
        .then(level("name", "nickname_or_swapped"))
        .when(one_typo & ~weak_name)
        .then(level("name", "one_typo"))
        .when(_eq("name_phonetic") & ~weak_name)
        .then(level("name", "sounds_alike"))
        .when(pl.col("_name_sim") >= JW_NAME)
        .then(level("name", "similar"))
        .when(_eq("last_f") & _eq("initial"))
        .then(level("name", "same_initial"))
        .otherwise(level("name", "different"))
    )


def _company_level() -> pl.Expr:
    return (
        pl.when(~_both("company_f"))
        .then(-1)
        .when(_eq("company_f") | (pl.col("_co_sim") >= JW_COMPANY))
        .then(1)
        .otherwise(0)
    )


def _event_level() -> pl.Expr:
    return (
        pl.when(~_both("event_id"))
        .then(-1)
        .when(_eq("event_id"))
        .then(0)
        .when(pl.col("_related").fill_null(False))
        .then(2)
        .otherwise(1)
    )


def _levels() -> list[pl.Expr]:
    phone = pl.when(~_both("phone")).then(-1).when(_eq("phone")).then(1).otherwise(0)
    return [
        _email_level().cast(pl.Int8).alias("l_email"),
        phone.cast(pl.Int8).alias("l_phone"),
        _handle_level().cast(pl.Int8).alias("l_handle"),
        _person_level().cast(pl.Int8).alias("l_person"),
        _name_level().cast(pl.Int8).alias("l_name"),
        _company_level().cast(pl.Int8).alias("l_company"),
        _event_level().cast(pl.Int8).alias("l_event"),
    ]


def _name_flags() -> list[pl.Expr]:
    single = (
        pl.col("name_quality_a").is_in([2, 3])
        | pl.col("name_quality_b").is_in([2, 3])
        | ~_both("name_key")
    )
    return [
        (_weak_name() | ~_both("name_key")).fill_null(True).alias("name_weak"),
        single.fill_null(True).alias("name_single"),
    ]


def _constraints() -> list[pl.Expr]:
    """cannot_link (different handles or accounts, two entries of one guest list) and
    whether an identifier agrees (address, phone, handle, account), from the levels."""
    identifier = (
        pl.col("l_email").is_in(EMAIL_IDENTIFIER_LEVELS)
        | (pl.col("l_phone") == 1)
        | (pl.col("l_handle") == 1)
        | (pl.col("l_person") == 1)
    )
    cannot = (
        (pl.col("l_handle") == 0) | (pl.col("l_person") == 0) | pl.col("_same_event_diff_email")
    )
    return [cannot.alias("cannot_link"), identifier.alias("identifier_agrees")]


def _compare(
    features: pl.DataFrame, enc: pl.DataFrame, pairs: pl.DataFrame, rel: pl.DataFrame | None
) -> pl.DataFrame:
    frame = _side_by_side(enc, pairs, rel).with_columns(_string_similarities(features, pairs))
    same_event_diff_email = (
        _eq("event_id").fill_null(False) & _both("email_key") & ~_eq("email_key").fill_null(False)
    )
    out = frame.select(
        "i",
        "j",
        pl.max_horizontal("name_freq_a", "name_freq_b").alias("name_people"),
        *_levels(),
        *_name_flags(),
        same_event_diff_email.alias("_same_event_diff_email"),
    )
    return out.with_columns(_constraints()).drop("_same_event_diff_email")


def level_counts(compared: pl.DataFrame) -> dict[str, np.ndarray]:
    return {
        name: np.bincount(
            compared[f"l_{name}"].filter(compared[f"l_{name}"] >= 0).cast(pl.Int64).to_numpy(),
            minlength=len(LEVELS[name]),
        ).astype(np.float64)
        for name in COMPARISONS
    }


def estimate_u(sampled: pl.DataFrame, prior_pairs: float = 20_000.0) -> dict[str, list[float]]:
    """u per level from comparisons of random pairs (nearly all non-matches).

    The defaults act as `prior_pairs` pseudo-observations, so a small input (where
    random pairs are few and often true matches) keeps near-default u values.
    """
    counts = level_counts(sampled)
    out: dict[str, list[float]] = {}
    for name in COMPARISONS:
        prior = np.asarray(DEFAULT_U[name])
        cnt = counts[name] + prior_pairs * prior
        out[name] = list((cnt / cnt.sum()).tolist())
    return out


def random_pairs(records: int, size: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    if records < 2:
        return pl.DataFrame(schema={"i": pl.UInt32, "j": pl.UInt32})
    left = rng.integers(0, records, size=size)
    right = rng.integers(0, records, size=size)
    keep = left != right
    return pl.DataFrame(
        {
            "i": np.minimum(left, right)[keep].astype(np.uint32),
            "j": np.maximum(left, right)[keep].astype(np.uint32),
        }
    ).unique()


Probs = dict[str, np.ndarray]


@dataclass
class _Patterns:
    """Distinct comparison patterns (levels per comparison) and how many pairs show each."""

    levels: np.ndarray  # patterns x comparisons, -1 = no evidence
    counts: np.ndarray

    def log_likelihood(self, probs: Probs) -> np.ndarray:
        out = np.zeros(len(self.counts))
        for col, name in enumerate(COMPARISONS):
            lv = self.levels[:, col]
            valid = lv >= 0
            out[valid] += np.log(probs[name][lv[valid]])
        return out

    def level_totals(self, name: str, weights: np.ndarray) -> np.ndarray:
        lv = self.levels[:, COMPARISONS.index(name)]
        valid = lv >= 0
        size = len(LEVELS[name])
        return np.bincount(lv[valid], weights=weights[valid], minlength=size).astype(np.float64)


def _match_posterior(
    patterns: _Patterns, prior: float, m_probs: Probs, u_probs: Probs
) -> np.ndarray:
    log_match = math.log(prior) + patterns.log_likelihood(m_probs)
    log_other = math.log(1 - prior) + patterns.log_likelihood(u_probs)
    return 1.0 / (1.0 + np.exp(np.clip(log_other - log_match, -700, 700)))


def _em_step(
    patterns: _Patterns,
    prior: float,
    m_probs: Probs,
    u_probs: Probs,
    u_prior: Probs,
    prior_strength: float,
) -> tuple[float, Probs, Probs, float]:
    """One EM iteration: the new prior, m and u, and the largest change of any of them."""
    post = _match_posterior(patterns, prior, m_probs, u_probs)
    weight_m = patterns.counts * post
    weight_u = patterns.counts * (1.0 - post)
    new_prior = float(min(max(weight_m.sum() / patterns.counts.sum(), 1e-6), 1 - 1e-6))
    delta = abs(new_prior - prior)
    new_m: Probs = {}
    new_u: Probs = {}
    for name in COMPARISONS:
        acc_m = patterns.level_totals(name, weight_m)
        acc_u = patterns.level_totals(name, weight_u)
        m_new = acc_m + prior_strength * np.asarray(DEFAULT_M[name])
        u_new = acc_u + prior_strength * u_prior[name]
        new_m[name], new_u[name] = m_new / m_new.sum(), u_new / u_new.sum()
        delta = max(
            delta,
            float(np.abs(new_m[name] - m_probs[name]).max()),
            float(np.abs(new_u[name] - u_probs[name]).max()),
        )
    return new_prior, new_m, new_u, delta


def fit_em(
    compared: pl.DataFrame,
    u_probs: dict[str, list[float]],
    iterations: int = 40,
    prior_strength: float = 200.0,
    tol: float = 1e-6,
) -> MatchModel:
    """EM (Winkler) for the prior, m and u among candidate pairs, over comparison patterns.

    Blocking makes candidate non-matches look alike (same last name, similar address),
    so u is re-estimated on the candidates; the random-pair u and the default m act as
    Dirichlet priors worth `prior_strength` pairs each, keeping small inputs sensible.
    """
    cols = [f"l_{name}" for name in COMPARISONS]
    model = MatchModel(u_probs={name: list(u_probs[name]) for name in COMPARISONS})
    if compared.height == 0:
        return model
    table = compared.group_by(cols).len().sort(cols)  # fixed order: reruns are bit-identical
    patterns = _Patterns(
        table.select(cols).to_numpy().astype(np.int64),
        table["len"].to_numpy().astype(np.float64),
    )
    m_now = {name: np.asarray(DEFAULT_M[name], dtype=np.float64) for name in COMPARISONS}
    u_prior = {name: np.asarray(u_probs[name], dtype=np.float64) for name in COMPARISONS}
    u_now = {name: u_prior[name].copy() for name in COMPARISONS}
    prior = 0.2
    done = 0
    for iteration in range(1, iterations + 1):
        done = iteration
        prior, m_now, u_now, delta = _em_step(
            patterns, prior, m_now, u_now, u_prior, prior_strength
        )
        if delta < tol:
            break
    model.m_probs = {name: [float(item) for item in m_now[name]] for name in COMPARISONS}
    model.u_probs = {name: [float(item) for item in u_now[name]] for name in COMPARISONS}
    model.prior = prior
    model.em_iterations = done
    model.trained_pairs = int(patterns.counts.sum())
    return model


def weight_columns(model: MatchModel) -> list[pl.Expr]:
    """w_<comparison>: the log2 Bayes factor of each pair's level (0 without evidence)."""
    weights = model.weights()
    cols = []
    for name in COMPARISONS:
        per_level = weights[name]
        expr = pl.lit(0.0)
        for lv in range(len(per_level) - 1, -1, -1):
            expr = pl.when(pl.col(f"l_{name}") == lv).then(pl.lit(per_level[lv])).otherwise(expr)
        cols.append(expr.alias(f"w_{name}"))
    return cols


TF_WEIGHT_RANGE = (-4.0, 4.0)


def name_frequency_weight(model: MatchModel) -> pl.Expr:
    """w_name_tf: log2(reference people / people carrying this name) on agreeing names.

    The level's weight is an average over all agreeing names; this moves it up for a name
    few people carry and down for a common one (Splink's term-frequency adjustment, with
    frequencies counted in people rather than records).
    """
    people = pl.col("name_people").cast(pl.Float64).clip(1.0, None)
    adjust = (pl.lit(model.name_people_reference) / people).log(2).clip(*TF_WEIGHT_RANGE)
    return (pl.when(pl.col("l_name").is_in(TF_NAME_LEVELS)).then(adjust).otherwise(0.0)).alias(
        "w_name_tf"
    )


def name_people_reference(features: pl.DataFrame) -> float:
    """Expected people per name over the pairs of different people who share a name."""
    per_name = (
        features.filter(pl.col("name_quality").is_in(["ok", "common"]))
        .group_by("name_key")
        .agg(pl.col("name_freq").first().cast(pl.Float64).alias("f"))
        .filter(pl.col("f") >= 2)
    )
    if per_name.height == 0:
        return 2.0
    pairs = per_name.select((pl.col("f") * (pl.col("f") - 1)).alias("w"), "f")
    return float(pairs.select((pl.col("w") * pl.col("f")).sum() / pl.col("w").sum()).item())


# Answers about a kind of pair that a guard decides: at least this many, and decisive
# (a merge, or clearly two people), replace the guard. The guard distrusts the score, so
# there the answers start from even odds worth GUARD_PRIOR_ANSWERS answers.
GUARD_LIFT_ANSWERS = 5
GUARD_PRIOR_ANSWERS = 1.0
REVIEW_STRENGTH = 2.0  # the model's own probability counts as this many answers


def pattern_key() -> pl.Expr:
    """The comparison pattern of a pair: its level per comparison, joined by ","."""
    return pl.concat_str(
        [pl.col(f"l_{name}").cast(pl.String) for name in COMPARISONS], separator=","
    )


def name_only_weak() -> pl.Expr:
    """A weak name (single word, placeholder, common) with nothing else that agrees.

    A weak name is not "a name alone" when something else about the two records agrees:
    for a common name, events of one community; for any weak name, the same company or
    nearly the same address (one typo, same digits).
    """
    personal = (pl.col("l_company") == 1) | (
        pl.col("l_email") == level("email", "similar_local_part")
    )
    corroborated = personal | ((pl.col("l_event") == 2) & ~pl.col("name_single"))
    return ~pl.col("identifier_agrees") & pl.col("name_weak") & ~corroborated


def email_name_conflict() -> pl.Expr:
    """A shared inbox under another person's name; the same private address under a
    changed or misspelt name is the same person."""
    return (
        (pl.col("l_email") == level("email", "exact_shared_address"))
        & (pl.col("l_name") <= level("name", "similar"))
        & (pl.col("l_phone") != 1)
        & (pl.col("l_handle") != 1)
        & (pl.col("l_person") != 1)
    )


def review_key() -> pl.Expr:
    """The kind of pair answers teach about: its comparison pattern, how many people carry
    an agreeing name (1, 2, more) and the guard that holds it back, if any."""
    rarity = (
        pl.when(pl.col("l_name").is_in(TF_NAME_LEVELS))
        .then(pl.col("name_people").clip(1, 3).cast(pl.String))
        .otherwise(pl.lit("-"))
    )
    guard = (
        pl.when(name_only_weak())
        .then(pl.lit("weak-name"))
        .when(email_name_conflict())
        .then(pl.lit("shared-address"))
        .otherwise(pl.lit("-"))
    )
    return pl.concat_str([pattern_key(), rarity, guard], separator="|")


def _with_review_answers(out: pl.DataFrame, model: MatchModel) -> pl.DataFrame:
    """Probabilities moved towards what organizers answered about the same kind of pair: a
    Beta posterior in which the model's own probability counts as REVIEW_STRENGTH answers.

    Applied where answers come from (a guarded kind, or a score in the review band); a
    pair the model is sure about keeps its probability.
    """
    answered = {kind: counts[0] for kind, counts in model.review_answers.items()}
    said_same = {kind: counts[1] for kind, counts in model.review_answers.items()}
    low, high = model.review_band
    weight = pl.col("match_weight")
    out = out.with_columns(review_key().alias("_key"))
    answers = pl.col("_key").replace_strict(answered, default=0, return_dtype=pl.Int64)
    same = pl.col("_key").replace_strict(said_same, default=0, return_dtype=pl.Int64)
    guarded = ~pl.col("_key").str.ends_with("|-")
    applies = (answers > 0) & (guarded | weight.is_between(low, high, closed="left"))
    prob = pl.col("match_probability")
    # A guard says the score is not the evidence for its kind: there answers start from
    # even odds.
    prior = pl.when(guarded).then(0.5).otherwise(prob)
    strength = pl.when(guarded).then(GUARD_PRIOR_ANSWERS).otherwise(REVIEW_STRENGTH)
    post = ((same + strength * prior) / (answers + strength)).clip(1e-6, 1 - 1e-6)
    return out.with_columns(
        pl.when(applies).then(post).otherwise(prob).alias("match_probability"),
        pl.when(applies).then((post / (1 - post)).log(2)).otherwise(weight).alias("match_weight"),
        pl.when(applies).then(answers).otherwise(0).cast(pl.UInt32).alias("review_answers"),
    ).drop("_key")


def score(compared: pl.DataFrame, model: MatchModel, keep_weights: bool = False) -> pl.DataFrame:
    """Adds match_weight and match_probability (and the w_* columns when asked).

    Per-feature weights are only kept for the few pairs that get explained: on millions of
    pairs they would cost more memory than everything else.
    """
    total = (
        pl.sum_horizontal(weight_columns(model))
        + name_frequency_weight(model)
        + model.prior_weight()
    )
    out = compared.with_columns(total.alias("match_weight")).with_columns(
        (1.0 / (1.0 + (2.0 ** (-pl.col("match_weight").clip(-200, 200))))).alias(
            "match_probability"
        )
    )
    if model.review_answers:
        out = _with_review_answers(out, model)
    if keep_weights:
        return out.with_columns(*weight_columns(model), name_frequency_weight(model))
    return out


def apply_guards(
    scored: pl.DataFrame,
    merge_at: float,
    suggest_at: float,
    merge_without_identifier_at: float | None = None,
) -> pl.DataFrame:
    """The decision each pair allows on its own: merge, suggest, distinct or cannot_link.

    Guards: a name alone never merges when it is a single word, a placeholder or common
    (such pairs are distinct); an address used under another given name (shared inbox)
    is always a suggestion, for an organizer to decide; cannot-link evidence wins over any
    score. Once organizers' answers about a guarded kind are decisive (GUARD_LIFT_ANSWERS
    or more, and a merge or clearly two people), they decide instead.
    """
    prob = pl.col("match_probability")
    by_score = (
        pl.when(prob >= merge_at)
        .then(pl.lit("merge"))
        .when(prob >= suggest_at)
        .then(pl.lit("suggest"))
    ).otherwise(pl.lit("distinct"))
    # Answers replace a guard once they are decisive: a merge, or a clear "two people".
    lifted = (
        (pl.col("review_answers") >= GUARD_LIFT_ANSWERS)
        & ((prob >= merge_at) | (prob < suggest_at))
        if "review_answers" in scored.columns
        else pl.lit(False)
    )
    weak = name_only_weak() & ~lifted
    # Without any shared identifier (address, phone, handle or account) a merge rests on
    # names and co-attendance; it needs the stricter threshold, else it is a suggestion.
    weak_merge = (
        ~pl.col("identifier_agrees") & (prob < merge_without_identifier_at) & (by_score == "merge")
        if merge_without_identifier_at is not None
        else pl.lit(False)
    )
    conflict = email_name_conflict() & ~lifted
    decision = (
        pl.when(pl.col("cannot_link"))
        .then(pl.lit("cannot_link"))
        .when(weak)
        .then(pl.lit("distinct"))
        .when(conflict | weak_merge)
        .then(pl.lit("suggest"))
        .otherwise(by_score)
    )
    guard = (
        pl.when(pl.col("cannot_link"))
        .then(pl.lit("cannot-link evidence"))
        .when(weak & (by_score != "distinct"))
        .then(pl.lit("name alone is a single word, placeholder or common"))
        .when(conflict)
        .then(pl.lit("shared address with a different name: for review"))
        .when(weak_merge)
        .then(pl.lit("no shared identifier and below the stricter threshold"))
    )
    return scored.with_columns(decision.alias("decision"), guard.alias("guard"))
