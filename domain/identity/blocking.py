"""Candidate pairs: exact-key blocks plus sorted neighbourhoods, near-linear in records.

Each rule sorts the records by a key and pairs each record with the next `window` records
(in exact blocks only those that share the key). A large block (a very common name) thus
yields chains rather than all pairs; clustering is transitive, so the chain still
connects the records of one person while the number of comparisons stays O(n · window).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from domain.identity.features import IDENTIFYING_PLATFORMS


@dataclass(frozen=True)
class BlockingRule:
    name: str
    key: pl.Expr
    window: int
    exact: bool = True  # pair only records whose key is equal


def default_rules(window: int = 12, neighbourhood: int = 4) -> list[BlockingRule]:
    ok_name = pl.col("name_quality").is_in(["ok", "common"])
    rules = [
        BlockingRule("email", pl.col("email_key"), window),
        BlockingRule("phone", pl.col("phone"), window),
        BlockingRule("person", pl.col("person_key"), window),
        *(BlockingRule(f"handle_{p}", pl.col(f"h_{p}"), window) for p in IDENTIFYING_PLATFORMS),
        BlockingRule(
            "email_local",
            pl.when(pl.col("email_local").str.len_chars() >= 5).then(pl.col("email_local")),
            window,
        ),
        # The letters of an address without its digits: `jane.doe84@work` and
        # `janedoe@gmail` of one person (gmail drops the dot) meet here.
        BlockingRule(
            "email_letters",
            pl.when(pl.col("email_local").str.len_chars() >= 5).then(
                pl.col("email_local").str.replace_all(r"[^a-z]", "")
            ),
            window,
        ),
        BlockingRule("name", pl.col("name_key"), window),
        BlockingRule("name_swapped", pl.when(ok_name).then(pl.col("name_sorted")), window),
        BlockingRule(
            "last_initial",
            pl.when(ok_name).then(
                pl.concat_str([pl.col("last_f"), pl.col("initial")], separator=" ")
            ),
            window,
        ),
        # Within one event community: namesakes of a common name, and a typo in either
        # the given name or the surname.
        BlockingRule(
            "name_community",
            pl.when(pl.col("name_key").is_not_null()).then(
                pl.concat_str([pl.col("name_key"), pl.col("event_group")], separator="|")
            ),
            window,
        ),
        BlockingRule(
            "last_initial_community",
            pl.concat_str(
                [pl.col("last_f"), pl.col("initial"), pl.col("event_group")], separator="|"
            ),
            window,
        ),
        # Sorted neighbourhoods catch typos at the end (forward) or start (reversed) of names.
        BlockingRule(
            "name_sn", pl.when(ok_name).then(pl.col("name_key")), neighbourhood, exact=False
        ),
        BlockingRule(
            "name_sn_reversed",
            pl.when(ok_name).then(pl.col("name_key").str.reverse()),
            neighbourhood,
            exact=False,
        ),
    ]
    return rules


def candidate_pairs(
    features: pl.DataFrame,
    rules: list[BlockingRule] | None = None,
    event_group: pl.Series | None = None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Distinct pairs (i, j) of row positions in `features`, i < j, and pairs per rule.

    `event_group` labels each record's event community (see `event_groups`); without it
    each event is its own community.
    """
    rules = rules or default_rules()
    group = event_group if event_group is not None else features["event_id"]
    base = features.with_columns(group.alias("event_group")).select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("i"),
        "observed_at",
        *[r.key.alias(f"k{n}") for n, r in enumerate(rules)],
    )
    frames: list[pl.DataFrame] = []
    per_rule: dict[str, int] = {}
    for n, rule in enumerate(rules):
        key = f"k{n}"
        s = base.select("i", key).filter(pl.col(key).is_not_null()).sort(key, "i")
        found = []
        for k in range(1, rule.window + 1):
            shifted = s.select(
                pl.col("i").alias("a"),
                pl.col("i").shift(-k).alias("b"),
                (pl.col(key) == pl.col(key).shift(-k)).alias("same"),
            ).filter(pl.col("b").is_not_null())
            if rule.exact:
                shifted = shifted.filter(pl.col("same"))
                if shifted.height == 0:
                    break
            found.append(shifted.select("a", "b"))
        if found:
            rule_pairs = pl.concat(found)
            per_rule[rule.name] = rule_pairs.height
            frames.append(rule_pairs)
        else:
            per_rule[rule.name] = 0
    if not frames:
        return pl.DataFrame(schema={"i": pl.UInt32, "j": pl.UInt32}), per_rule
    pairs = (
        pl.concat(frames)
        .select(
            pl.min_horizontal("a", "b").cast(pl.UInt32).alias("i"),
            pl.max_horizontal("a", "b").cast(pl.UInt32).alias("j"),
        )
        .filter(pl.col("i") != pl.col("j"))
        .unique()
        .sort("i", "j")
    )
    return pairs, per_rule


def all_pairs(n: int) -> pl.DataFrame:
    """Every pair, for small components (an organizer's action touches a few records)."""
    idx = pl.DataFrame({"i": pl.arange(0, n, eager=True, dtype=pl.UInt32)})
    return (
        idx.join(idx.rename({"i": "j"}), how="cross")
        .filter(pl.col("i") < pl.col("j"))
        .select(pl.col("i").cast(pl.UInt32), pl.col("j").cast(pl.UInt32))
    )
