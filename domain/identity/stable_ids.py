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
    overlap = _overlap_with_previous(clusters, previous)
    assignment = IdAssignment(member_of_cluster={})
    used: set[str] = set()
    _keep_largest_overlaps(overlap, assignment, used)
    if retired:
        _revive_retired_ids(clusters, retired, assignment, used)
    _create_new_ids(clusters, assignment, taken)
    _record_lineage(overlap, assignment, used)
    return assignment


def _overlap_with_previous(clusters: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """Records each (cluster, previous id) pair shares, largest first, ties by id."""
    return (
        clusters.join(previous.select("observation_id", "member_id"), on="observation_id")
        .group_by("cluster", "member_id")
        .len()
        .sort(["len", "member_id", "cluster"], descending=[True, False, False])
    )


def _keep_largest_overlaps(overlap: pl.DataFrame, assignment: IdAssignment, used: set[str]) -> None:
    """Greedy: a cluster keeps the previous id it shares most records with, each id once."""
    for cluster_label, member_id in zip(
        overlap["cluster"].to_list(), overlap["member_id"].to_list(), strict=True
    ):
        if cluster_label in assignment.member_of_cluster or member_id in used:
            continue
        assignment.member_of_cluster[cluster_label] = member_id
        used.add(member_id)


def _revive_retired_ids(
    clusters: pl.DataFrame,
    retired: Mapping[str, Sequence[str]],
    assignment: IdAssignment,
    used: set[str],
) -> None:
    """An unassigned cluster takes back a retired id that held its records, so undoing a
    correction restores the ids from before it."""
    retired_ids_of_record: dict[str, list[str]] = {}
    for retired_id, records in retired.items():
        for observation_id in records:
            retired_ids_of_record.setdefault(observation_id, []).append(retired_id)
    shared: dict[tuple[int, str], int] = {}
    for observation_id, cluster_label in zip(
        clusters["observation_id"].to_list(), clusters["cluster"].to_list(), strict=True
    ):
        if cluster_label in assignment.member_of_cluster:
            continue
        for retired_id in retired_ids_of_record.get(observation_id, ()):
            shared[(cluster_label, retired_id)] = shared.get((cluster_label, retired_id), 0) + 1
    by_most_shared = sorted(shared.items(), key=lambda kv: (-kv[1], kv[0][1], kv[0][0]))
    for (cluster_label, retired_id), _count in by_most_shared:
        if cluster_label in assignment.member_of_cluster or retired_id in used:
            continue
        assignment.member_of_cluster[cluster_label] = retired_id
        used.add(retired_id)
        assignment.revived.append(retired_id)


def _create_new_ids(clusters: pl.DataFrame, assignment: IdAssignment, taken: set[str]) -> None:
    """Fresh ids for the remaining clusters, derived from their smallest observation id so a
    rerun from scratch gives the same ids."""
    seeds = (
        clusters.group_by("cluster").agg(pl.col("observation_id").min().alias("seed")).sort("seed")
    )
    for cluster_label, seed in zip(
        seeds["cluster"].to_list(), seeds["seed"].to_list(), strict=True
    ):
        if cluster_label not in assignment.member_of_cluster:
            member_id = new_member_id(seed, taken)
            taken.add(member_id)
            assignment.member_of_cluster[cluster_label] = member_id
            assignment.created.append(member_id)


def _record_lineage(overlap: pl.DataFrame, assignment: IdAssignment, used: set[str]) -> None:
    """Where each previous id's records went: redirects for retired ids, split origins for
    the ids that received them."""
    flows: dict[str, list[tuple[int, str]]] = {}
    for member_id, cluster_label, count in zip(
        overlap["member_id"].to_list(),
        overlap["cluster"].to_list(),
        overlap["len"].to_list(),
        strict=True,
    ):
        flows.setdefault(member_id, []).append((count, assignment.member_of_cluster[cluster_label]))
    for old_id, targets in flows.items():
        destinations = sorted(targets, key=lambda target: (-target[0], target[1]))
        if old_id not in used:
            assignment.redirects[old_id] = destinations[0][1]
            assignment.redirect_reason[old_id] = "merged" if len(destinations) == 1 else "split"
        for _, destination in destinations:
            if destination != old_id:
                assignment.split_from.setdefault(destination, [])
                if len(destinations) > 1 and old_id not in assignment.split_from[destination]:
                    assignment.split_from[destination].append(old_id)
    assignment.split_from = {
        new_id: old_ids for new_id, old_ids in assignment.split_from.items() if old_ids
    }
