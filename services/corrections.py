"""Organizer corrections: merge, unmerge, must/cannot-link, suggestions, undo, history.

Every correction is stored as decisions in Neo4j and applied at once by re-resolving
only the records of the members it touches (`services.identity.re_resolve`, the same
domain code as the pipeline); later pipeline runs apply it again.

Corrections run one at a time in this process and under the touched members' locks
(shared with the pipeline's write). With an idempotency key a retry answers as the first
attempt did, and decision ids derive from the key, so a retry after a failure part-way
never stores a decision twice.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from infra.identity_store import IdentityStore, decision_row
from infra.locks import MemberLocks
from infra.neo4j_store import GraphStore
from infra.privacy_store import PrivacyStore
from services.identity import IdentityConfig, re_resolve

# Corrections are applied one at a time in this process, so two organizers acting on the
# same members cannot interleave their recomputations.
ACTION_LOCK = threading.Lock()
ACTION_ATTEMPTS = 5

Refusal = Literal["bad_request", "not_found", "conflict", "unprocessable"]


class CorrectionError(Exception):
    """A correction refused, with a stable error code and a message for the organizer."""

    def __init__(self, refusal: Refusal, error: str, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.error = error
        self.message = message


def _not_found(what: str, ident: str) -> CorrectionError:
    return CorrectionError("not_found", "not_found", f"unknown {what} {ident!r}")


class MembersMovedError(Exception):
    """The members an action was decided on changed before their locks were taken."""


@dataclass
class Outcome:
    """Where the records went after a correction."""

    decision_ids: list[str]
    members: list[str]  # live members holding the records after the action
    # Retired ids that held any of these records -> the member holding most of them now.
    redirects: dict[str, str]
    revived: list[str] = field(default_factory=list)
    metrics_stale: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Actor:
    """Who acts, and the request's idempotency key and fingerprint (what it asked)."""

    user: str
    key: str | None = None  # already scoped to the user
    fingerprint: str = ""
    status: int = 200  # stored with the answer: a replay answers with the same status


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(list(parts), sort_keys=True, default=str).encode()).hexdigest()


def seeded(rows: list[dict[str, Any]], seed: str | None) -> list[dict[str, Any]]:
    """Decision ids from the idempotency key: a retried action writes the same decisions.

    All rows of one correction share an `action_id` (the first decision's id): an undo
    reverses the correction as a whole.
    """
    if seed is not None:
        for row in rows:
            text = f"{seed}|{row['kind']}|{row['a']}|{row['b']}"
            row["decision_id"] = "dec_" + hashlib.sha1(text.encode()).hexdigest()[:16]
    for row in rows:
        row["action_id"] = rows[0]["decision_id"]
    return rows


