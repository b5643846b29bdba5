"""Member ids that survive reruns: a member keeps its id while its records move.

Each new cluster takes the previous id it shares the most records with (greedy, largest
overlap first, ties by id); every other cluster gets a new id derived from its smallest
observation id — unless a retired id held records of it: then that id is revived (the
one sharing the most records, ties by id), so undoing a correction brings back the ids
that existed before it. Previous ids that no cluster takes are retired and redirected to
the member that received most of their records.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl


def new_member_id(seed: str, taken: set[str]) -> str:
    salt = 0
    while True:
        text = seed if salt == 0 else f"{seed}#{salt}"
        candidate = "mbr_" + hashlib.sha1(text.encode()).hexdigest()[:16]
        if candidate not in taken:
            return candidate
        salt += 1


@dataclass
class IdAssignment:
    member_of_cluster: dict[int, str]
    redirects: dict[str, str] = field(default_factory=dict)  # retired id -> surviving id
    redirect_reason: dict[str, str] = field(default_factory=dict)  # "merged" or "split"
    split_from: dict[str, list[str]] = field(default_factory=dict)  # new id -> old ids
    created: list[str] = field(default_factory=list)
    revived: list[str] = field(default_factory=list)  # retired ids that hold records again


def assign_ids(
    clusters: pl.DataFrame,
    previous: pl.DataFrame,
    known_ids: Iterable[str] = (),
    retired: Mapping[str, Sequence[str]] | None = None,
) -> IdAssignment:
    """`clusters`: observation_id, cluster. `previous`: observation_id, member_id.

    `retired`: retired id -> the records it held when it was retired.
    """
    taken = set(known_ids) | set(previous["member_id"].unique().to_list())
    overlap = (
        clusters.join(previous.select("observation_id", "member_id"), on="observation_id")
        .group_by("cluster", "member_id")
        .len()
        .sort(["len", "member_id", "cluster"], descending=[True, False, False])
    )
    out = IdAssignment(member_of_cluster={})
    used: set[str] = set()
    for c, mid in zip(overlap["cluster"].to_list(), overlap["member_id"].to_list(), strict=True):
        if c in out.member_of_cluster or mid in used:
            continue
        out.member_of_cluster[c] = mid
        used.add(mid)
    if retired:
        by_obs: dict[str, list[str]] = {}
        for old, records in retired.items():
            for o in records:
                by_obs.setdefault(o, []).append(old)
        counts: dict[tuple[int, str], int] = {}
        for o, c in zip(
            clusters["observation_id"].to_list(), clusters["cluster"].to_list(), strict=True
        ):
            if c in out.member_of_cluster:
                continue
            for old in by_obs.get(o, ()):
                counts[(c, old)] = counts.get((c, old), 0) + 1
        for (c, old), _n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][1], kv[0][0])):
            if c in out.member_of_cluster or old in used:
                continue
            out.member_of_cluster[c] = old
            used.add(old)
            out.revived.append(old)
    seeds = (
        clusters.group_by("cluster").agg(pl.col("observation_id").min().alias("seed")).sort("seed")
    )
    for c, seed in zip(seeds["cluster"].to_list(), seeds["seed"].to_list(), strict=True):
        if c not in out.member_of_cluster:
            mid = new_member_id(seed, taken)
            taken.add(mid)
            out.member_of_cluster[c] = mid
            out.created.append(mid)
    # Lineage: where each previous id's records went.
    flows: dict[str, list[tuple[int, str]]] = {}
    for mid, c, n in zip(
        overlap["member_id"].to_list(),
        overlap["cluster"].to_list(),
        overlap["len"].to_list(),
        strict=True,
    ):
        flows.setdefault(mid, []).append((n, out.member_of_cluster[c]))
    for old, targets in flows.items():
        dests = sorted(targets, key=lambda t: (-t[0], t[1]))
        if old not in used:
            out.redirects[old] = dests[0][1]
            out.redirect_reason[old] = "merged" if len(dests) == 1 else "split"
        for _, dest in dests:
            if dest != old:
                out.split_from.setdefault(dest, [])
                if len(dests) > 1 and old not in out.split_from[dest]:
                    out.split_from[dest].append(old)
    out.split_from = {k: v for k, v in out.split_from.items() if v}
    return out
