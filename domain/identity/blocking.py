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
    keys = _blocking_keys(features, rules, event_group)
    frames: list[pl.LazyFrame] = []
    names: list[str] = []
    for rule_index, rule in enumerate(rules):
        key = f"k{rule_index}"
        frames.extend(_window_pairs(_sorted_block_keys(keys, key, rule), key, rule, rule_index))
        names.append(rule.name)
    if not frames:
        return pl.DataFrame(schema={"i": pl.UInt32, "j": pl.UInt32}), dict.fromkeys(names, 0)
    found = pl.concat(frames).collect()
    counts = dict(found.group_by("rule").len().iter_rows())
    per_rule = {name: int(counts.get(rule_index, 0)) for rule_index, name in enumerate(names)}
    return _distinct_ordered_pairs(found), per_rule


def _blocking_keys(
    features: pl.DataFrame, rules: list[BlockingRule], event_group: pl.Series | None
) -> pl.DataFrame:
    """Row position and one key column per rule (`k0`, `k1`, ...), computed in one pass."""
    group = event_group if event_group is not None else features["event_id"]
    return features.with_columns(group.alias("event_group")).select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("i"),
        "observed_at",
        *[rule.key.alias(f"k{rule_index}") for rule_index, rule in enumerate(rules)],
    )


def _sorted_block_keys(keys: pl.DataFrame, key: str, rule: BlockingRule) -> pl.LazyFrame:
    """Records with a key, sorted by it; materialized once because every window reads it."""
    sorted_keys = keys.lazy().select("i", key).filter(pl.col(key).is_not_null())
    if rule.exact:
        # Exact blocks only need equality: sort 64-bit hashes, not strings, and drop
        # records alone in their block first. A hash collision only adds a candidate.
        sorted_keys = (
            sorted_keys.select("i", pl.col(key).hash(7).alias(key))
            .filter(pl.len().over(key) > 1)
            .sort(key, "i")
        )
    else:
        sorted_keys = sorted_keys.sort(key, "i")
    return sorted_keys.collect().lazy()


def _window_pairs(
    sorted_keys: pl.LazyFrame, key: str, rule: BlockingRule, rule_index: int
) -> list[pl.LazyFrame]:
    """Each record paired with the next `window` records (in exact blocks: same key only)."""
    frames: list[pl.LazyFrame] = []
    for offset in range(1, rule.window + 1):
        shifted = sorted_keys.select(
            pl.col("i").alias("a"),
            pl.col("i").shift(-offset).alias("b"),
            (pl.col(key) == pl.col(key).shift(-offset)).alias("same"),
        ).filter(pl.col("b").is_not_null())
        if rule.exact:
            shifted = shifted.filter(pl.col("same"))
        frames.append(shifted.select("a", "b", pl.lit(rule_index, dtype=pl.UInt8).alias("rule")))
    return frames


def _distinct_ordered_pairs(found: pl.DataFrame) -> pl.DataFrame:
    """Pairs found by any rule, once each, as (i, j) with i < j in sorted order.

    Packing both positions into one 64-bit integer makes dedup and sort a single column.
    """
    low = pl.min_horizontal("a", "b").cast(pl.UInt64)
    high = pl.max_horizontal("a", "b").cast(pl.UInt64)
    return (
        found.lazy()
        .filter(pl.col("a") != pl.col("b"))
        .select((low * (1 << 32) + high).alias("key"))
        .unique()
        .sort("key")
        .select(
            (pl.col("key") // (1 << 32)).cast(pl.UInt32).alias("i"),
            (pl.col("key") % (1 << 32)).cast(pl.UInt32).alias("j"),
        )
        .collect()
    )


def all_pairs(n: int) -> pl.DataFrame:
    """Every pair, for small components (an organizer's action touches a few records)."""
    idx = pl.DataFrame({"i": pl.arange(0, n, eager=True, dtype=pl.UInt32)})
    return (
        idx.join(idx.rename({"i": "j"}), how="cross")
        .filter(pl.col("i") < pl.col("j"))
        .select(pl.col("i").cast(pl.UInt32), pl.col("j").cast(pl.UInt32))
    )
