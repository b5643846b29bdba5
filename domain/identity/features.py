"""Per-observation matching features and the frequency statistics they depend on."""

from __future__ import annotations

from collections.abc import Callable

import jellyfish
import polars as pl

from domain.identity.names import (
    NICKNAMES,
    canonical_email,
    clean_handle,
    fold,
    fold_company,
    is_placeholder,
)

# Platforms whose handles identify one account; two different ones are two people.
IDENTIFYING_PLATFORMS: tuple[str, ...] = ("instagram", "linkedin", "twitter", "github")

FEATURE_COLUMNS: tuple[str, ...] = (
    "observation_id",
    "source",
    "event_id",
    "person_key",
    "first_f",
    "last_f",
    "first_c",
    "full_f",
    "name_key",
    "name_sorted",
    "name_phonetic",
    "initial",
    "name_quality",
    "email_key",
    "email_local",
    "email_domain",
    "email_digits",
    "phone",
    *(f"h_{p}" for p in IDENTIFYING_PLATFORMS),
    "company_f",
    "observed_at",
    "name_freq",
    "email_shared",
)


def _map_unique(col: pl.Series, fn: Callable[[str | None], str | None]) -> pl.Series:
    """Applies a Python function once per distinct value (names repeat a lot)."""
    uniq = col.unique().drop_nulls()
    mapping = pl.DataFrame(
        {"k": uniq, "v": [fn(x) for x in uniq.to_list()]}, schema={"k": pl.String, "v": pl.String}
    )
    out = pl.DataFrame({"k": col}).join(mapping, on="k", how="left", maintain_order="left")
    return out["v"].alias(col.name)


def prepare_features(
    observations: pl.DataFrame,
    stats: pl.DataFrame | None = None,
    common_name_min: int = 5,
) -> pl.DataFrame:
    """Normalized matching keys per observation.

    `stats` (observation_id, name_freq, email_shared) overrides the frequencies computed
    from `observations`, so a small component is scored with the whole data's statistics.
    """
    raw = _raw_matching_columns(observations)
    features = _folded_values(raw)
    features = _name_and_email_parts(features)
    features = _with_canonical_first_name(features)
    features = _with_name_keys(features)
    features = _with_frequencies(features, stats)
    features = _mark_common_names(features, common_name_min)
    return features.select(FEATURE_COLUMNS)


def _raw_matching_columns(observations: pl.DataFrame) -> pl.DataFrame:
    """The source columns matching reads, with one full name and one key per source person."""
    full_source = pl.coalesce(
        pl.col("full_name"),
        pl.concat_str(
            [pl.col("first_name"), pl.col("last_name")], separator=" ", ignore_nulls=True
        ),
    )
    return observations.select(
        "observation_id",
        "source",
        "event_id",
        pl.when(pl.col("source_person_id").is_not_null())
        .then(pl.concat_str([pl.col("source"), pl.col("source_person_id")], separator=":"))
        .alias("person_key"),
        full_source.alias("full_raw"),
        "first_name",
        "last_name",
        "email",
        "phone",
        *(pl.col(f"handle_{p}").alias(f"hraw_{p}") for p in IDENTIFYING_PLATFORMS),
        "company",
        "observed_at",
    )


def _folded_values(raw: pl.DataFrame) -> pl.DataFrame:
    """Folded names, canonical address, company and handles: spelling variants compare equal."""
    full_folded = _map_unique(raw["full_raw"], fold)
    first_folded = _map_unique(raw["first_name"], fold)
    last_folded = _map_unique(raw["last_name"], fold)
    email_key = _map_unique(raw["email"], canonical_email)
    company_folded = _map_unique(raw["company"], fold_company)
    handles = [
        _map_unique(raw[f"hraw_{p}"], clean_handle).alias(f"h_{p}") for p in IDENTIFYING_PLATFORMS
    ]
    kept = raw.select("observation_id", "source", "event_id", "person_key", "phone", "observed_at")
    return kept.with_columns(
        full_folded.alias("full_f"),
        first_folded.alias("first_fold"),
        last_folded.alias("last_fold"),
        email_key.alias("email_key"),
        company_folded.alias("company_f"),
        *handles,
    )


def _name_and_email_parts(features: pl.DataFrame) -> pl.DataFrame:
    """Given name, surname, sorted name and address parts that blocking and scoring compare."""
    tokens = pl.col("full_f").str.split(" ")
    return features.with_columns(
        # Prefer the source's own split; otherwise first token / last token of the full name.
        pl.coalesce(pl.col("first_fold").str.split(" ").list.first(), tokens.list.first()).alias(
            "first_f"
        ),
        pl.when(pl.col("last_fold").is_not_null())
        .then(pl.col("last_fold"))
        .when(tokens.list.len() > 1)
        .then(tokens.list.last())
        .alias("last_f"),
        tokens.list.sort().list.join(" ").alias("name_sorted"),
        pl.col("email_key").str.split("@").list.first().alias("email_local"),
        pl.col("email_key").str.split("@").list.last().alias("email_domain"),
        pl.col("email_key")
        .str.split("@")
        .list.first()
        .str.extract_all(r"\d+")
        .list.join("")
        .alias("email_digits"),
    )


