"""Clustering scored pairs into people while respecting cannot-link constraints.

Constraints are checked between whole clusters, not between the two records of an edge,
so no chain of merges can bring together two records that must stay apart:
- explicit cannot-link decisions of organizers (always win, even over must-link);
- one account per platform: a cluster never holds two different handles on a platform,
  or two different platform user ids of one source;
- one entry per guest list: a cluster holds two records of the same event only when
  they give the same email address (a double registration); two entries of one list
  without a shared address are two people, however alike their names.
Must-link decisions are applied first (they override the automatic constraints), then
merge edges in order of decreasing probability. A merge resting on names and
co-attendance alone (no shared address, phone, handle or account on the edge) is also
refused between two clusters that each hold phone numbers and share none: namesakes of
one community are told apart by the numbers they gave.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from domain.identity.features import IDENTIFYING_PLATFORMS

# Marks an event or platform that already holds two values (only a must-link does that).
_MANY = "\x00many"
_NO_ADDRESS = "\x00entry:"


class _State:
    """What a cluster holds per event (its address) and per platform (its account).

    One value per key, not a set: the constraints keep it at one, and a million small
    sets would dominate the memory of a large run.
    """

    __slots__ = ("accounts", "cannot", "events", "forced", "phones", "size")

    def __init__(self) -> None:
        self.events: dict[str, str] = {}
        self.accounts: dict[str, str] = {}
        self.cannot: set[int] | None = None
        self.phones: frozenset[str] = frozenset()
        self.size = 1
        self.forced = False


@dataclass
class ClusterResult:
    labels: list[int]  # cluster label per row (the root row's position)
    merges: list[tuple[int, int, str]] = field(default_factory=list)  # (i, j, reason)
    suggestions: list[tuple[int, int]] = field(default_factory=list)  # best edge per pair
    skipped_must_links: list[tuple[int, int]] = field(default_factory=list)
    blocked_merges: int = 0


class ConstrainedClusters:
    """Union-find whose unions are refused when the two clusters may not be joined."""

    def __init__(self, features: pl.DataFrame) -> None:
        n = features.height
        self.parent = list(range(n))
        self.events = features["event_id"].to_list()
        self.emails = features["email_key"].to_list()
        self.phones = features["phone"].to_list()
        self.accounts: list[list[tuple[str, str]]] = [[] for _ in range(n)]
        for p in IDENTIFYING_PLATFORMS:
            for k, h in enumerate(features[f"h_{p}"].to_list()):
                if h is not None:
                    self.accounts[k].append((p, h))
        sources = features["source"].to_list()
        for k, pk in enumerate(features["person_key"].to_list()):
            if pk is not None:
                self.accounts[k].append((f"account:{sources[k]}", pk))
        self.state: dict[int, _State] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def _get(self, root: int) -> _State:
        st = self.state.get(root)
        if st is None:
            st = _State()
            ev, em = self.events[root], self.emails[root]
            if ev is not None:
                # Without an address the entry stands for itself: no other entry equals it.
                st.events[ev] = em if em is not None else f"{_NO_ADDRESS}{root}"
            for platform, value in self.accounts[root]:
                st.accounts[platform] = value
            if self.phones[root] is not None:
                st.phones = frozenset((self.phones[root],))
            self.state[root] = st
        return st

    def add_cannot_link(self, i: int, j: int) -> None:
        for a, b in ((i, j), (j, i)):
            st = self._get(self.find(a))
            if st.cannot is None:
                st.cannot = set()
            st.cannot.add(b)

    def explicitly_apart(self, ra: int, rb: int) -> bool:
        sa, sb = self._get(ra), self._get(rb)
        return any(self.find(x) == rb for x in sa.cannot or ()) or any(
            self.find(x) == ra for x in sb.cannot or ()
        )

    def automatic_conflict(self, ra: int, rb: int) -> bool:
        sa, sb = self._get(ra), self._get(rb)
        small, large = (sa, sb) if len(sa.events) <= len(sb.events) else (sb, sa)
        for ev, email in small.events.items():
            other = large.events.get(ev)
            if other is not None and (other != email or other == _MANY):
                return True
        for platform, value in sa.accounts.items():
            other = sb.accounts.get(platform)
            if other is not None and (other != value or other == _MANY):
                return True
        return False

    def phones_disagree(self, ra: int, rb: int) -> bool:
        """Both clusters hold phone numbers and none in common."""
        pa, pb = self._get(ra).phones, self._get(rb).phones
        return bool(pa) and bool(pb) and pa.isdisjoint(pb)

    def union(self, i: int, j: int, forced: bool = False) -> bool:
        ra, rb = self.find(i), self.find(j)
        if ra == rb:
            return False
        sa, sb = self._get(ra), self._get(rb)
        if sa.size < sb.size:
            ra, rb, sa, sb = rb, ra, sb, sa
        self.parent[rb] = ra
        for held, incoming in ((sa.events, sb.events), (sa.accounts, sb.accounts)):
            for key, value in incoming.items():
                current = held.get(key)
                if current is None:
                    held[key] = value
                elif current != value:
                    held[key] = _MANY
        if sb.cannot:
            sa.cannot = (sa.cannot or set()) | sb.cannot
        if sb.phones:
            sa.phones = sa.phones | sb.phones
        sa.size += sb.size
        sa.forced = sa.forced or sb.forced or forced
        del self.state[rb]
        return True


def cluster(
    features: pl.DataFrame,
    scored: pl.DataFrame,
    must_links: Sequence[tuple[int, int]] = (),
    cannot_links: Iterable[tuple[int, int]] = (),
) -> ClusterResult:
    """Rows of `features` grouped into people; `scored` holds i, j, match_probability, decision."""
    groups = ConstrainedClusters(features)
    result = ClusterResult(labels=[])
    for left, right in cannot_links:
        groups.add_cannot_link(left, right)
    _apply_must_links(groups, must_links, result)
    _apply_automatic_merges(groups, scored, result)
    # Clusters no longer change: pairs inside one cluster are dropped before the loop.
    roots = np.fromiter(
        (groups.find(row) for row in range(features.height)), np.int64, features.height
    )
    result.suggestions.extend(_suggestions(groups, scored, roots))
    result.labels = roots.tolist()
    return result


def _apply_must_links(
    groups: ConstrainedClusters, must_links: Sequence[tuple[int, int]], result: ClusterResult
) -> None:
    """An organizer's must-link wins over automatic conflicts, but not over a cannot-link."""
    for left, right in must_links:
        root_left, root_right = groups.find(left), groups.find(right)
        if root_left == root_right:
            continue
        if groups.explicitly_apart(root_left, root_right):
            result.skipped_must_links.append((left, right))
            continue
        groups.union(left, right, forced=True)
        result.merges.append((left, right, "must_link"))


