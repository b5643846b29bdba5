"""Golden records: one value per attribute per member, chosen by survivorship rules.

Rules (documented here, applied to every member, ties broken left to right):
- display name, first/last name: most frequent spelling (after folding), then source trust,
  then most recent; placeholders ("Guest", "Plus one") never win.
- emails, phones: every distinct value is kept; the primary one is the most frequent,
  then the most trusted source, then the most recent.
- handles per platform: most trusted source, then most recent, then most frequent.
- company and job title: most recent (people change jobs), then trust, then frequency.
Every chosen value lists the observation ids it came from.
"""

from __future__ import annotations

import polars as pl

from domain.identity.names import fold, is_placeholder
from domain.model import HANDLE_PLATFORMS

DEFAULT_TRUST: tuple[str, ...] = ("luma", "eventbrite", "meetup", "partiful")

RULES: dict[str, tuple[str, ...]] = {
    "display_name": ("frequency", "trust", "recency"),
    "first_name": ("frequency", "trust", "recency"),
    "last_name": ("frequency", "trust", "recency"),
    "email": ("frequency", "trust", "recency"),
    "phone": ("frequency", "trust", "recency"),
    **{f"handle_{p}": ("trust", "recency", "frequency") for p in HANDLE_PLATFORMS},
    "company": ("recency", "trust", "frequency"),
    "job_title": ("recency", "trust", "frequency"),
}
MULTI_VALUED: frozenset[str] = frozenset({"email", "phone"})

# The golden record's columns, in order (beside `member_id`).
GOLDEN_FIELDS: tuple[str, ...] = (
    "display_name",
    "first_name",
    "last_name",
    "email",
    "emails",
    "phone",
    "phones",
    *(f"handle_{p}" for p in HANDLE_PLATFORMS),
    "company",
    "job_title",
    "observation_count",
    "sources",
    "first_seen",
    "last_seen",
)


_RANK_KEYS: dict[str, tuple[str, bool]] = {
    "frequency": ("count", True),
    "trust": ("trust_rank", False),
    "recency": ("last_observed_at", True),
}


def _ranked_values(obs: pl.DataFrame, attr: str, rule: tuple[str, ...]) -> pl.DataFrame:
    """Each member's distinct values of one attribute, best first by its rule."""
    value = pl.col(attr)
    if attr in ("display_name", "first_name", "last_name"):
        value = pl.when(pl.col("_ok").fill_null(False)).then(value)
    cand = obs.select(
        "_member",
        "_record",
        "_source",
        "trust_rank",
        "observed_at",
        value.cast(pl.String).alias("value"),
    ).filter(pl.col("value").is_not_null() & (pl.col("value").str.strip_chars() != ""))
    folded = cand["value"].str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]+", "")
    grouped = (
        cand.with_columns(folded.alias("vkey"))
        .group_by("_member", "vkey")
        .agg(
            pl.col("value").last().alias("value"),  # the most recent spelling
            pl.col("_record").sort().alias("_records"),
            pl.col("_source").unique().cast(pl.String).sort().alias("sources"),
            pl.len().alias("count"),
            pl.col("trust_rank").min().alias("trust_rank"),
            pl.col("observed_at").max().alias("last_observed_at"),
        )
    )
    cols = [_RANK_KEYS[r][0] for r in rule] + ["value"]
    desc = [_RANK_KEYS[r][1] for r in rule] + [False]
    return grouped.sort(["_member", *cols], descending=[False, *desc], nulls_last=True).select(
        "_member",
        pl.lit(attr).alias("attribute"),
        "value",
        "_records",
        "sources",
        "count",
        "last_observed_at",
        (pl.int_range(pl.len()).over("_member") == 0).alias("chosen"),
        pl.lit(" > ".join(rule)).alias("rule"),
    )


def _with_ids(ranked: pl.DataFrame, obs: pl.DataFrame) -> pl.DataFrame:
    """Member and record codes back to their ids (records stay in id order)."""
    members = obs.select("_member", "member_id").unique("_member")
    records = obs.select("_record", "observation_id").unique("_record")
    numbered = ranked.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"))
    ids = (
        numbered.select("_row", "_records")
        .explode("_records")
        .join(
            records.rename({"_record": "_records"}),
            on="_records",
            how="left",
            maintain_order="left",
        )
        .group_by("_row", maintain_order=True)
        .agg(pl.col("observation_id").alias("observation_ids"))
    )
    return (
        numbered.join(ids, on="_row", how="left", maintain_order="left")
        .join(members, on="_member", how="left", maintain_order="left")
        .select(
            "member_id",
            "attribute",
            "value",
            "observation_ids",
            "sources",
            "count",
            "last_observed_at",
            "chosen",
            "rule",
        )
    )


