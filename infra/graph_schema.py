"""The one definition of the Neo4j graph: labels, keys, constraints and indexes.

Pipeline and API both import from here, so a rename happens in one place.

    (:Identity {observation_id, source, email, ...})   one per source record (an observation)
    (:Identity)-[:ATTENDED {status, raw_status, role, registered_at, checked_in_at}]->(:Event {event_id})
    (:Identity)-[:PLUS_ONE_OF]->(:Identity)
    (:Identity)-[:HAS_HANDLE]->(:Handle {platform, handle})
    (:Member {member_id, display_name, ...metrics})-[:HAS_IDENTITY]->(:Identity)
    (:Member)-[:CO_ATTENDED {weight, events}]->(:Member)
    (:Identity)-[:MATCHED {probability, evidence, reason, ...}]->(:Identity)   why two records merged
    (:MemberAlias {member_id, redirect_to, reason})-[:REDIRECTS_TO]->(:Member)  retired ids
    (:MergeSuggestion {suggestion_id, a, b, member_a, member_b, probability, evidence})
    (:IdentityDecision {decision_id, kind, a, b, action, created_by, created_at})  organizer input
    (:IdentityModel {model_id, params})   the fitted match model, reused by the API

A member's attendance is the path (:Member)-[:HAS_IDENTITY]->(:Identity)-[:ATTENDED]->(:Event).
"""

from __future__ import annotations

from domain.model import OBSERVATIONS_SCHEMA

MEMBER = "Member"
IDENTITY = "Identity"
EVENT = "Event"
HANDLE = "Handle"
MEMBER_ALIAS = "MemberAlias"
MERGE_SUGGESTION = "MergeSuggestion"
IDENTITY_DECISION = "IdentityDecision"
IDENTITY_MODEL = "IdentityModel"
IDENTITY_RUN = "IdentityRun"

HAS_IDENTITY = "HAS_IDENTITY"
ATTENDED = "ATTENDED"
PLUS_ONE_OF = "PLUS_ONE_OF"
HAS_HANDLE = "HAS_HANDLE"
CO_ATTENDED = "CO_ATTENDED"
MATCHED = "MATCHED"
REDIRECTS_TO = "REDIRECTS_TO"

CONSTRAINTS: tuple[str, ...] = (
    f"CREATE CONSTRAINT member_id IF NOT EXISTS FOR (m:{MEMBER}) REQUIRE m.member_id IS UNIQUE",
    f"CREATE CONSTRAINT identity_id IF NOT EXISTS FOR (i:{IDENTITY}) REQUIRE i.observation_id IS UNIQUE",
    f"CREATE CONSTRAINT event_id IF NOT EXISTS FOR (e:{EVENT}) REQUIRE e.event_id IS UNIQUE",
    f"CREATE CONSTRAINT handle_key IF NOT EXISTS FOR (h:{HANDLE}) REQUIRE (h.platform, h.handle) IS UNIQUE",
    f"CREATE CONSTRAINT member_alias_id IF NOT EXISTS FOR (a:{MEMBER_ALIAS}) REQUIRE a.member_id IS UNIQUE",
    f"CREATE CONSTRAINT suggestion_id IF NOT EXISTS FOR (s:{MERGE_SUGGESTION}) REQUIRE s.suggestion_id IS UNIQUE",
    f"CREATE CONSTRAINT decision_id IF NOT EXISTS FOR (d:{IDENTITY_DECISION}) REQUIRE d.decision_id IS UNIQUE",
    f"CREATE CONSTRAINT identity_model_id IF NOT EXISTS FOR (x:{IDENTITY_MODEL}) REQUIRE x.model_id IS UNIQUE",
    f"CREATE CONSTRAINT identity_run_id IF NOT EXISTS FOR (r:{IDENTITY_RUN}) REQUIRE r.run_id IS UNIQUE",
)

INDEXES: tuple[str, ...] = (
    f"CREATE INDEX identity_email IF NOT EXISTS FOR (i:{IDENTITY}) ON (i.email)",
    f"CREATE INDEX identity_source IF NOT EXISTS FOR (i:{IDENTITY}) ON (i.source)",
    f"CREATE INDEX event_source IF NOT EXISTS FOR (e:{EVENT}) ON (e.source)",
    f"CREATE INDEX event_starts_at IF NOT EXISTS FOR (e:{EVENT}) ON (e.starts_at)",
    f"CREATE INDEX member_name IF NOT EXISTS FOR (m:{MEMBER}) ON (m.display_name)",
    f"CREATE TEXT INDEX member_search IF NOT EXISTS FOR (m:{MEMBER}) ON (m.search_text)",
    f"CREATE INDEX identity_email_key IF NOT EXISTS FOR (i:{IDENTITY}) ON (i.email_key)",
    f"CREATE INDEX identity_event IF NOT EXISTS FOR (i:{IDENTITY}) ON (i.event_id)",
    f"CREATE INDEX suggestion_members IF NOT EXISTS FOR (s:{MERGE_SUGGESTION}) ON (s.member_a, s.member_b)",
)