def _apply_automatic_merges(
    groups: ConstrainedClusters, scored: pl.DataFrame, result: ClusterResult
) -> None:
    """Merge decisions, most probable first, unless they join records that cannot be one
    person (a phone disagreement only blocks merges no identifier backs)."""
    merge_edges = scored.filter(pl.col("decision") == "merge").sort(
        ["match_probability", "i", "j"], descending=[True, False, False]
    )
    identified = (
        merge_edges["identifier_agrees"].fill_null(False).to_list()
        if "identifier_agrees" in merge_edges.columns
        else [True] * merge_edges.height
    )
    edges = zip(merge_edges["i"].to_list(), merge_edges["j"].to_list(), identified, strict=True)
    for left, right, has_identifier in edges:
        root_left, root_right = groups.find(left), groups.find(right)
        if root_left == root_right:
            continue
        if (
            groups.explicitly_apart(root_left, root_right)
            or groups.automatic_conflict(root_left, root_right)
            or (not has_identifier and groups.phones_disagree(root_left, root_right))
        ):
            result.blocked_merges += 1
            continue
        groups.union(left, right)
        result.merges.append((left, right, "auto"))


def _suggestions(
    groups: ConstrainedClusters, scored: pl.DataFrame, roots: np.ndarray
) -> list[tuple[int, int]]:
    """One pair per two clusters still apart, most probable first, for an organizer to review;
    pairs that could never merge are not suggested."""
    apart = roots[scored["i"].to_numpy()] != roots[scored["j"].to_numpy()]
    candidates = (
        scored.select("i", "j", "match_probability", "decision")
        .filter(pl.Series(apart) & pl.col("decision").is_in(["suggest", "merge"]))
        .sort(["match_probability", "i", "j"], descending=[True, False, False])
    )
    suggestions: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for left, right in zip(candidates["i"].to_list(), candidates["j"].to_list(), strict=True):
        root_left, root_right = groups.find(left), groups.find(right)
        cluster_pair = (min(root_left, root_right), max(root_left, root_right))
        if cluster_pair in seen:
            continue
        seen.add(cluster_pair)
        if groups.explicitly_apart(root_left, root_right) or groups.automatic_conflict(
            root_left, root_right
        ):
            continue
        suggestions.append((left, right))
    return suggestions


def violations(
    features: pl.DataFrame, labels: Sequence[int], cannot_links: Iterable[tuple[int, int]] = ()
) -> list[str]:
    """Every constraint a clustering breaks (for the asset check and the tests)."""
    out: list[str] = []
    for i, j in cannot_links:
        if labels[i] == labels[j]:
            out.append(f"cannot-link {i}-{j} inside one cluster")
    df = features.select(
        "event_id", "email_key", "source", "person_key", *[f"h_{p}" for p in IDENTIFYING_PLATFORMS]
    ).with_columns(pl.Series("label", list(labels)))
    entry = pl.coalesce(
        pl.col("email_key"), pl.lit(_NO_ADDRESS) + pl.int_range(pl.len()).cast(pl.String)
    )
    per_event = (
        df.filter(pl.col("event_id").is_not_null())
        .with_columns(entry.alias("entry"))
        .group_by("label", "event_id")
        .agg(pl.col("entry").n_unique().alias("n"))
        .filter(pl.col("n") > 1)
    )
    out.extend(
        f"cluster {r['label']}: {r['n']} people's entries at {r['event_id']}"
        for r in per_event.to_dicts()
    )
    for col in [*(f"h_{p}" for p in IDENTIFYING_PLATFORMS), "person_key"]:
        bad = (
            df.filter(pl.col(col).is_not_null())
            .group_by("label", "source" if col == "person_key" else pl.lit(col))
            .agg(pl.col(col).n_unique().alias("n"))
            .filter(pl.col("n") > 1)
        )
        out.extend(f"cluster {r['label']}: {r['n']} values of {col}" for r in bad.to_dicts())
    return out
