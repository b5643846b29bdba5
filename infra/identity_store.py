"""Neo4j reads and writes of identity resolution: members, decisions, explanations.

Used by the pipeline (full runs) and by the API (an organizer's action recomputes only
the affected members). Every write is a batched `UNWIND … MERGE` from graph_schema.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import polars as pl

from domain.identity.features import IDENTIFYING_PLATFORMS, related_events
from domain.identity.golden import GOLDEN_FIELDS
from domain.identity.pipeline import (
    ASSIGNMENT_SCHEMA,
    DECISIONS_SCHEMA,
    Clusters,
    Members,
    Scored,
    Thresholds,
    build_members,
    cluster_scored,
    score_candidates,
)
from domain.identity.scoring import COMPARISONS, LEVELS, MatchModel
from domain.model import ATTENDANCE_SCHEMA, OBSERVATIONS_SCHEMA, conform
from infra import graph_schema as gs
from infra.neo4j_store import GraphStore, chunks
from infra.settings import Settings

IDENTITY_KEY_COLUMNS: tuple[str, ...] = (
    "observation_id",
    "name_key",
    "name_quality",
    "email_key",
    "name_freq",
    "email_shared",
)
MEMBER_DATETIMES: tuple[str, ...] = ("first_seen", "last_seen")
WRITE_MEMBERS = gs.write_members(
    tuple(f for f in (*GOLDEN_FIELDS, "search_text", "provenance") if f not in MEMBER_DATETIMES),
    MEMBER_DATETIMES,
)
WRITERS = 2  # concurrent write transactions over disjoint batches (the server has 2 cores)


def native(value: Any) -> Any:
    """Neo4j temporal values as Python ones (the driver returns its own types)."""
    if hasattr(value, "to_native"):
        return value.to_native()
    if isinstance(value, list):
        return [native(v) for v in value]
    if isinstance(value, dict):
        return {k: native(v) for k, v in value.items()}
    return value


def thresholds_from(settings: Settings) -> Thresholds:
    return settings.identity.to_config()


def thresholds_for(settings: Settings, model: MatchModel | None) -> Thresholds:
    """The configured thresholds, moved where organizers' answers supported it."""
    base = thresholds_from(settings)
    learned = model.review_thresholds if model is not None else {}
    return replace(
        base,
        merge_at=learned.get("merge_at", base.merge_at),
        suggest_at=learned.get("suggest_at", base.suggest_at),
        merge_without_identifier_at=learned.get(
            "merge_without_identifier_at", base.merge_without_identifier_at
        ),
    )


@dataclass
class WriteReport:
    members_written: int = 0
    identities_linked: int = 0
    retired: int = 0
    deleted: int = 0
    matches_written: int = 0
    matches_deleted: int = 0
    suggestions_written: int = 0
    suggestions_deleted: int = 0
    handles_linked: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # per write step

    def as_dict(self) -> dict[str, int]:
        out = {k: v for k, v in self.__dict__.items() if isinstance(v, int)}
        out.update(self.extra)
        return out

    @property
    def relationships(self) -> int:
        return self.identities_linked + self.matches_written + self.handles_linked

    @property
    def relationship_seconds(self) -> float:
        return sum(self.seconds.get(k, 0.0) for k in ("link_identities", "handles", "matches"))