# Imports: every write names each property, so a value cleared at the source (absent from
# the row) is removed here too, and stamps the load (`import_stamp`): what the load did not
# stamp is no longer in the source and is swept (see SWEEP_*).
UPSERT_EVENTS = f"""
UNWIND $rows AS row
MERGE (e:{EVENT} {{event_id: row.event_id}})
SET e.source = row.source, e.source_event_id = row.source_event_id, e.name = row.name,
    e.starts_at = row.starts_at, e.ends_at = row.ends_at, e.timezone = row.timezone,
    e.url = row.url, e.city = row.city, e.import_stamp = $stamp
"""

IDENTITY_FIELDS: tuple[str, ...] = tuple(f for f in OBSERVATIONS_SCHEMA if f != "observation_id")

UPSERT_IDENTITIES = (
    f"UNWIND $rows AS row\nMERGE (i:{IDENTITY} {{observation_id: row.observation_id}})\n"
    f"SET {', '.join(f'i.{f} = row.{f}' for f in IDENTITY_FIELDS)}, i.import_stamp = $stamp\n"
)

UPSERT_ATTENDANCE = f"""
UNWIND $rows AS row
MATCH (i:{IDENTITY} {{observation_id: row.observation_id}})
MATCH (e:{EVENT} {{event_id: row.event_id}})
MERGE (i)-[a:{ATTENDED}]->(e)
SET a.status = row.status, a.raw_status = row.raw_status, a.role = row.role,
    a.registered_at = row.registered_at, a.checked_in_at = row.checked_in_at,
    a.import_stamp = $stamp
"""

UPSERT_PLUS_ONES = f"""
UNWIND $rows AS row
MATCH (g:{IDENTITY} {{observation_id: row.observation_id}})
MATCH (h:{IDENTITY} {{observation_id: row.plus_one_of}})
MERGE (g)-[p:{PLUS_ONE_OF}]->(h)
SET p.import_stamp = $stamp
"""

# Sweeps after a full load (auto-commit, batched): attendance and plus-one links no longer
# in any list go; an identity no longer on any list goes unless an organizer decision names
# it (then it stays, without attendance); an event no longer imported goes with its links.
SWEEP_ATTENDANCE = f"""
MATCH (:{IDENTITY})-[a:{ATTENDED}]->(:{EVENT})
WHERE a.import_stamp IS NULL OR a.import_stamp <> $stamp
CALL (a) {{ DELETE a }} IN TRANSACTIONS OF 10000 ROWS
"""

SWEEP_PLUS_ONES = f"""
MATCH (:{IDENTITY})-[p:{PLUS_ONE_OF}]->(:{IDENTITY})
WHERE p.import_stamp IS NULL OR p.import_stamp <> $stamp
CALL (p) {{ DELETE p }} IN TRANSACTIONS OF 10000 ROWS
"""

SWEEP_IDENTITIES = f"""
MATCH (i:{IDENTITY})
WHERE (i.import_stamp IS NULL OR i.import_stamp <> $stamp)
  AND NOT EXISTS {{ MATCH (d:{IDENTITY_DECISION}) WHERE d.a = i.observation_id OR d.b = i.observation_id }}
CALL (i) {{ DETACH DELETE i }} IN TRANSACTIONS OF 10000 ROWS
"""

SWEEP_EVENTS = f"""
MATCH (e:{EVENT})
WHERE (e.import_stamp IS NULL OR e.import_stamp <> $stamp) AND NOT ()-[:{ATTENDED}]->(e)
CALL (e) {{ DETACH DELETE e }} IN TRANSACTIONS OF 10000 ROWS
"""

STALE_COUNTS = f"""
CALL () {{ MATCH (:{IDENTITY})-[a:{ATTENDED}]->(:{EVENT})
  WHERE a.import_stamp IS NULL OR a.import_stamp <> $stamp RETURN count(a) AS attendance }}
CALL () {{ MATCH (:{IDENTITY})-[p:{PLUS_ONE_OF}]->(:{IDENTITY})
  WHERE p.import_stamp IS NULL OR p.import_stamp <> $stamp RETURN count(p) AS plus_one_links }}
CALL () {{ MATCH (i:{IDENTITY})
  WHERE i.import_stamp IS NULL OR i.import_stamp <> $stamp RETURN count(i) AS identities }}
CALL () {{ MATCH (e:{EVENT})
  WHERE e.import_stamp IS NULL OR e.import_stamp <> $stamp RETURN count(e) AS events }}
RETURN attendance, plus_one_links, identities, events
"""

EVENTS_WITH_COUNTS = f"""
MATCH (e:{EVENT})
OPTIONAL MATCH (i:{IDENTITY})-[a:{ATTENDED}]->(e)
WITH e, count(a) AS guests, count(CASE WHEN a.status = 'attended' THEN 1 END) AS attended
RETURN e.event_id AS event_id, e.source AS source, e.name AS name, e.starts_at AS starts_at,
       e.timezone AS timezone, e.url AS url, e.city AS city, guests, attended
ORDER BY e.starts_at DESC, e.event_id
SKIP $skip LIMIT $limit
"""

COUNT_EVENTS = f"MATCH (e:{EVENT}) RETURN count(e) AS n"

# --- Identity resolution: members, explanations, suggestions, decisions -------------