def _with_canonical_first_name(features: pl.DataFrame) -> pl.DataFrame:
    """Nicknames mapped to their full given name, so `Bill` and `William` share a key."""
    nicknames = pl.DataFrame(
        {"tok": list(NICKNAMES), "canon": list(NICKNAMES.values())},
        schema={"tok": pl.String, "canon": pl.String},
    )
    joined = features.join(
        nicknames, left_on="first_f", right_on="tok", how="left", maintain_order="left"
    )
    return joined.with_columns(pl.coalesce("canon", "first_f").alias("first_c")).drop("canon")


def _with_name_keys(features: pl.DataFrame) -> pl.DataFrame:
    """Name key, initial, phonetic key and name quality; placeholder names get no key."""
    placeholder = _map_unique(features["full_f"], lambda v: "1" if is_placeholder(v) else None)
    features = features.with_columns(
        placeholder.alias("is_ph"),
        pl.concat_str(
            [pl.col("first_c"), pl.col("last_f")], separator=" ", ignore_nulls=True
        ).alias("name_key"),
        pl.col("first_f").str.slice(0, 1).alias("initial"),
    )
    features = features.with_columns(
        _map_unique(features["full_f"], phonetic_key).alias("name_phonetic")
    )
    no_usable_name = pl.col("full_f").is_null() | pl.col("is_ph").is_not_null()
    return features.with_columns(
        pl.when(no_usable_name)
        .then(pl.lit("placeholder"))
        .when(pl.col("last_f").is_null() | (pl.col("first_f").str.len_chars() <= 1))
        .then(pl.lit("single"))
        .otherwise(pl.lit("ok"))
        .alias("name_quality"),
        pl.when(no_usable_name).then(None).otherwise(pl.col("name_key")).alias("name_key"),
    ).drop("is_ph")


def _with_frequencies(features: pl.DataFrame, stats: pl.DataFrame | None) -> pl.DataFrame:
    """Name frequency and shared-address flag, from `stats` when given (whole-data figures)."""
    if stats is not None and stats.height:
        joined = features.join(
            stats.select("observation_id", "name_freq", "email_shared"),
            on="observation_id",
            how="left",
            maintain_order="left",
        )
        return joined.with_columns(
            pl.col("name_freq").fill_null(1).cast(pl.Int64),
            pl.col("email_shared").fill_null(False),
        )
    return features.with_columns(name_frequencies(features), email_shared_flags(features))


def _mark_common_names(features: pl.DataFrame, common_name_min: int) -> pl.DataFrame:
    """A name many people carry proves less, so scoring weighs it down."""
    return features.with_columns(
        pl.when((pl.col("name_quality") == "ok") & (pl.col("name_freq") >= common_name_min))
        .then(pl.lit("common"))
        .otherwise(pl.col("name_quality"))
        .alias("name_quality")
    )


def phonetic_key(name: str | None) -> str | None:
    """Metaphone of each part, sorted: `Jesica Clark` and `Jessica Clarke` share a key."""
    if not name:
        return None
    codes = sorted(jellyfish.metaphone(part) for part in name.split() if part)
    return " ".join(c for c in codes if c) or None


def name_frequencies(df: pl.DataFrame) -> pl.Series:
    """How many distinct people carry each name key: a person's own repeat records must
    not make their name look common.

    Records of one name that share an address or a phone are one person (transitively,
    by label propagation); records with neither count as at most as many people as the
    most that attend one event under that name, since one person attends an event once.
    """
    named = df.select(
        "name_key", "email_key", "phone", "event_id", pl.int_range(pl.len()).alias("row")
    ).filter(pl.col("name_key").is_not_null())
    ident = named.filter(pl.col("email_key").is_not_null() | pl.col("phone").is_not_null())
    label = ident.with_columns(pl.col("row").alias("label"))
    for _ in range(4):  # chains longer than this are rare; an extra person only lowers weight
        label = label.with_columns(
            pl.col("label").min().over("name_key", "email_key").alias("label")
        ).with_columns(
            pl.when(pl.col("phone").is_not_null())
            .then(pl.col("label").min().over("name_key", "phone"))
            .otherwise(pl.col("label"))
            .alias("label")
        )
    with_id = label.group_by("name_key").agg(pl.col("label").n_unique().alias("people"))
    per_event = (
        named.group_by("name_key", "event_id")
        .len()
        .group_by("name_key")
        .agg(pl.col("len").max().alias("at_one_event"))
    )
    people = per_event.join(with_id, on="name_key", how="left").select(
        "name_key", pl.max_horizontal(pl.col("people").fill_null(0), "at_one_event").alias("f")
    )
    out = df.select("name_key").join(people, on="name_key", how="left", maintain_order="left")
    return out.select(pl.col("f").fill_null(1).cast(pl.Int64).alias("name_freq")).to_series()