def with_context(
    rows: list[dict[str, Any]], held: dict[str, str], pair: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The evidence at decision time: the members holding each record, and the score."""
    for row in rows:
        row["member_a"], row["member_b"] = held.get(row["a"]), held.get(row["b"])
        if pair is not None:
            row["probability"] = pair.get("probability")
            row["evidence"] = pair.get("evidence")
    return rows


def split_size_error(split: list[str], rest: list[str], cap: int) -> CorrectionError | None:
    """Why an unmerge of `split` off a member that keeps `rest` is refused (None: it is not)."""
    if not rest:
        return CorrectionError(
            "unprocessable",
            "invalid_decision",
            "splitting off every record of a member changes nothing; leave at least one",
        )
    needed = len(split) * len(rest)
    if needed > cap:
        return CorrectionError(
            "unprocessable",
            "too_many_decisions",
            f"this split needs {needed} decisions (limit {cap}); split the member in smaller steps",
        )
    return None


def undo_refusal(decision_id: str, rows: list[dict[str, Any]]) -> CorrectionError | None:
    """Why the correction holding these decisions cannot be undone (None: it can)."""
    if not rows:
        return _not_found("decision", decision_id)
    if any(row.get("undone_at") is not None for row in rows):
        return CorrectionError("conflict", "already_undone", f"decision {decision_id!r} is undone")
    if all(row.get("superseded") for row in rows):
        return CorrectionError(
            "conflict",
            "superseded",
            f"decision {decision_id!r} was superseded by "
            f"{rows[0].get('superseded_by')!r}; undo that one first",
        )
    return None


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def history_entries(found: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Decisions (with whether each is still in effect) and runs, oldest first."""
    decisions = []
    for stored in found["decisions"]:
        row: dict[str, Any] = {key: _iso(value) for key, value in stored.items()}
        row["superseded"] = bool(stored.get("superseded"))
        row["in_effect"] = not row["superseded"] and stored.get("undone_at") is None
        decisions.append(row)
    decisions.sort(key=lambda d: (d.get("created_at") or "", d["decision_id"]))
    runs = [{key: _iso(value) for key, value in row.items()} for row in found["runs"]]
    runs.sort(key=lambda r: (r.get("at") or "", r["run_id"]))
    return decisions, runs


Attempt = Callable[[str | None], Outcome]


class Corrections:
    """Organizer corrections over one graph; each public action is one correction."""

    def __init__(self, graph: GraphStore, config: IdentityConfig, unmerge_cap: int) -> None:
        self.graph = graph
        self.config = config
        self.unmerge_cap = unmerge_cap

    @property
    def store(self) -> IdentityStore:
        return IdentityStore(self.graph)

    # --- running one correction ----------------------------------------------------

    def run(self, actor: Actor, attempt: Attempt) -> Answer:
        """Runs one correction (serialized, retried while its members move) or replays
        the answer stored under the actor's key."""
        privacy = PrivacyStore(self.graph)
        with ACTION_LOCK:
            if actor.key is not None:
                stored = privacy.stored_answer(actor.key)
                if stored is not None:
                    if stored[0] != actor.fingerprint:
                        raise CorrectionError(
                            "conflict",
                            "idempotency_key_reused",
                            "this Idempotency-Key was used for a different request",
                        )
                    return Answer(stored[1], stored[2], True)
            body = asdict(self._attempts(actor.key, attempt))
            if actor.key is not None:
                privacy.store_answer(actor.key, actor.fingerprint, actor.status, body)
            return Answer(actor.status, body, False)

    @staticmethod
    def _attempts(seed: str | None, attempt: Attempt) -> Outcome:
        for _ in range(ACTION_ATTEMPTS):
            try:
                return attempt(seed)
            except MembersMovedError:
                continue
        raise CorrectionError(
            "conflict",
            "concurrent_change",
            "the members changed while this correction was applied; retry",
        )

    def apply(
        self,
        rows: list[dict[str, Any]],
        affected: set[str],
        observations: list[str],
        before: Callable[[IdentityStore], None] | None = None,
        run: dict[str, Any] | None = None,
    ) -> Outcome:
        """Stores the decisions, re-resolves the affected members, reports where records went.

        Runs under the affected members' locks (shared with the pipeline's member write);
        if the members moved meanwhile, the caller decides again from the new state.
        """
        store = self.store
        with MemberLocks(self.graph).members(sorted(affected)):
            held = store.members_of(observations)
            live = {member for member in affected if store.resolve_member_id(member)[0] == member}
            if live != affected or not set(held.values()) <= affected:
                raise MembersMovedError()
            if before is not None:
                before(store)
            store.add_decisions(rows)
            run = run or _correction_run(rows)
            members, _ = re_resolve(self.graph, sorted(affected), self.config, run=run)
            now = store.members_of(observations)
            aliases = store.aliases_of(observations)
        live_now = sorted(set(now.values()))
        stale = set(store.stale_members(live_now))
        return Outcome(
            decision_ids=run["decision_ids"],
            members=live_now,
            redirects={key: value["redirect_to"] for key, value in aliases.items()},
            revived=sorted(members.revived),
            metrics_stale=[member for member in live_now if member in stale],
        )

    def live_member(self, member_id: str) -> str:
        live, _ = self.store.resolve_member_id(member_id)
        if live is None:
            raise _not_found("member", member_id)
        return live

    # --- the corrections -----------------------------------------------------------

    def answer_suggestion(self, suggestion_id: str, accept: bool, actor: Actor) -> Answer:
        """Accepting is a must-link between the suggested pair, rejecting a cannot-link."""

        def attempt(seed: str | None) -> Outcome:
            sugg = self.store.get_suggestion(suggestion_id)
            if sugg is None:
                raise _not_found("suggestion", suggestion_id)
            pair = [sugg["a"], sugg["b"]]
            members = self.store.members_of(pair)
            kind = "must_link" if accept else "cannot_link"
            action = "accept_suggestion" if accept else "reject_suggestion"
            row = decision_row(
                kind, sugg["a"], sugg["b"], action, actor.user, suggestion_id=suggestion_id
            )
            rows = with_context(seeded([row], seed), members, sugg)
            return self.apply(rows, set(members.values()), pair)

        return self.run(actor, attempt)

    def link(
        self,
        kind: Literal["must_link", "cannot_link"],
        first: str,
        second: str,
        actor: Actor,
        note: str | None = None,
    ) -> Answer:
        """Must-link (same person) or cannot-link (two people) between two records."""
        if first == second:
            raise CorrectionError(
                "bad_request", "invalid_decision", "a record cannot be linked to itself"
            )

        def attempt(seed: str | None) -> Outcome:
            members = self.store.members_of([first, second])
            for obs in (first, second):
                if obs not in members:
                    raise _not_found("observation", obs)
            row = decision_row(kind, first, second, kind, actor.user, note=note)
            (row,) = with_context(seeded([row], seed), members)

            def supersede(store: IdentityStore) -> None:
                if kind == "cannot_link" and members[first] == members[second]:
                    store.supersede_must_links(row["decision_id"], [first], [second])

            return self.apply([row], set(members.values()), [first, second], supersede)

        return self.run(actor, attempt)

    def merge(self, member_id: str, other_member_id: str, actor: Actor, note: str | None) -> Answer:
        """Merges another member into this one: must-links pin every record of both together."""

        def attempt(seed: str | None) -> Outcome:
            left, right = self.live_member(member_id), self.live_member(other_member_id)
            if left == right:
                raise CorrectionError(
                    "conflict", "invalid_decision", "a member cannot be merged with itself"
                )
            # Every record is pinned to one representative, so the automatic constraints
            # (which a must-link overrides only for its own pair) cannot pull records out.
            assignment = self.store.load_assignment([left, right])
            records = sorted(assignment["observation_id"].to_list())
            rep, at = records[0], datetime.now(UTC)
            rows = [
                decision_row("must_link", rep, obs, "merge_members", actor.user, at=at, note=note)
                for obs in records[1:]
            ]
            held = self.store.members_of(records)
            return self.apply(with_context(seeded(rows, seed), held), {left, right}, records)

        return self.run(actor, attempt)

    def unmerge(
        self, member_id: str, observation_ids: list[str], actor: Actor, note: str | None
    ) -> Answer:
        """Splits the given records off a member; both sides are re-resolved from their records."""

        def attempt(seed: str | None) -> Outcome:
            live = self.live_member(member_id)
            held = set(self.store.load_assignment([live])["observation_id"].to_list())
            split = sorted(set(observation_ids))
            foreign = [obs for obs in split if obs not in held]
            if foreign:
                raise CorrectionError(
                    "unprocessable",
                    "not_in_member",
                    f"records not held by member {live!r}: {', '.join(foreign[:20])}",
                )
            rest = sorted(held - set(split))
            refusal = split_size_error(split, rest, self.unmerge_cap)
            if refusal is not None:
                raise refusal
            rows = seeded(_unmerge_rows(live, split, rest, actor.user, note), seed)

            def supersede(store: IdentityStore) -> None:
                store.supersede_must_links(rows[0]["decision_id"], split, rest)

            return self.apply(rows, {live}, sorted(held), supersede)

        return self.run(actor, attempt)

    def undo(self, decision_id: str, actor: Actor) -> Answer:
        """Reverses the correction this decision belongs to and re-resolves only its records.

        Must-links it had superseded count again; a retired id whose records come back
        together is revived.
        """

        def attempt(seed: str | None) -> Outcome:
            rows = self.store.action_decisions(decision_id)
            refusal = undo_refusal(decision_id, rows)
            if refusal is not None:
                raise refusal
            ids = [row["decision_id"] for row in rows]
            pairs = [(row["a"], row["b"]) for row in rows] + self.store.superseded_pairs(ids)
            held = self.store.members_of(sorted({obs for pair in pairs for obs in pair}))
            at = datetime.now(UTC)
            digest = hashlib.sha1(f"{seed or at.isoformat()}|{ids[0]}".encode()).hexdigest()
            run = {"run_id": f"undo_{digest[:16]}", "kind": "undo", "by": actor.user}

            def mark(store: IdentityStore) -> None:
                store.undo_decisions(ids, actor.user, at)

            return self.apply(
                [], set(held.values()), sorted(held), mark, run={**run, "decision_ids": ids}
            )

        return self.run(actor, attempt)

    # --- reading -------------------------------------------------------------------

    def history(self, member_id: str) -> dict[str, Any]:
        """The decisions about this member's records and the runs that changed it."""
        live = self.live_member(member_id)
        found = self.store.member_history(live)
        if found is None:
            raise _not_found("member", member_id)
        decisions, runs = history_entries(found)
        return {
            "member_id": live,
            "redirected_from": member_id if live != member_id else None,
            "former_ids": sorted(index for index in found["ids"] if index != live),
            "records": sorted(found["records"]),
            "decisions": decisions,
            "runs": runs,
        }


def _correction_run(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ids = [row["decision_id"] for row in rows]
    return {
        "run_id": f"run_{ids[0]}",
        "kind": "correction",
        "by": rows[0]["created_by"],
        "decision_ids": ids,
    }


def _unmerge_rows(
    live: str, split: list[str], rest: list[str], user: str, note: str | None
) -> list[dict[str, Any]]:
    """Cannot-links between every split record and every record that stays."""
    at = datetime.now(UTC)
    return [
        decision_row(
            "cannot_link",
            left,
            right,
            "unmerge",
            user,
            at=at,
            note=note,
            member_a=live,
            member_b=live,
        )
        for left in split
        for right in rest
    ]