IDENTITY_OBSERVATIONS = f"""
MATCH (i:{IDENTITY})
WHERE $ids IS NULL OR i.observation_id IN $ids
OPTIONAL MATCH (i)-[a:{ATTENDED}]->(e:{EVENT})
WITH i, head(collect(e.event_id)) AS attended_event
RETURN i {{.*, event_id: coalesce(i.event_id, attended_event)}} AS row
"""

IDENTITY_ATTENDANCE = f"""
MATCH (i:{IDENTITY})-[a:{ATTENDED}]->(e:{EVENT})
WHERE $ids IS NULL OR i.observation_id IN $ids
OPTIONAL MATCH (i)-[:{PLUS_ONE_OF}]->(h:{IDENTITY})
RETURN e.event_id AS event_id, i.observation_id AS observation_id, a.status AS status,
       a.raw_status AS raw_status, a.role AS role, h.observation_id AS plus_one_of,
       a.registered_at AS registered_at, a.checked_in_at AS checked_in_at
"""

MEMBER_ASSIGNMENT = f"""
MATCH (m:{MEMBER})-[:{HAS_IDENTITY}]->(i:{IDENTITY})
WHERE $ids IS NULL OR m.member_id IN $ids
RETURN i.observation_id AS observation_id, m.member_id AS member_id
"""

KNOWN_MEMBER_IDS = f"""
CALL () {{ MATCH (m:{MEMBER}) RETURN m.member_id AS id
  UNION MATCH (a:{MEMBER_ALIAS}) RETURN a.member_id AS id }}
RETURN collect(id) AS ids
"""

# Content hash of each member's golden record: a rerun only writes members that changed.
# Reads that feed a diff return one collected list: far cheaper to decode than many records.
MEMBER_HASHES = f"""
UNWIND $ids AS id
MATCH (m:{MEMBER} {{member_id: id}})
RETURN collect([m.member_id, m.content_hash]) AS pairs
"""


def write_members(fields: tuple[str, ...], datetimes: tuple[str, ...]) -> str:
    """Member upsert naming every property: a `SET m += map` plans an Eager and is slower.

    Datetimes travel as ISO strings with a zone id (`…[UTC]`): the driver encodes Python
    datetimes slowly; `datetime()` stores the very same value. Nulls remove properties.
    """
    sets = [f"m.{f} = row.{f}" for f in fields]
    sets += [
        f"m.{f} = CASE WHEN row.{f} IS :: STRING THEN datetime(row.{f}) ELSE row.{f} END"
        for f in datetimes
    ]
    return (
        f"UNWIND $rows AS row\nMERGE (m:{MEMBER} {{member_id: row.member_id}})\n"
        f"SET {', '.join(sets)}, m.content_hash = row.content_hash\n"
    )


# Only links that changed are written: stale ones are deleted, new ones merged.
UNLINK_MEMBER_IDENTITIES = f"""
UNWIND $rows AS row
MATCH (:{MEMBER} {{member_id: row.member_id}})-[r:{HAS_IDENTITY}]->(:{IDENTITY} {{observation_id: row.observation_id}})
DELETE r
"""

LINK_MEMBER_IDENTITIES = f"""
UNWIND $rows AS row
MATCH (m:{MEMBER} {{member_id: row.member_id}})
MATCH (i:{IDENTITY} {{observation_id: row.observation_id}})
MERGE (m)-[:{HAS_IDENTITY}]->(i)
"""

IDENTITY_KEYS = f"""
UNWIND $ids AS id
MATCH (i:{IDENTITY} {{observation_id: id}})
RETURN collect([i.observation_id, i.name_key, i.name_quality, i.email_key, i.name_freq,
                i.email_shared]) AS keys
"""

SET_IDENTITY_KEYS = f"""
UNWIND $rows AS row
MATCH (i:{IDENTITY} {{observation_id: row.observation_id}})
SET i.name_key = row.name_key, i.email_key = row.email_key, i.name_quality = row.name_quality,
    i.name_freq = row.name_freq, i.email_shared = row.email_shared
"""

EXISTING_HANDLE_LINKS = f"""
UNWIND $ids AS id
MATCH (i:{IDENTITY} {{observation_id: id}})-[:{HAS_HANDLE}]->(h:{HANDLE})
RETURN collect([i.observation_id, h.platform, h.handle]) AS links
"""

# A link the record no longer carries; the handle goes too once nothing links to it.
UNLINK_HANDLES = f"""
UNWIND $rows AS row
MATCH (:{IDENTITY} {{observation_id: row.observation_id}})-[r:{HAS_HANDLE}]->(h:{HANDLE} {{platform: row.platform, handle: row.handle}})
DELETE r
WITH DISTINCT h
WHERE NOT (h)--()
DELETE h
"""

# Handles first (distinct, one writer), then links by MATCH: link batches never race to
# create the same handle node.
MERGE_HANDLES = f"""
UNWIND $rows AS row
MERGE (:{HANDLE} {{platform: row.platform, handle: row.handle}})
"""

LINK_EXISTING_HANDLES = f"""
UNWIND $rows AS row
MATCH (i:{IDENTITY} {{observation_id: row.observation_id}})
MATCH (h:{HANDLE} {{platform: row.platform, handle: row.handle}})
MERGE (i)-[:{HAS_HANDLE}]->(h)
"""