def _different_people(given_names: list[str]) -> bool:
    """Two given names that neither sound alike nor are one typo apart: two people."""
    for k, a in enumerate(given_names):
        for b in given_names[k + 1 :]:
            if jellyfish.metaphone(a) != jellyfish.metaphone(b) and (
                jellyfish.damerau_levenshtein_distance(a, b) > 1
            ):
                return True
    return False


def email_shared_flags(df: pl.DataFrame) -> pl.Series:
    """An address used under two different given names is shared (family, team inbox).

    A misspelt given name (`Jesica`, `Jessica`) or a nickname (both fold to one canonical
    name) does not make an address shared.
    """
    given = (
        df.filter((pl.col("name_quality") == "ok") & pl.col("email_key").is_not_null())
        .group_by("email_key")
        .agg(pl.col("first_c").drop_nulls().unique().sort())
        .filter(pl.col("first_c").list.len() > 1)
    )
    shared = [key for key, names in given.iter_rows() if _different_people(names)]
    return df.select(
        pl.col("email_key").is_in(shared).fill_null(False).alias("email_shared")
    ).to_series()


def related_events(
    features: pl.DataFrame, min_shared: int = 2, hops: int = 2, min_share: float = 0.05
) -> pl.DataFrame:
    """Event pairs that share at least `min_shared` attendees and `min_share` of the
    smaller list, or are linked through `hops` - 1 such events in between: one community.

    Attendees are recognised by address, else phone, else a full name only one person
    carries, so guest lists without addresses (Partiful) still relate to the others. The
    share keeps a handful of travellers (or namesakes) from joining every event of a
    city into one community. Two events of one series need not share guests directly; a
    third event that shares guests with both still puts them in one community.
    """
    cols = set(features.columns)
    keys = [pl.col("email_key")]
    if "phone" in cols:
        keys.append(pl.col("phone"))
    if "name_key" in cols and "name_quality" in cols:
        rare = pl.col("name_quality") == "ok"
        if "name_freq" in cols:
            rare = rare & (pl.col("name_freq") <= 1)
        keys.append(pl.when(rare).then(pl.col("name_key")))
    att = (
        pl.concat([features.select(k.alias("who"), "event_id") for k in keys])
        .filter(pl.col("who").is_not_null() & pl.col("event_id").is_not_null())
        .unique()
    )
    size = features.group_by("event_id").len().rename({"len": "size"})
    pairs = (
        att.join(att, on="who", suffix="_b")
        .filter(pl.col("event_id") < pl.col("event_id_b"))
        .group_by("event_id", "event_id_b")
        .len()
        .join(size, on="event_id")
        .join(size.rename({"event_id": "event_id_b", "size": "size_b"}), on="event_id_b")
        .filter(
            (pl.col("len") >= min_shared)
            & (pl.col("len") >= min_share * pl.min_horizontal("size", "size_b"))
        )
        .select(pl.col("event_id").alias("event_a"), pl.col("event_id_b").alias("event_b"))
    )
    if hops < 2 or pairs.height == 0:
        return pairs
    both = pl.concat(
        [
            pairs,
            pairs.select(pl.col("event_b").alias("event_a"), pl.col("event_a").alias("event_b")),
        ]
    )
    reach = both
    for _ in range(hops - 1):
        step = reach.join(both.rename({"event_a": "event_b", "event_b": "event_c"}), on="event_b")
        reach = pl.concat(
            [both, step.select("event_a", pl.col("event_c").alias("event_b"))]
        ).unique()
    return reach.filter(pl.col("event_a") < pl.col("event_b")).unique().sort("event_a", "event_b")


def event_groups(features: pl.DataFrame, related: pl.DataFrame | None) -> pl.Series:
    """Per record, the smallest event id among its event and the events related to it.

    Records of one community then share a label, so blocking can pair namesakes within a
    community instead of chaining through every holder of a common name.
    """
    ev = features.select("event_id")
    if related is None or related.height == 0:
        return ev["event_id"].alias("event_group")
    both = pl.concat(
        [
            related.select(pl.col("event_a").alias("e"), pl.col("event_b").alias("o")),
            related.select(pl.col("event_b").alias("e"), pl.col("event_a").alias("o")),
        ]
    )
    low = both.group_by("e").agg(pl.col("o").min().alias("low"))
    out = ev.join(low, left_on="event_id", right_on="e", how="left", maintain_order="left")
    return out.select(pl.min_horizontal("event_id", "low").alias("event_group")).to_series()