class IdentityStore:
    """Identity resolution over one GraphStore."""

    def __init__(self, graph: GraphStore) -> None:
        self.graph = graph

    # --- reads for the pipeline -------------------------------------------------

    def load_observations(self, ids: Sequence[str] | None = None) -> pl.DataFrame:
        rows = [native(r["row"]) for r in self.graph.run(gs.IDENTITY_OBSERVATIONS, ids=ids)]
        if not rows:
            return pl.DataFrame(schema=OBSERVATIONS_SCHEMA)
        frame = pl.DataFrame(
            [{c: r.get(c) for c in OBSERVATIONS_SCHEMA} for r in rows], schema=OBSERVATIONS_SCHEMA
        )
        return conform(frame, OBSERVATIONS_SCHEMA).sort("observation_id")

    def load_attendance(self, ids: Sequence[str] | None = None) -> pl.DataFrame:
        rows = [native(r) for r in self.graph.run(gs.IDENTITY_ATTENDANCE, ids=ids)]
        if not rows:
            return pl.DataFrame(schema=ATTENDANCE_SCHEMA)
        return conform(pl.DataFrame(rows, infer_schema_length=None), ATTENDANCE_SCHEMA)

    def load_assignment(self, member_ids: Sequence[str] | None = None) -> pl.DataFrame:
        rows = self.graph.run(gs.MEMBER_ASSIGNMENT, ids=member_ids)
        return pl.DataFrame(rows, schema=ASSIGNMENT_SCHEMA)

    def known_member_ids(self) -> set[str]:
        return set(self.graph.run(gs.KNOWN_MEMBER_IDS)[0]["ids"])

    def load_retired(self, observation_ids: Sequence[str] | None = None) -> dict[str, list[str]]:
        """Retired ids (with records) that held any of these records; None: all of them."""
        rows = self.graph.run(gs.RETIRED_RECORDS, ids=observation_ids)
        return {r["member_id"]: list(r["records"]) for r in rows}

    def aliases_of(self, observation_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        rows = self.graph.run(gs.ALIASES_OF_RECORDS, ids=list(observation_ids))
        return {
            r["member_id"]: {"redirect_to": r["redirect_to"], "reason": r["reason"]} for r in rows
        }

    def load_decisions(self, observation_ids: Sequence[str] | None = None) -> pl.DataFrame:
        rows = [native(r) for r in self.graph.run(gs.LOAD_DECISIONS, ids=observation_ids)]
        return pl.DataFrame(rows, schema=DECISIONS_SCHEMA)

    def load_model(self) -> MatchModel | None:
        rows = self.graph.run(gs.LOAD_MODEL)
        return MatchModel.from_json(rows[0]["params"]) if rows and rows[0]["params"] else None

    def load_stats(self, observation_ids: Sequence[str]) -> pl.DataFrame:
        rows = self.graph.run(
            "MATCH (i:Identity) WHERE i.observation_id IN $ids "
            "RETURN i.observation_id AS observation_id, i.name_freq AS name_freq, "
            "i.email_shared AS email_shared",
            ids=list(observation_ids),
        )
        return pl.DataFrame(
            rows,
            schema={"observation_id": pl.String, "name_freq": pl.Int64, "email_shared": pl.Boolean},
        )

    def related_context(self, events: Sequence[str]) -> pl.DataFrame:
        rows = self.graph.run(gs.RELATED_EVENT_CONTEXT, events=list(events))
        ctx = pl.DataFrame(
            rows,
            schema=dict.fromkeys(
                ("observation_id", "event_id", "email_key", "phone", "name_key", "name_quality"),
                pl.String,
            ),
        )
        return related_events(ctx)

    # --- decisions --------------------------------------------------------------

    def add_decisions(self, rows: Sequence[dict[str, Any]]) -> None:
        self.graph.write_batches(gs.UPSERT_DECISIONS, list(rows))

    def action_decisions(self, decision_id: str) -> list[dict[str, Any]]:
        rows = self.graph.run(gs.ACTION_DECISIONS, id=decision_id)
        return [native(r["decision"]) for r in rows]

    def superseded_pairs(self, decision_ids: Sequence[str]) -> list[tuple[str, str]]:
        rows = self.graph.run(gs.SUPERSEDED_BY, ids=list(decision_ids))
        return [(r["a"], r["b"]) for r in rows]

    def undo_decisions(self, decision_ids: Sequence[str], user: str, at: datetime) -> None:
        self.graph.run(gs.UNDO_DECISIONS, ids=list(decision_ids), user=user, at=at.isoformat())

    def labelled_pairs(self) -> pl.DataFrame:
        """Organizers' answers as labelled record pairs (a, b, same), latest answer per pair."""
        rows = [native(r) for r in self.graph.run(gs.LABELLED_PAIRS)]
        frame = pl.DataFrame(
            rows,
            schema={
                "a": pl.String,
                "b": pl.String,
                "same": pl.Boolean,
                "action": pl.String,
                "created_at": pl.Datetime("us", "UTC"),
            },
        )
        return frame.unique(["a", "b"], keep="last", maintain_order=True).select("a", "b", "same")

    def mark_metrics_stale(self, member_ids: Sequence[str], always: bool = True) -> None:
        if member_ids:
            self.graph.run(gs.MARK_METRICS_STALE, ids=sorted(member_ids), always=always)

    def stale_metrics(self) -> tuple[int, str | None]:
        """How many members wait for fresh figures, and when the latest was flagged."""
        row = self.graph.run(gs.STALE_METRICS)[0]
        return int(row["n"]), row["since"]

    def stale_members(self, member_ids: Sequence[str]) -> list[str]:
        rows = self.graph.run(gs.STALE_AMONG, ids=list(member_ids))
        return [r["member_id"] for r in rows]

    def record_run(self, run: dict[str, Any]) -> None:
        self.graph.run(gs.RECORD_RUN, run=run)

    def member_history(self, member_id: str) -> dict[str, Any] | None:
        rows = self.graph.run(gs.MEMBER_HISTORY, id=member_id)
        return native(rows[0]) if rows else None

    def supersede_must_links(
        self, decision_id: str, left: Iterable[str], right: Iterable[str]
    ) -> None:
        self.graph.write_batches(
            gs.SUPERSEDE_MUST_LINKS,
            [{"decision_id": decision_id, "left": list(left), "right": list(right)}],
        )

    # --- writes -----------------------------------------------------------------

    def write(
        self,
        scored: Scored,
        clusters: Clusters,
        members: Members,
        scope_member_ids: Sequence[str] | None = None,
        run: dict[str, Any] | None = None,
    ) -> WriteReport:
        """Writes the result; `scope_member_ids` None means the whole graph was resolved.

        With a scope, only those (previous) members and the records they held are touched.
        Members whose records changed get `metrics_stale` until the next analytics run;
        `run` (run_id, kind, …) is recorded with the members it touched, for their history.
        """
        g = self.graph
        report = WriteReport()
        full = scope_member_ids is None
        obs_ids = members.assignment["observation_id"].to_list()
        new_ids = set(members.members["member_id"].to_list())

        clock = time.perf_counter()

        def lap(step: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            report.seconds[step] = report.seconds.get(step, 0.0) + now - clock
            clock = now

        if members.revived:
            g.run(gs.REVIVE_ALIASES, ids=sorted(members.revived))
        hashes = member_content_hashes(members)
        stored = dict(g.run(gs.MEMBER_HASHES, ids=hashes["member_id"].to_list())[0]["pairs"])
        stored_frame = pl.DataFrame(
            {"member_id": list(stored), "stored": list(stored.values())},
            schema={"member_id": pl.String, "stored": pl.String},
        )
        changed = member_write_rows(
            members,
            hashes.join(stored_frame, on="member_id", how="left").filter(
                pl.col("content_hash").ne_missing(pl.col("stored"))
            ),
        )
        write_parallel(g, WRITE_MEMBERS, changed)
        report.members_written = hashes.height
        report.extra["members_unchanged"] = hashes.height - len(changed)
        lap("members")
        current = g.run(gs.MEMBER_ASSIGNMENT, ids=None if full else list(scope_member_ids or ()))
        held: dict[str, set[str]] = {}
        for r in current:
            held.setdefault(r["observation_id"], set()).add(r["member_id"])
        target = dict(members.assignment.iter_rows())
        stale = [
            {"observation_id": o, "member_id": m}
            for o, ms in held.items()
            for m in ms
            if o in target and m != target[o]
        ]
        new_links = sorted(
            (
                {"observation_id": o, "member_id": m}
                for o, m in target.items()
                if m not in held.get(o, ())
            ),
            key=lambda r: (r["member_id"], r["observation_id"]),
        )
        lap("read_links")
        g.write_batches(gs.UNLINK_MEMBER_IDENTITIES, stale)
        # Sorted by member: batches share at most one member node and lock in one order.
        report.identities_linked = write_parallel(g, gs.LINK_MEMBER_IDENTITIES, new_links)
        report.extra["identity_links_removed"] = len(stale)
        lap("link_identities")
        splits = [{"member_id": k, "split_from": v} for k, v in members.split_from.items()]
        g.write_batches(gs.RECORD_SPLITS, splits)

        existing = set(g.run(gs.MEMBER_ID_LIST)[0]["ids"])
        scope = existing if full else set(scope_member_ids or ()) & existing
        gone = scope - new_ids
        records_of: dict[str, list[str]] = {}
        for o, ms in held.items():
            for m in ms:
                records_of.setdefault(m, []).append(o)
        retire = [
            {
                "member_id": old,
                "redirect_to": members.redirects[old],
                "reason": members.redirect_reason.get(old, "merged"),
                "records": sorted(records_of.get(old, [])),
            }
            for old in sorted(gone)
            if old in members.redirects and members.redirects[old] in new_ids
        ]
        report.retired = g.write_batches(gs.RETIRE_MEMBERS, retire)
        g.write_batches(gs.REPOINT_ALIASES, retire)
        orphans = sorted(gone - {r["member_id"] for r in retire})
        if orphans:
            g.run(gs.DELETE_MEMBERS, ids=orphans)
        report.deleted = len(orphans)
        g.run(gs.REDIRECT_BY_RECORDS, ids=None if full else obs_ids)
        g.run(gs.DANGLING_ALIASES)
        touched = (
            {r["member_id"] for r in stale}
            | {r["member_id"] for r in new_links}
            | set(members.created)
            | set(members.revived)
        ) & new_ids
        # A pipeline run marks only members that had figures; a correction marks all it made.
        self.mark_metrics_stale(sorted(touched), always=not full)
        report.extra["members_touched"] = len(touched)
        report.extra["revived"] = len(members.revived)
        shaped = touched | {r["member_id"] for r in retire}
        if run is not None and (shaped or run.get("decision_ids")):  # a no-op run shapes nothing
            self.record_run(
                {
                    **run,
                    "member_ids": sorted(shaped),
                    "members_written": len(changed),
                    "created": len(members.created),
                    "retired": len(retire),
                    "revived": len(members.revived),
                }
            )

        lap("retire")
        keys = scored.features.select(*IDENTITY_KEY_COLUMNS)
        stored_keys = pl.DataFrame(
            g.run(gs.IDENTITY_KEYS, ids=keys["observation_id"].to_list())[0]["keys"],
            schema=keys.schema,
            orient="row",
        )
        changed_keys = keys.join(
            stored_keys, on=list(IDENTITY_KEY_COLUMNS), how="anti", nulls_equal=True
        ).to_dicts()
        write_parallel(g, gs.SET_IDENTITY_KEYS, changed_keys)
        lap("identity_keys")
        handles = handle_rows(scored)
        # Every resolved record's links: a handle cleared at the source loses its link.
        resolved_ids = scored.features["observation_id"].to_list()
        have = {tuple(x) for x in g.run(gs.EXISTING_HANDLE_LINKS, ids=resolved_ids)[0]["links"]}
        carried = {(r["observation_id"], r["platform"], r["handle"]) for r in handles}
        stale_handles = [
            {"observation_id": o, "platform": p, "handle": h} for o, p, h in sorted(have - carried)
        ]
        g.write_batches(gs.UNLINK_HANDLES, stale_handles)
        report.extra["handle_links_removed"] = len(stale_handles)
        new_handles = sorted(
            (r for r in handles if (r["observation_id"], r["platform"], r["handle"]) not in have),
            key=lambda r: (r["observation_id"], r["platform"], r["handle"]),
        )
        distinct = sorted({(r["platform"], r["handle"]) for r in new_handles})
        g.write_batches(gs.MERGE_HANDLES, [{"platform": p, "handle": h} for p, h in distinct])
        write_parallel(g, gs.LINK_EXISTING_HANDLES, new_handles)
        report.handles_linked = len(handles)
        report.extra["handle_links_new"] = len(new_handles)
        lap("handles")

        scope_obs = None if full else obs_ids
        match_hashes = explanation_hashes(members.explanations)
        stored_m = pl.DataFrame(
            g.run(gs.EXISTING_MATCHES, ids=scope_obs)[0]["matches"],
            schema={"a": pl.String, "b": pl.String, "stored": pl.String},
            orient="row",
        )
        stale_matches = stored_m.join(match_hashes, on=["a", "b"], how="anti").select("a", "b")
        report.matches_deleted = g.write_batches(gs.DELETE_MATCHES, stale_matches.to_dicts())
        changed_pairs = match_hashes.join(stored_m, on=["a", "b"], how="left").filter(
            pl.col("content_hash").ne_missing(pl.col("stored"))
        )
        changed_m = sorted(
            match_rows(members, changed_pairs.select("a", "b", "content_hash")),
            key=lambda r: (r["a"], r["b"]),
        )
        write_parallel(g, gs.WRITE_MATCHES, changed_m)
        report.matches_written = match_hashes.height
        report.extra["matches_unchanged"] = match_hashes.height - len(changed_m)
        lap("matches")

        sugg = suggestion_rows(members)
        keep_s = {r["suggestion_id"] for r in sugg}
        old_s = [
            r["suggestion_id"]
            for r in g.run(gs.EXISTING_SUGGESTIONS, ids=scope_obs)
            if r["suggestion_id"] not in keep_s
        ]
        if old_s:
            g.run(gs.DELETE_SUGGESTIONS, ids=old_s)
        report.suggestions_deleted = len(old_s)
        report.suggestions_written = g.write_batches(gs.UPSERT_SUGGESTIONS, sugg)
        if not full:
            g.run(gs.REFRESH_SUGGESTION_MEMBERS, ids=obs_ids)
        else:
            g.run(gs.SAVE_MODEL, params=scored.model.to_json())
        lap("suggestions")
        return report

    # --- partial recompute (organizer actions) ---------------------------------

    def recompute(
        self, member_ids: Sequence[str], settings: Settings, run: dict[str, Any] | None = None
    ) -> tuple[Members, WriteReport]:
        """Re-resolves the records of these members with the stored model and statistics."""
        assignment = self.load_assignment(list(member_ids))
        obs_ids = assignment["observation_id"].to_list()
        observations = self.load_observations(obs_ids)
        events = observations["event_id"].drop_nulls().unique().to_list()
        model = self.load_model() or MatchModel()
        thresholds = thresholds_for(settings, model)
        scored = score_candidates(
            observations,
            thresholds,
            model=model,
            stats=self.load_stats(obs_ids),
            related=self.related_context(events),
        )
        clusters = cluster_scored(scored, self.load_decisions(obs_ids))
        members = build_members(
            observations,
            scored,
            clusters,
            previous=assignment,
            known_ids=self.known_member_ids(),
            trust_order=tuple(settings.identity_source_trust),
            retired=self.load_retired(obs_ids),
        )
        report = self.write(scored, clusters, members, scope_member_ids=list(member_ids), run=run)
        return members, report

    # --- reads for the API ------------------------------------------------------

    def list_members(
        self, q: str | None, skip: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        term = q.strip().lower() if q and q.strip() else None
        rows = self.graph.run(gs.LIST_MEMBERS, q=term, skip=skip, limit=limit)
        total = self.graph.run(gs.COUNT_MEMBERS, q=term)[0]["n"]
        return [native(r["member"]) for r in rows], total

    def resolve_member_id(self, member_id: str) -> tuple[str | None, str | None]:
        """(live id, reason) — the id itself, the id it now redirects to, or (None, None)."""
        if self.graph.run(gs.GET_MEMBER, id=member_id):
            return member_id, None
        alias = self.graph.run(gs.GET_ALIAS, id=member_id)
        if alias:
            return alias[0]["redirect_to"], alias[0]["reason"]
        return None, None

    def get_member(self, member_id: str) -> dict[str, Any] | None:
        rows = self.graph.run(gs.GET_MEMBER, id=member_id)
        if not rows:
            return None
        member = native(rows[0]["member"])
        provenance = provenance_entries(member.pop("provenance", None))
        member.pop("search_text", None)
        member.pop("content_hash", None)
        identities = []
        for r in self.graph.run(gs.MEMBER_IDENTITIES, id=member_id):
            ident = native(r["identity"])
            for k in ("name_key", "name_quality", "email_key", "name_freq", "email_shared"):
                ident.pop(k, None)
            identities.append({"identity": ident, "attendance": native(r["attendance"])})
        explanations = [
            {"a": r["a"], "b": r["b"], **explanation_from_props(native(r["props"]))}
            for r in self.graph.run(gs.MEMBER_EXPLANATIONS, id=member_id)
        ]
        return {
            "member": member,
            "provenance": provenance,
            "identities": identities,
            "explanations": explanations,
        }

    def list_suggestions(
        self, member_id: str | None, skip: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        rows = self.graph.run(gs.LIST_SUGGESTIONS, member=member_id, skip=skip, limit=limit)
        total = self.graph.run(gs.COUNT_SUGGESTIONS, member=member_id)[0]["n"]
        items = []
        for r in rows:
            item = suggestion_from_props(native(r["suggestion"]))
            item["records_a"], item["records_b"] = r["records_a"], r["records_b"]
            item["records_joined"] = r["records_a"] + r["records_b"]
            item["expected_gain"] = round(float(r["gain"]), 6)
            items.append(item)
        return items, total

    def get_suggestion(self, suggestion_id: str) -> dict[str, Any] | None:
        rows = self.graph.run(gs.GET_SUGGESTION, id=suggestion_id)
        return suggestion_from_props(native(rows[0]["suggestion"])) if rows else None

    def members_of(self, observation_ids: Sequence[str]) -> dict[str, str]:
        rows = self.graph.run(gs.MEMBERS_OF_OBSERVATIONS, ids=list(observation_ids))
        return {r["observation_id"]: r["member_id"] for r in rows}

    def membership_issues(self) -> list[dict[str, Any]]:
        return self.graph.run(gs.IDENTITY_MEMBERSHIP_ISSUES)


# --- row builders ------------------------------------------------------------------


def _member_dicts(members: Members, frame: pl.DataFrame) -> list[dict[str, Any]]:
    prov = members.provenance.join(
        frame.select("member_id"), on="member_id", how="semi", maintain_order="left"
    ).with_columns(pl.col("last_observed_at").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"))
    parts: dict[str, list[dict[str, Any]]] = {}
    for entry in prov.to_dicts():  # one pass; keeps each member's row order
        parts.setdefault(str(entry.pop("member_id")), []).append(entry)
    prov_packed = {mid: pack_provenance(part) for mid, part in parts.items()}
    out = []
    for row in frame.to_dicts():
        names = [row.get("display_name"), *(row.get("emails") or [])]
        row["search_text"] = " ".join(str(n).lower() for n in names if n)
        row["provenance"] = prov_packed.get(row["member_id"]) or pack_provenance([])
        out.append(
            {k: row.get(k) for k in ("member_id", *GOLDEN_FIELDS, "search_text", "provenance")}
        )
    return out


def pack_provenance(entries: list[dict[str, Any]]) -> bytes:
    """Provenance as zlib-compressed JSON bytes: a quarter of the text's size, and the
    Member write is dominated by the bytes it stores."""
    return zlib.compress(json.dumps(entries, sort_keys=True).encode(), 6)


def provenance_entries(value: Any) -> list[dict[str, Any]]:
    """A stored provenance (compressed bytes, or JSON text written by older versions)."""
    if value is None:
        return []
    if isinstance(value, bytes | bytearray):
        value = zlib.decompress(bytes(value)).decode()
    entries = json.loads(value)
    return entries if isinstance(entries, list) else []


def zoned_iso(value: Any) -> Any:
    """A zoned datetime as `…+00:00[UTC]` text (Cypher `datetime()` restores the same value).

    Other values pass unchanged (the write query converts only strings).
    """
    key = getattr(getattr(value, "tzinfo", None), "key", None)
    if isinstance(value, datetime) and key:
        return f"{value.isoformat()}[{key}]"
    return value


def member_content_hashes(members: Members) -> pl.DataFrame:
    """member_id, content_hash: a digest of each member's golden record and provenance,
    computed in polars so that an unchanged member costs no Python row at all."""
    record = members.members.select(
        "member_id", pl.struct(pl.all()).hash(seed=CONTENT_SEED).alias("_record")
    )
    prov = (
        members.provenance.select(
            "member_id", pl.struct(pl.all()).hash(seed=CONTENT_SEED).alias("_entry")
        )
        .group_by("member_id")
        .agg(pl.col("_entry").sort())
        .select("member_id", pl.col("_entry").hash(seed=CONTENT_SEED).alias("_prov"))
    )
    return record.join(prov, on="member_id", how="left").select(
        "member_id",
        pl.format("v2:{}:{}", "_record", pl.col("_prov").fill_null(0)).alias("content_hash"),
    )


CONTENT_SEED = 20_261_203


def member_write_rows(members: Members, hashes: pl.DataFrame) -> list[dict[str, Any]]:
    """member_rows as sent to WRITE_MEMBERS for the members in `hashes` (member_id,
    content_hash): datetimes as zoned text, plus their content hash."""
    frame = members.members.join(hashes.select("member_id"), on="member_id", how="semi")
    digest = dict(hashes.select("member_id", "content_hash").iter_rows())
    zoned = []  # formatted by polars: far cheaper than Python datetimes with a ZoneInfo
    for f in MEMBER_DATETIMES:
        dtype = frame.schema.get(f)
        if isinstance(dtype, pl.Datetime) and dtype.time_zone:
            text = pl.col(f).dt.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z") + f"[{dtype.time_zone}]"
            zoned.append(text.alias(f))
    rows = _member_dicts(members, frame.with_columns(zoned) if zoned else frame)
    for row in rows:
        for f in MEMBER_DATETIMES:
            row[f] = zoned_iso(row.get(f))
        row["content_hash"] = digest[row["member_id"]]
    return rows


def write_parallel(
    graph: GraphStore, query: str, rows: Sequence[dict[str, Any]], writers: int = WRITERS
) -> int:
    """Batches in `writers` concurrent transactions; callers order rows so batches are
    (nearly) disjoint. A deadlock is transient: the driver retries that batch."""
    batches = [list(b) for b in chunks(rows, graph.batch_size)]
    if len(batches) <= 1 or writers <= 1:
        return graph.write_batches(query, rows)

    def write_one(batch: list[dict[str, Any]]) -> None:
        with graph.driver.session(database=graph.database) as session:
            session.execute_write(lambda tx: tx.run(query, rows=batch).consume())

    with ThreadPoolExecutor(max_workers=writers) as pool:
        list(pool.map(write_one, batches))
    return len(rows)


def handle_rows(scored: Scored) -> list[dict[str, Any]]:
    f = scored.features
    rows: list[dict[str, Any]] = []
    for p in IDENTIFYING_PLATFORMS:
        part = f.select("observation_id", pl.col(f"h_{p}").alias("handle")).filter(
            pl.col("handle").is_not_null()
        )
        rows.extend({**r, "platform": p} for r in part.to_dicts())
    return rows


def _features(row: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for c in COMPARISONS:
        lv = row.get(f"l_{c}")
        if lv is None or lv < 0:
            continue
        out.append({"feature": c, "level": LEVELS[c][lv], "weight": round(float(row[f"w_{c}"]), 4)})
    return out


def explanation_hashes(explanations: pl.DataFrame) -> pl.DataFrame:
    """a, b, content_hash of each merge explanation, computed in polars (a rerun builds
    no Python row for an explanation that did not change)."""
    written = [
        c
        for c in (
            "reason",
            "match_probability",
            "match_weight",
            "evidence",
            "guard",
            *(f"l_{c}" for c in COMPARISONS),
            *(f"w_{c}" for c in COMPARISONS),
        )
        if c in explanations.columns
    ]
    digest = pl.struct(written).hash(seed=CONTENT_SEED)
    return explanations.select(
        "a",
        "b",
        pl.format("v2:{}", digest).alias("content_hash"),
    ).unique(["a", "b"], keep="last", maintain_order=True)


def match_rows(members: Members, hashes: pl.DataFrame) -> list[dict[str, Any]]:
    """WRITE_MATCHES rows for the explanations in `hashes` (a, b, content_hash)."""
    digest = {(a, b): h for a, b, h in hashes.iter_rows()}
    rows = []
    for r in members.explanations.join(hashes.select("a", "b"), on=["a", "b"]).to_dicts():
        rows.append(
            {
                "a": r["a"],
                "b": r["b"],
                "content_hash": digest[(r["a"], r["b"])],
                "props": {
                    "reason": r["reason"],
                    "probability": float(r["match_probability"]),
                    "match_weight": float(r["match_weight"]),
                    "evidence": r["evidence"],
                    "features": json.dumps(_features(r)),
                    "guard": r.get("guard"),
                },
            }
        )
    return rows


def suggestion_rows(members: Members) -> list[dict[str, Any]]:
    return [
        {
            "suggestion_id": r["suggestion_id"],
            "a": r["a"],
            "b": r["b"],
            "member_a": r["member_a"],
            "member_b": r["member_b"],
            "probability": float(r["match_probability"]),
            "match_weight": float(r["match_weight"]),
            "evidence": r["evidence"],
            "features": json.dumps(_features(r)),
        }
        for r in members.suggestions.to_dicts()
    ]


def explanation_from_props(props: dict[str, Any]) -> dict[str, Any]:
    return {
        "reason": props.get("reason"),
        "probability": props.get("probability"),
        "match_weight": props.get("match_weight"),
        "features": json.loads(props.get("features") or "[]"),
        "evidence": props.get("evidence"),
        "guard": props.get("guard"),
    }


def suggestion_from_props(props: dict[str, Any]) -> dict[str, Any]:
    out = dict(props)
    out["features"] = json.loads(props.get("features") or "[]")
    return out


def decision_id(kind: str, a: str, b: str, at: datetime) -> str:
    text = f"{kind}|{min(a, b)}|{max(a, b)}|{at.isoformat()}"
    return "dec_" + hashlib.sha1(text.encode()).hexdigest()[:16]


def decision_row(
    kind: str, a: str, b: str, action: str, user: str, at: datetime | None = None, **extra: Any
) -> dict[str, Any]:
    at = at or datetime.now(UTC)
    lo, hi = sorted((a, b))
    return {
        "decision_id": decision_id(kind, lo, hi, at),
        "kind": kind,
        "a": lo,
        "b": hi,
        "action": action,
        "created_by": user,
        "created_at": at,
        **{k: v for k, v in extra.items() if v is not None},
    }