RETIRE_MEMBERS = f"""
UNWIND $rows AS row
MATCH (old:{MEMBER} {{member_id: row.member_id}})
DETACH DELETE old
WITH row
MATCH (target:{MEMBER} {{member_id: row.redirect_to}})
MERGE (a:{MEMBER_ALIAS} {{member_id: row.member_id}})
SET a.redirect_to = row.redirect_to, a.reason = row.reason, a.records = row.records,
    a.retired_at = datetime()
MERGE (a)-[:{REDIRECTS_TO}]->(target)
"""

# Retired ids with the records they held: a cluster of those records revives the id.
RETIRED_RECORDS = f"""
MATCH (a:{MEMBER_ALIAS})
WHERE a.records IS NOT NULL AND ($ids IS NULL OR any(x IN a.records WHERE x IN $ids))
RETURN a.member_id AS member_id, a.records AS records
"""

REVIVE_ALIASES = f"""
UNWIND $ids AS id
MATCH (a:{MEMBER_ALIAS} {{member_id: id}})
DETACH DELETE a
"""

# A retired id points at the member that now holds most of its records (ties by id):
# never at a member that holds none of them.
REDIRECT_BY_RECORDS = f"""
MATCH (a:{MEMBER_ALIAS})
WHERE a.records IS NOT NULL AND ($ids IS NULL OR any(x IN a.records WHERE x IN $ids))
CALL (a) {{
  UNWIND a.records AS oid
  MATCH (m:{MEMBER})-[:{HAS_IDENTITY}]->(:{IDENTITY} {{observation_id: oid}})
  WITH m, count(*) AS n
  RETURN m, n ORDER BY n DESC, m.member_id LIMIT 1
}}
WITH a, m, CASE WHEN n = size(a.records) THEN 'merged' ELSE 'split' END AS reason
WHERE a.redirect_to <> m.member_id OR a.reason <> reason
OPTIONAL MATCH (a)-[r:{REDIRECTS_TO}]->()
DELETE r
SET a.redirect_to = m.member_id, a.reason = reason
MERGE (a)-[:{REDIRECTS_TO}]->(m)
"""

ALIASES_OF_RECORDS = f"""
MATCH (a:{MEMBER_ALIAS})
WHERE any(x IN coalesce(a.records, []) WHERE x IN $ids)
RETURN a.member_id AS member_id, a.redirect_to AS redirect_to, a.reason AS reason
ORDER BY member_id
"""

DELETE_MEMBERS = f"""
UNWIND $ids AS id
MATCH (m:{MEMBER} {{member_id: id}})
DETACH DELETE m
"""

# Aliases that pointed at a now-retired id follow it to its new target (no chains).
REPOINT_ALIASES = f"""
UNWIND $rows AS row
MATCH (a:{MEMBER_ALIAS} {{redirect_to: row.member_id}})
MATCH (target:{MEMBER} {{member_id: row.redirect_to}})
OPTIONAL MATCH (a)-[r:{REDIRECTS_TO}]->()
DELETE r
SET a.redirect_to = row.redirect_to
MERGE (a)-[:{REDIRECTS_TO}]->(target)
"""

DANGLING_ALIASES = f"""
MATCH (a:{MEMBER_ALIAS}) WHERE NOT (a)-[:{REDIRECTS_TO}]->(:{MEMBER})
DETACH DELETE a
"""

EXISTING_MATCHES = f"""
MATCH (a:{IDENTITY})-[r:{MATCHED}]->(b:{IDENTITY})
WHERE $ids IS NULL OR a.observation_id IN $ids OR b.observation_id IN $ids
RETURN collect([a.observation_id, b.observation_id, r.content_hash]) AS matches
"""

DELETE_MATCHES = f"""
UNWIND $rows AS row
MATCH (:{IDENTITY} {{observation_id: row.a}})-[r:{MATCHED}]->(:{IDENTITY} {{observation_id: row.b}})
DELETE r
"""

# Properties named (no Eager); the hash lets a rerun skip explanations that did not change.
WRITE_MATCHES = f"""
UNWIND $rows AS row
MATCH (a:{IDENTITY} {{observation_id: row.a}})
MATCH (b:{IDENTITY} {{observation_id: row.b}})
MERGE (a)-[r:{MATCHED}]->(b)
SET r.reason = row.props.reason, r.probability = row.props.probability,
    r.match_weight = row.props.match_weight, r.evidence = row.props.evidence,
    r.features = row.props.features, r.guard = row.props.guard,
    r.content_hash = row.content_hash
"""

EXISTING_SUGGESTIONS = f"""
MATCH (s:{MERGE_SUGGESTION})
WHERE $ids IS NULL OR s.a IN $ids OR s.b IN $ids
RETURN s.suggestion_id AS suggestion_id
"""

DELETE_SUGGESTIONS = f"""
UNWIND $ids AS id
MATCH (s:{MERGE_SUGGESTION} {{suggestion_id: id}})
DETACH DELETE s
"""

UPSERT_SUGGESTIONS = f"""
UNWIND $rows AS row
MERGE (s:{MERGE_SUGGESTION} {{suggestion_id: row.suggestion_id}})
SET s += row
"""