def golden_records(
    observations: pl.DataFrame,
    member_of: pl.DataFrame,
    trust_order: tuple[str, ...] = DEFAULT_TRUST,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Returns (members, provenance).

    members: member_id, display_name, first_name, last_name, email, emails, phone, phones,
    handle_<platform>, company, job_title, observation_count, sources, first_seen, last_seen.
    provenance: member_id, attribute, value, chosen, rule, observation_ids, sources, count,
    last_observed_at.
    """
    records = _records_with_members(observations, member_of)
    records = _with_trust_and_display_name(records, trust_order)
    records = _with_usable_names_oldest_first(records)
    # One attribute at a time: the candidate table never holds every attribute at once.
    provenance = _with_ids(
        pl.concat([_ranked_values(records, attr, rule) for attr, rule in RULES.items()]), records
    )
    members = (
        _member_stats(records)
        .join(_chosen_values(provenance), on="member_id", how="left")
        .join(_multi_valued_lists(provenance), on="member_id", how="left")
        .with_columns(
            pl.col("emails").fill_null([]),
            pl.col("phones").fill_null([]),
        )
        .sort("member_id")
    )
    return members.select("member_id", *GOLDEN_FIELDS), provenance.sort(
        "member_id", "attribute", "chosen", descending=[False, False, True]
    )


def _records_with_members(observations: pl.DataFrame, member_of: pl.DataFrame) -> pl.DataFrame:
    """Each record with its member id and compact integer codes.

    The long candidate table holds a row per record and attribute: integer codes for the
    member and the record (ranked, so code order is id order) keep it small.
    """
    records = observations.join(
        member_of.select("observation_id", "member_id"), on="observation_id"
    )
    return records.with_columns(
        pl.col("member_id").rank("dense").cast(pl.UInt32).alias("_member"),
        pl.col("observation_id").rank("dense").cast(pl.UInt32).alias("_record"),
        pl.col("source").cast(pl.Categorical).alias("_source"),
    )


def _with_trust_and_display_name(
    records: pl.DataFrame, trust_order: tuple[str, ...]
) -> pl.DataFrame:
    """Trust rank of each record's source (unknown sources last) and its full name."""
    trust = pl.DataFrame(
        {"source": list(trust_order), "trust_rank": list(range(len(trust_order)))},
        schema={"source": pl.String, "trust_rank": pl.Int64},
    )
    return records.join(trust, on="source", how="left").with_columns(
        pl.col("trust_rank").fill_null(len(trust_order)),
        pl.coalesce(
            pl.col("full_name"),
            pl.concat_str(["first_name", "last_name"], separator=" ", ignore_nulls=True),
        ).alias("display_name"),
    )


def _with_usable_names_oldest_first(records: pl.DataFrame) -> pl.DataFrame:
    """Flags placeholder display names and sorts the records oldest first.

    Sorted once here (not the several times longer candidate table): every per-group
    aggregation then sees its values oldest first.
    """
    names = records["display_name"].unique().drop_nulls().to_list()
    usable = pl.DataFrame(
        {"display_name": names, "_ok": [not is_placeholder(fold(n)) for n in names]},
        schema={"display_name": pl.String, "_ok": pl.Boolean},
    )
    return records.join(usable, on="display_name", how="left").sort(
        "observed_at", "observation_id", nulls_last=False
    )


def _chosen_values(provenance: pl.DataFrame) -> pl.DataFrame:
    """One column per attribute with the chosen value; attributes nobody has stay null."""
    chosen = provenance.filter(pl.col("chosen")).select("member_id", "attribute", "value")
    wide = chosen.pivot(on="attribute", index="member_id", values="value")
    for attr in RULES:
        if attr not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.String).alias(attr))
    return wide


def _multi_valued_lists(provenance: pl.DataFrame) -> pl.DataFrame:
    """Every address and phone of a member, chosen one first, then most frequent."""
    multi = (
        provenance.filter(pl.col("attribute").is_in(list(MULTI_VALUED)))
        .sort("member_id", "chosen", "count", descending=[False, True, True])
        .group_by("member_id", "attribute", maintain_order=True)
        .agg(pl.col("value"))
        .pivot(on="attribute", index="member_id", values="value")
    )
    for attr in MULTI_VALUED:
        if attr not in multi.columns:
            multi = multi.with_columns(pl.lit(None, dtype=pl.List(pl.String)).alias(attr))
    return multi.rename({"email": "emails", "phone": "phones"})


def _member_stats(records: pl.DataFrame) -> pl.DataFrame:
    """Record count, sources and first/last sighting per member."""
    return records.group_by("member_id").agg(
        pl.len().alias("observation_count"),
        pl.col("source").unique().sort().alias("sources"),
        pl.col("observed_at").min().alias("first_seen"),
        pl.col("observed_at").max().alias("last_seen"),
    )
