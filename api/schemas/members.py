"""Request and response bodies of the members routes (`api/routes/members.py`).

Records read back from the graph keep any further properties (`extra="allow"`): the
schemas name what clients rely on, the graph may carry more.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.responses import MAX_ID_LENGTH

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Note = Annotated[str | None, Field(default=None, max_length=1000)]

# --- requests ------------------------------------------------------------------------


class MustOrCannotLink(BaseModel):
    kind: Literal["must_link", "cannot_link"]
    observation_id: Id
    other_observation_id: Id
    note: Note = None


class MergeMembers(BaseModel):
    other_member_id: Id
    note: Note = None


class Unmerge(BaseModel):
    observation_ids: list[Id] = Field(min_length=1, max_length=1000)
    note: Note = None


# --- corrections ---------------------------------------------------------------------


class ActionResult(BaseModel):
    decision_ids: list[str]
    members: list[str]  # live members holding the records after the action
    # Retired ids that held any of these records -> the member holding most of them now.
    redirects: dict[str, str]
    revived: list[str] = []  # retired ids that hold records again (e.g. after an undo)
    metrics_stale: list[str] = []  # members whose analytics wait for the next run


class HistoryDecision(BaseModel):
    """One organizer decision about a record of the member, with the evidence then."""

    decision_id: str
    action_id: str | None = None
    action: str | None = None  # accept_suggestion, reject_suggestion, merge_members, …
    kind: str  # must_link | cannot_link
    a: str
    b: str
    created_by: str | None = None
    created_at: str | None = None
    note: str | None = None
    suggestion_id: str | None = None
    member_a: str | None = None  # members holding a and b when it was decided
    member_b: str | None = None
    probability: float | None = None
    evidence: str | None = None
    superseded: bool = False
    superseded_by: str | None = None
    undone_at: str | None = None
    undone_by: str | None = None
    in_effect: bool


class HistoryRun(BaseModel):
    """A pipeline run or a correction's recomputation that changed the member's records."""

    run_id: str
    kind: str  # pipeline | correction | undo
    at: str | None = None
    by: str | None = None
    decision_ids: list[str] | None = None
    members_written: int | None = None
    created: int | None = None
    retired: int | None = None
    revived: int | None = None


class MemberHistory(BaseModel):
    member_id: str
    redirected_from: str | None = None
    former_ids: list[str]  # retired ids that now point here
    records: list[str]
    decisions: list[HistoryDecision]
    runs: list[HistoryRun]


# --- members -------------------------------------------------------------------------


class MemberSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    member_id: str
    display_name: str | None = None
    email: str | None = None
    emails: list[str] | None = None
    phone: str | None = None
    company: str | None = None
    job_title: str | None = None
    observation_count: int | None = None
    sources: list[str] | None = None
    first_seen: str | None = None
    last_seen: str | None = None


class MemberPage(BaseModel):
    items: list[MemberSummary]
    total: int
    limit: int
    offset: int
    contact_details: Literal["visible", "masked"]


class FeatureWeight(BaseModel):
    """One comparison's level and its weight in a match."""

    feature: str
    level: str
    weight: float


class Explanation(BaseModel):
    """Why two records of the member were merged."""

    model_config = ConfigDict(extra="allow")
    a: str
    b: str
    reason: str | None = None
    probability: float | None = None
    match_weight: float | None = None
    features: list[FeatureWeight] = []
    evidence: str | None = None
    guard: str | None = None


class IdentityEntry(BaseModel):
    """One record of the member and its guest-list entries."""

    identity: dict[str, Any]
    attendance: list[dict[str, Any]]


class MemberDetail(BaseModel):
    member: dict[str, Any]
    provenance: list[dict[str, Any]]
    identities: list[IdentityEntry]
    explanations: list[Explanation]
    events: list[dict[str, Any]]
    contact_details: Literal["visible", "masked"]
    redirected_from: str | None = None
    redirect_reason: str | None = None
    # True between a correction that changed the member's records and the next analytics
    # run: the `net_*` figures (if any) describe the member as it was before.
    metrics_stale: bool = False


class Suggestion(BaseModel):
    """A pair of records, held by two members, that may be one person."""

    model_config = ConfigDict(extra="allow")
    suggestion_id: str
    a: str
    b: str
    member_a: str | None = None
    member_b: str | None = None
    probability: float
    match_weight: float | None = None
    evidence: str | None = None
    features: list[FeatureWeight] = []
    records_a: int
    records_b: int
    records_joined: int
    expected_gain: float  # records touched times how unsure the model is


class SuggestionPage(BaseModel):
    items: list[Suggestion]
    total: int
    limit: int
    offset: int