# After a partial recompute, suggestions reaching outside it follow their records' members.
REFRESH_SUGGESTION_MEMBERS = f"""
MATCH (s:{MERGE_SUGGESTION})
WHERE s.a IN $ids OR s.b IN $ids
MATCH (ma:{MEMBER})-[:{HAS_IDENTITY}]->(:{IDENTITY} {{observation_id: s.a}})
MATCH (mb:{MEMBER})-[:{HAS_IDENTITY}]->(:{IDENTITY} {{observation_id: s.b}})
SET s.member_a = ma.member_id, s.member_b = mb.member_id
WITH s, ma, mb WHERE ma = mb
DETACH DELETE s
"""

UPSERT_DECISIONS = f"""
UNWIND $rows AS row
MERGE (d:{IDENTITY_DECISION} {{decision_id: row.decision_id}})
ON CREATE SET d += row
"""

LOAD_DECISIONS = f"""
MATCH (d:{IDENTITY_DECISION})
WHERE coalesce(d.superseded, false) = false AND d.undone_at IS NULL
  AND ($ids IS NULL OR d.a IN $ids OR d.b IN $ids)
RETURN d.decision_id AS decision_id, d.kind AS kind, d.a AS a, d.b AS b,
       d.created_at AS created_at
"""

# A newer cannot-link between two records supersedes older must-links across the same split.
SUPERSEDE_MUST_LINKS = f"""
UNWIND $rows AS row
MATCH (d:{IDENTITY_DECISION} {{kind: 'must_link'}})
WHERE coalesce(d.superseded, false) = false
  AND ((d.a IN row.left AND d.b IN row.right) OR (d.a IN row.right AND d.b IN row.left))
SET d.superseded = true, d.superseded_by = row.decision_id
"""

# Every decision of the correction one decision belongs to (a merge stores several).
ACTION_DECISIONS = f"""
MATCH (d:{IDENTITY_DECISION} {{decision_id: $id}})
MATCH (x:{IDENTITY_DECISION})
WHERE x.decision_id = d.decision_id
   OR (d.action_id IS NOT NULL AND x.action_id = d.action_id)
RETURN properties(x) AS decision
ORDER BY x.decision_id
"""

# Undo: the decisions stop counting, and must-links they superseded count again.
UNDO_DECISIONS = f"""
UNWIND $ids AS id
MATCH (d:{IDENTITY_DECISION} {{decision_id: id}})
SET d.undone_at = datetime($at), d.undone_by = $user
WITH collect(d.decision_id) AS undone
MATCH (s:{IDENTITY_DECISION}) WHERE s.superseded_by IN undone
SET s.superseded = false, s.restored_by_undo = s.superseded_by
REMOVE s.superseded_by
"""

UNDONE_SINCE = f"""
MATCH (d:{IDENTITY_DECISION}) WHERE d.undone_at >= datetime($since)
RETURN d.decision_id AS decision_id ORDER BY decision_id LIMIT 5
"""

SUPERSEDED_BY = f"""
MATCH (s:{IDENTITY_DECISION}) WHERE s.superseded_by IN $ids
RETURN s.a AS a, s.b AS b
"""

# Labelled pairs for learning: what organizers said about two records, latest word wins.
LABELLED_PAIRS = f"""
MATCH (d:{IDENTITY_DECISION})
WHERE coalesce(d.superseded, false) = false AND d.undone_at IS NULL
RETURN d.a AS a, d.b AS b, d.kind = 'must_link' AS same, d.action AS action,
       d.created_at AS created_at
ORDER BY created_at
"""

RECORD_RUN = f"""
MERGE (r:{IDENTITY_RUN} {{run_id: $run.run_id}})
SET r += $run, r.at = datetime()
"""

MEMBER_HISTORY = f"""
MATCH (m:{MEMBER} {{member_id: $id}})-[:{HAS_IDENTITY}]->(i:{IDENTITY})
WITH m, collect(i.observation_id) AS records
OPTIONAL MATCH (a:{MEMBER_ALIAS})-[:{REDIRECTS_TO}]->(m)
WITH m, records, collect(a.member_id) + [m.member_id] AS ids
CALL (records) {{
  OPTIONAL MATCH (d:{IDENTITY_DECISION}) WHERE d.a IN records OR d.b IN records
  RETURN collect(properties(d)) AS decisions
}}
CALL (ids) {{
  OPTIONAL MATCH (r:{IDENTITY_RUN}) WHERE any(x IN ids WHERE x IN r.member_ids)
  RETURN collect(r {{.run_id, .kind, .at, .by, .decision_ids, .members_written, .created,
                    .retired, .revived, .model}}) AS runs
}}
RETURN records, ids, decisions, runs
"""

MARK_METRICS_STALE = f"""
UNWIND $ids AS id
MATCH (m:{MEMBER} {{member_id: id}})
WHERE $always OR m.net_computed_at IS NOT NULL
SET m.metrics_stale = true, m.metrics_stale_since = datetime()
"""

STALE_AMONG = f"""
UNWIND $ids AS id
MATCH (m:{MEMBER} {{member_id: id}}) WHERE m.metrics_stale = true
RETURN m.member_id AS member_id
"""

STALE_METRICS = f"""
MATCH (m:{MEMBER}) WHERE m.metrics_stale = true
RETURN count(m) AS n, toString(max(m.metrics_stale_since)) AS since
"""

SAVE_MODEL = f"""
MERGE (x:{IDENTITY_MODEL} {{model_id: 'current'}})
SET x.params = $params
"""

LOAD_MODEL = f"MATCH (x:{IDENTITY_MODEL} {{model_id: 'current'}}) RETURN x.params AS params"

RELATED_EVENT_CONTEXT = f"""
MATCH (i:{IDENTITY})
WHERE i.event_id IN $events
RETURN i.observation_id AS observation_id, i.event_id AS event_id, i.email_key AS email_key,
       i.phone AS phone, i.name_key AS name_key, i.name_quality AS name_quality
"""

IDENTITY_MEMBERSHIP_ISSUES = f"""
MATCH (i:{IDENTITY})
OPTIONAL MATCH (m:{MEMBER})-[:{HAS_IDENTITY}]->(i)
WITH i, count(m) AS n WHERE n <> 1
RETURN i.observation_id AS observation_id, n
LIMIT 100
"""

RECORD_SPLITS = f"""
UNWIND $rows AS row
MATCH (m:{MEMBER} {{member_id: row.member_id}})
SET m.split_from = coalesce(m.split_from, [])
    + [x IN row.split_from WHERE NOT x IN coalesce(m.split_from, [])]
"""

MEMBER_ID_LIST = f"MATCH (m:{MEMBER}) RETURN collect(m.member_id) AS ids"

MEMBERS_HOLDING_RECORDS = f"""
MATCH (m:{MEMBER})-[:{HAS_IDENTITY}]->()
WHERE m.member_id IN $ids
RETURN collect(DISTINCT m.member_id) AS ids
"""

LIST_MEMBERS = f"""
MATCH (m:{MEMBER})
WHERE $q IS NULL OR m.search_text CONTAINS $q
RETURN m {{.member_id, .display_name, .email, .emails, .phone, .company, .job_title,
          .observation_count, .sources, .first_seen, .last_seen}} AS member
ORDER BY toLower(coalesce(m.display_name, '')), m.member_id
SKIP $skip LIMIT $limit
"""

COUNT_MEMBERS = f"""
MATCH (m:{MEMBER}) WHERE $q IS NULL OR m.search_text CONTAINS $q RETURN count(m) AS n
"""

GET_MEMBER = f"MATCH (m:{MEMBER} {{member_id: $id}}) RETURN properties(m) AS member"

GET_ALIAS = f"""
MATCH (a:{MEMBER_ALIAS} {{member_id: $id}})
RETURN a.redirect_to AS redirect_to, a.reason AS reason
"""

MEMBER_IDENTITIES = f"""
MATCH (m:{MEMBER} {{member_id: $id}})-[:{HAS_IDENTITY}]->(i:{IDENTITY})
OPTIONAL MATCH (i)-[a:{ATTENDED}]->(e:{EVENT})
RETURN properties(i) AS identity,
       collect(CASE WHEN e IS NULL THEN NULL ELSE {{event_id: e.event_id, name: e.name,
               starts_at: e.starts_at, source: e.source, status: a.status, role: a.role,
               raw_status: a.raw_status, checked_in_at: a.checked_in_at}} END) AS attendance
ORDER BY identity.observation_id
"""

MEMBER_EXPLANATIONS = f"""
MATCH (m:{MEMBER} {{member_id: $id}})-[:{HAS_IDENTITY}]->(a:{IDENTITY})-[r:{MATCHED}]->(b:{IDENTITY})
RETURN a.observation_id AS a, b.observation_id AS b, properties(r) AS props
ORDER BY r.probability DESC, a, b
"""

# Review queue by expected gain: the records an answer joins or keeps apart × how unsure
# the model is (4·p·(1−p), as domain.identity.learning.review_priority), then the most
# probable. Every answer is also a labelled pair the next run learns from.
LIST_SUGGESTIONS = f"""
MATCH (s:{MERGE_SUGGESTION})
WHERE $member IS NULL OR s.member_a = $member OR s.member_b = $member
OPTIONAL MATCH (:{MEMBER} {{member_id: s.member_a}})-[:{HAS_IDENTITY}]->(ia:{IDENTITY})
WITH s, count(ia) AS records_a
OPTIONAL MATCH (:{MEMBER} {{member_id: s.member_b}})-[:{HAS_IDENTITY}]->(ib:{IDENTITY})
WITH s, records_a, count(ib) AS records_b
WITH s, records_a, records_b,
     (records_a + records_b) * 4.0 * s.probability * (1.0 - s.probability) AS gain
RETURN properties(s) AS suggestion, records_a, records_b, gain
ORDER BY gain DESC, s.probability DESC, s.suggestion_id
SKIP $skip LIMIT $limit
"""

REVIEW_LOAD = f"""
CALL {{ MATCH (s:{MERGE_SUGGESTION}) RETURN count(s) AS suggestions }}
CALL {{ MATCH (m:{MEMBER}) RETURN count(m) AS members }}
RETURN suggestions, members
"""

COUNT_SUGGESTIONS = f"""
MATCH (s:{MERGE_SUGGESTION})
WHERE $member IS NULL OR s.member_a = $member OR s.member_b = $member
RETURN count(s) AS n
"""

GET_SUGGESTION = (
    f"MATCH (s:{MERGE_SUGGESTION} {{suggestion_id: $id}}) RETURN properties(s) AS suggestion"
)

MEMBERS_OF_OBSERVATIONS = f"""
MATCH (m:{MEMBER})-[:{HAS_IDENTITY}]->(i:{IDENTITY})
WHERE i.observation_id IN $ids
RETURN i.observation_id AS observation_id, m.member_id AS member_id
"""

# --- Community analytics: attendance in, per-member metrics and CO_ATTENDED out -------

MEMBER_ATTENDANCE = f"""
MATCH (m:{MEMBER})-[:{HAS_IDENTITY}]->(:{IDENTITY})-[a:{ATTENDED}]->(e:{EVENT})
WHERE e.starts_at IS NOT NULL AND ($end IS NULL OR e.starts_at < $end)
RETURN m.member_id AS member_id, e.event_id AS event_id, e.starts_at AS starts_at,
       a.status AS status, a.checked_in_at IS NOT NULL AS checked_in
"""

ALL_MEMBER_IDS = f"MATCH (m:{MEMBER}) RETURN m.member_id AS member_id ORDER BY member_id"

# Fresh figures clear the stale flag, unless a correction came after they were computed.
SET_MEMBER_METRICS = f"""
UNWIND $rows AS row
MATCH (m:{MEMBER} {{member_id: row.member_id}})
SET m += row.props
WITH m, row
WHERE m.metrics_stale_since IS NULL OR m.metrics_stale_since <= datetime(row.computed_from)
REMOVE m.metrics_stale, m.metrics_stale_since
"""

DELETE_CO_ATTENDED = f"""
MATCH (:{MEMBER})-[r:{CO_ATTENDED}]->(:{MEMBER})
CALL (r) {{ DELETE r }} IN TRANSACTIONS OF 10000 ROWS
"""

CREATE_CO_ATTENDED = f"""
UNWIND $rows AS row
MATCH (a:{MEMBER} {{member_id: row.a}})
MATCH (b:{MEMBER} {{member_id: row.b}})
CREATE (a)-[:{CO_ATTENDED} {{weight: row.weight, events: row.events}}]->(b)
"""

MEMBER_NETWORK = f"""
MATCH (m:{MEMBER} {{member_id: $member_id}})
RETURN m.member_id AS member_id, m.display_name AS display_name,
       properties(m) AS props
"""

CONNECTORS = f"""
MATCH (m:{MEMBER})
WHERE m.net_is_articulation = true OR m.net_bridges > 0
RETURN m.member_id AS member_id, m.display_name AS display_name,
       m.net_is_articulation AS is_articulation, m.net_bridges AS bridges,
       m.net_betweenness AS betweenness, m.net_community AS community,
       m.net_degree AS degree
ORDER BY m.net_betweenness DESC, m.member_id
SKIP $skip LIMIT $limit
"""

COUNT_CONNECTORS = f"""
MATCH (m:{MEMBER}) WHERE m.net_is_articulation = true OR m.net_bridges > 0
RETURN count(m) AS n
"""

TOP_MEMBERS_BY = f"""
MATCH (m:{MEMBER}) WHERE m.net_computed_at IS NOT NULL
RETURN m.member_id AS member_id, m.display_name AS display_name, properties(m) AS props
ORDER BY m[$metric] DESC, m.member_id
SKIP $skip LIMIT $limit
"""

METRICS_COVERAGE = f"""
MATCH (m:{MEMBER})
RETURN count(m) AS members,
       count(CASE WHEN m.net_computed_at = $stamp THEN 1 END) AS with_metrics
"""

# --- API and privacy: contact-read access log, idempotent actions, erasure tombstones ------
#
#   (:ContactAccess {at, by, role, route, request_id, member_ids})   who read whose contact
#                                                                    details (never the values)
#   (:ApiIdempotency {key, fingerprint, response, created_at})       answers to organizer actions
#   (:ErasedSubject {subject_hash, kind, erased_at, erased_by})      keyed hashes of erased
#                                                                    people's identifiers
#   (:TestInstanceMarker {marker})                                   a database the tests own

CONTACT_ACCESS = "ContactAccess"
API_IDEMPOTENCY = "ApiIdempotency"
ERASED_SUBJECT = "ErasedSubject"
TEST_INSTANCE_MARKER = "TestInstanceMarker"

API_CONSTRAINTS: tuple[str, ...] = (
    f"CREATE CONSTRAINT api_idempotency_key IF NOT EXISTS FOR (x:{API_IDEMPOTENCY}) REQUIRE x.key IS UNIQUE",
    f"CREATE CONSTRAINT erased_subject_hash IF NOT EXISTS FOR (x:{ERASED_SUBJECT}) REQUIRE x.subject_hash IS UNIQUE",
    f"CREATE INDEX contact_access_at IF NOT EXISTS FOR (x:{CONTACT_ACCESS}) ON (x.at)",
)

LOG_CONTACT_ACCESS = f"""
CREATE (:{CONTACT_ACCESS} {{at: datetime(), by: $by, role: $role, route: $route,
                          request_id: $request_id, member_ids: $member_ids}})
"""

LIST_CONTACT_ACCESS = f"""
MATCH (x:{CONTACT_ACCESS})
WHERE $member IS NULL OR $member IN x.member_ids
RETURN x {{.by, .role, .route, .request_id, .member_ids, at: toString(x.at)}} AS entry
ORDER BY x.at DESC
SKIP $skip LIMIT $limit
"""

LIST_MEMBERS_BY_NAME = f"""
MATCH (m:{MEMBER})
WHERE $q IS NULL OR toLower(coalesce(m.display_name, '')) CONTAINS $q
RETURN m {{.member_id, .display_name, .email, .emails, .phone, .company, .job_title,
          .observation_count, .sources, .first_seen, .last_seen}} AS member
ORDER BY toLower(coalesce(m.display_name, '')), m.member_id
SKIP $skip LIMIT $limit
"""

COUNT_MEMBERS_BY_NAME = f"""
MATCH (m:{MEMBER})
WHERE $q IS NULL OR toLower(coalesce(m.display_name, '')) CONTAINS $q
RETURN count(m) AS n
"""

GET_IDEMPOTENCY = f"""
MATCH (x:{API_IDEMPOTENCY} {{key: $key}})
RETURN x.fingerprint AS fingerprint, x.response AS response, x.status AS status
"""


PUT_IDEMPOTENCY = f"""
MERGE (x:{API_IDEMPOTENCY} {{key: $key}})
ON CREATE SET x.fingerprint = $fingerprint, x.response = $response, x.status = $status,
              x.created_at = datetime()
"""

# Keys are for retries, not forever: answers older than a day are dropped.
EXPIRE_IDEMPOTENCY = f"""
MATCH (x:{API_IDEMPOTENCY}) WHERE x.created_at < datetime() - duration('P1D')
WITH x LIMIT 1000 DELETE x
"""

# Schema versions (infra/migrations.py): one node per versioned part ("graph").
SCHEMA_VERSION = "SchemaVersion"
SCHEMA_VERSION_CONSTRAINT = (
    f"CREATE CONSTRAINT schema_version_name IF NOT EXISTS "
    f"FOR (v:{SCHEMA_VERSION}) REQUIRE v.name IS UNIQUE"
)
GET_SCHEMA_VERSION = f"MATCH (v:{SCHEMA_VERSION} {{name: $name}}) RETURN v.version AS version"
SET_SCHEMA_VERSION = f"""
MERGE (v:{SCHEMA_VERSION} {{name: $name}})
SET v.version = $version, v.updated_at = datetime(),
    v.history = coalesce(v.history, []) + [$entry]
"""

MARK_TEST_INSTANCE = f"MERGE (:{TEST_INSTANCE_MARKER} {{marker: 'community-platform-tests'}})"
HAS_TEST_MARKER = f"MATCH (x:{TEST_INSTANCE_MARKER}) RETURN count(x) > 0 AS marked"
COUNT_ALL_NODES = "MATCH (n) RETURN count(n) AS n"
DELETE_ALL_BUT_MARKER = f"""
MATCH (n) WHERE NOT n:{TEST_INSTANCE_MARKER}
CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF 10000 ROWS
"""

DECISIONS_ABOUT = f"""
MATCH (d:{IDENTITY_DECISION}) WHERE d.a IN $ids OR d.b IN $ids
RETURN properties(d) AS d ORDER BY d.created_at
"""

RECORD_TOMBSTONES = f"""
UNWIND $hashes AS h
MERGE (x:{ERASED_SUBJECT} {{subject_hash: h}})
ON CREATE SET x.erased_at = datetime($at), x.erased_by = $by
"""

# One transaction: the person's records, handles only they used, decisions and suggestions
# about their records, ids redirecting to them (and their records in other retired ids'
# lists and their id in run histories), and the member itself.
ERASE_PERSON: tuple[str, ...] = (
    f"""MATCH (i:{IDENTITY})-[:{HAS_HANDLE}]->(h:{HANDLE}) WHERE i.observation_id IN $ids
    WITH DISTINCT h
    WHERE NOT EXISTS {{ MATCH (o:{IDENTITY})-[:{HAS_HANDLE}]->(h) WHERE NOT o.observation_id IN $ids }}
    DETACH DELETE h""",
    f"MATCH (d:{IDENTITY_DECISION}) WHERE d.a IN $ids OR d.b IN $ids DETACH DELETE d",
    f"MATCH (s:{MERGE_SUGGESTION}) WHERE s.a IN $ids OR s.b IN $ids DETACH DELETE s",
    f"MATCH (i:{IDENTITY}) WHERE i.observation_id IN $ids DETACH DELETE i",
    f"MATCH (a:{MEMBER_ALIAS}) WHERE a.redirect_to = $member_id DETACH DELETE a",
    f"""MATCH (a:{MEMBER_ALIAS}) WHERE any(x IN coalesce(a.records, []) WHERE x IN $ids)
    SET a.records = [x IN a.records WHERE NOT x IN $ids]""",
    f"""MATCH (r:{IDENTITY_RUN}) WHERE $member_id IN r.member_ids
    SET r.member_ids = [x IN r.member_ids WHERE x <> $member_id]""",
    f"MATCH (m:{MEMBER} {{member_id: $member_id}}) DETACH DELETE m",
)
